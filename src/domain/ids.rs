//! Prefixed, time-sortable identifiers (`tn_`, `ep_`, ...): the prefix tells a reader what an id
//! names, and ordering by id is ordering by creation, which keyset pagination relies on.

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $example:literal) => {
        $(#[$doc])*
        #[derive(
            Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, sea_orm::DeriveValueType,
        )]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new id, ordered after every id generated before it.
            pub fn generate() -> Self {
                Self(format!("{}_{}", $prefix, uuid::Uuid::now_v7().simple()))
            }

            /// A value ordered before every id generated at or after `t`, and after every id
            /// generated before it (UUIDv7 begins with the milliseconds since 1970): compared
            /// with stored ids, it selects by creation time on an id index.
            pub fn bound_at(t: chrono::DateTime<chrono::Utc>) -> Self {
                let ms = u64::try_from(t.timestamp_millis()).unwrap_or(0).min((1 << 48) - 1);
                Self(format!("{}_{:012x}", $prefix, ms))
            }

            pub fn parse(text: &str) -> Result<Self, String> {
                let ok = text
                    .strip_prefix(concat!($prefix, "_"))
                    .is_some_and(|rest| {
                        !rest.is_empty()
                            && rest.len() <= 64
                            && rest.bytes().all(|b| b.is_ascii_alphanumeric())
                    });
                if ok {
                    Ok(Self(text.to_owned()))
                } else {
                    Err(format!("`{text}` is not a valid {} id ({}_...)", stringify!($name), $prefix))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }

        impl sea_orm::TryFromU64 for $name {
            fn try_from_u64(_: u64) -> Result<Self, sea_orm::DbErr> {
                Err(sea_orm::DbErr::ConvertFromU64(stringify!($name)))
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some(concat!("^", $prefix, "_[0-9a-zA-Z]{1,64}$")))
                    .examples([serde_json::json!($example)])
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

prefixed_id!(
    /// A tenant: one customer organization.
    TenantId, "tn", "tn_019ab3c2d1e07f3a9b1c2d3e4f5a6b7c"
);
prefixed_id!(
    /// A tenant's connection to one provider.
    ConnectionId, "pc", "pc_019ab3c2d1e07f3a9b1c2d3e4f5a6b7c"
);
prefixed_id!(
    /// One verification key of a provider connection (RSA public key or signing secret).
    KeyId, "key", "key_019ab3c2d1e07f3a9b1c2d3e4f5a6b7c"
);
prefixed_id!(
    /// A tenant's callback endpoint.
    EndpointId, "ep", "ep_019ab3c2d1e07f3a9b1c2d3e4f5a6b7c"
);
prefixed_id!(
    /// One signing secret of an endpoint.
    SecretId, "sec", "sec_019ab3c2d1e07f3a9b1c2d3e4f5a6b7c"
);
prefixed_id!(
    /// An API token.
    TokenId, "tok", "tok_019ab3c2d1e07f3a9b1c2d3e4f5a6b7c"
);
prefixed_id!(
    /// An audit log entry.
    AuditId, "aud", "aud_019ab3c2d1e07f3a9b1c2d3e4f5a6b7c"
);

prefixed_id!(
    /// An access log entry (a read of patient data).
    AccessId, "acc", "acc_019ab3c2d1e07f3a9b1c2d3e4f5a6b7c"
);

prefixed_id!(
    /// A tenant's data key: seals its events' payloads; destroying it shreds them.
    DataKeyId, "dk", "dk_019ab3c2d1e07f3a9b1c2d3e4f5a6b7c"
);
prefixed_id!(
    /// A normalized event; stable across the provider's retries.
    EventId, "evt", "evt_019ab3c2d1e07f3a9b1c2d3e4f5a6b7c"
);
prefixed_id!(
    /// One event's delivery to one endpoint.
    DeliveryId, "dlv", "dlv_019ab3c2d1e07f3a9b1c2d3e4f5a6b7c"
);
prefixed_id!(
    /// One attempt of a delivery.
    AttemptId, "att", "att_019ab3c2d1e07f3a9b1c2d3e4f5a6b7c"
);
prefixed_id!(
    /// An operational alert for the gateway's operators.
    AlertId, "alr", "alr_019ab3c2d1e07f3a9b1c2d3e4f5a6b7c"
);
prefixed_id!(
    /// One call made to a provider on a tenant's behalf.
    ActionId, "act", "act_019ab3c2d1e07f3a9b1c2d3e4f5a6b7c"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_sort_by_creation() {
        let a = TenantId::generate();
        let b = TenantId::generate();
        assert!(a.as_str().starts_with("tn_"));
        assert!(a < b);
        assert_eq!(TenantId::parse(a.as_str()).unwrap(), a);
    }

    #[test]
    fn an_id_of_another_kind_or_with_odd_characters_is_refused() {
        let ep = EndpointId::generate();
        assert!(TenantId::parse(ep.as_str()).is_err());
        assert!(TenantId::parse("tn_").is_err());
        assert!(TenantId::parse("tn_abc'--").is_err());
    }
}
