use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "subject_heads")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub provider: crate::providers::Provider,
    /// `kind:id`, e.g. `transport_request:VC-123`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject: String,
    pub order_key: String,
    pub event_id: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The heads of some subjects, each named by (tenant, provider, subject).
pub async fn find_keys(
    db: &impl sea_orm::ConnectionTrait,
    keys: &[(String, &'static str, String)],
) -> Result<Vec<Model>, DbErr> {
    let mut any = sea_orm::Condition::any();
    for (tenant, provider, subject) in keys {
        any = any.add(
            sea_orm::Condition::all()
                .add(Column::TenantId.eq(tenant.clone()))
                .add(Column::Provider.eq(*provider))
                .add(Column::Subject.eq(subject.clone())),
        );
    }
    Entity::find().filter(any).all(db).await
}
