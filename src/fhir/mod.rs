//! FHIR, the delivery format healthcare receivers already understand (issue 21, in progress):
//! each normalized event as FHIR R4/R4B resources (`resources`) and as a subscription
//! notification bundle of the HL7 Subscriptions R5 Backport guide (`bundle`). Pure functions of
//! the event's CloudEvent (the documented schema), so every endpoint's body comes from the same
//! source whatever its format.

pub mod bundle;
pub mod resources;

#[cfg(test)]
mod tests;
