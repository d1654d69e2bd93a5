use sea_orm::entity::prelude::*;

use crate::domain::{ActionId, TenantId};

/// Sent, waiting for the provider's answer (a row left here means the process stopped mid-call).
pub const OUTCOME_PENDING: &str = "pending";
pub const OUTCOME_SUCCEEDED: &str = "succeeded";
pub const OUTCOME_FAILED: &str = "failed";

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "provider_actions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: ActionId,
    pub tenant_id: TenantId,
    pub provider: crate::providers::Provider,
    /// `accept`, `decline`, `state`, `locations`, `best_time`, `change_request`, `resend_events`.
    pub action: String,
    /// The VectorCare request or Vital order it concerns (its timeline shows the action).
    pub subject: Option<String>,
    /// What was sent to the provider.
    pub request: Json,
    pub actor_token_id: String,
    pub actor_name: String,
    /// The gateway request id of the API call that caused it.
    pub request_id: Option<String>,
    pub outcome: String,
    pub provider_status: Option<i32>,
    pub error_code: Option<String>,
    /// The provider's message, or ours when the call failed before an answer.
    pub message: Option<String>,
    pub created_at: DateTimeUtc,
    pub completed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
