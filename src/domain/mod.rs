//! Parsed values: once one of these exists it is valid. Each is built only through `parse` /
//! `TryFrom` (or generated fresh), and the database columns hold them directly.

pub mod ids;
pub mod keys;
pub mod numbers;
pub mod patterns;
pub mod states;
pub mod values;

pub use ids::*;
pub use states::{AlertKind, AlertStatus, DeliveryStatus, EndpointKind, Ordering, PayloadMode};
pub use values::*;
