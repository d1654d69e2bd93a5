//! The closed sets of words the database stores: a delivery's status and an endpoint's
//! ordering. Each is an enum, stored as its `snake_case` name; a row holding anything else fails
//! to load instead of being read as some default.

/// A stored word that is not one of its set's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownWord {
    pub what: &'static str,
    pub word: String,
}

impl std::fmt::Display for UnknownWord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` is not a known {}", self.word, self.what)
    }
}

impl std::error::Error for UnknownWord {}

macro_rules! word_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal, { $($(#[$vdoc:meta])* $variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash,
            serde::Serialize, serde::Deserialize, utoipa::ToSchema, sea_orm::DeriveValueType,
        )]
        #[serde(rename_all = "snake_case")]
        #[sea_orm(value_type = "String")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownWord;
            fn from_str(text: &str) -> Result<Self, UnknownWord> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == text)
                    .ok_or_else(|| UnknownWord { what: $what, word: text.to_owned() })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

word_enum!(
    /// Where a delivery is.
    DeliveryStatus, "delivery status", {
        /// Waiting for its next attempt (or being attempted, while leased).
        Pending => "pending",
        Succeeded => "succeeded",
        /// Every attempt failed, or the endpoint answered 410; replayable.
        Dead => "dead",
        /// Not retried: a newer event of the same subject was delivered to the endpoint first
        /// (endpoints with `supersede`).
        Superseded => "superseded",
    }
);

word_enum!(
    /// What an operational alert is about.
    AlertKind, "alert kind", {
        /// An endpoint failed this many times in a row (`alert_failures`).
        EndpointFailing => "endpoint_failing",
        /// The gateway disabled an endpoint (it kept failing, or answered 410).
        EndpointDisabled => "endpoint_disabled",
        /// A delivery died (every attempt failed); at most one alert per endpoint a minute.
        DeliveryDead => "delivery_dead",
        /// An endpoint's pending deliveries are over `alert_backlog`.
        Backlog => "backlog",
        /// An endpoint's oldest pending delivery is older than `alert_oldest_pending`.
        OldestPending => "oldest_pending",
        /// A burst of webhooks failing verification on a tenant's URL: a rotated provider
        /// key, or an attack.
        VerificationFailures => "verification_failures",
    }
);

word_enum!(
    /// Where an alert's delivery to the operator endpoint is.
    AlertStatus, "alert status", {
        /// Waiting to be sent (or no operator endpoint is configured).
        Pending => "pending",
        Sent => "sent",
        /// Every attempt failed.
        Failed => "failed",
    }
);

word_enum!(
    /// How an endpoint receives its events.
    EndpointKind, "endpoint kind", {
        /// The gateway POSTs each event to the endpoint's URL.
        Push => "push",
        /// Nothing is sent: the receiver reads its events through the API, in sequence
        /// order, and commits its position.
        Pull => "pull",
    }
);

word_enum!(
    /// What an endpoint is sent.
    PayloadMode, "payload mode", {
        /// The normalized event with everything in it, patient data included.
        Full => "full",
        /// Ids, type, status, times and links only, and `dataref`: the API URL of the full
        /// event, which the receiver reads with a tenant-scoped token (an audited access).
        Minimal => "minimal",
    }
);

word_enum!(
    /// Delivery order.
    Ordering, "ordering", {
        /// Deliveries proceed independently (fastest).
        None => "none",
        /// Per subject (service request or order), an event is delivered only after the
        /// previous one succeeded or died.
        FifoSubject => "fifo_subject",
    }
);

#[allow(clippy::derivable_impls)] // the enum is written by a macro
impl Default for Ordering {
    fn default() -> Self {
        Ordering::None
    }
}

#[allow(clippy::derivable_impls)] // the enum is written by a macro
impl Default for EndpointKind {
    fn default() -> Self {
        EndpointKind::Push
    }
}

#[allow(clippy::derivable_impls)] // the enum is written by a macro
impl Default for PayloadMode {
    fn default() -> Self {
        PayloadMode::Full
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_an_unknown_one_is_refused() {
        for s in DeliveryStatus::ALL {
            assert_eq!(s.as_str().parse::<DeliveryStatus>(), Ok(*s));
        }
        assert_eq!(
            "fifo_subject".parse::<Ordering>(),
            Ok(Ordering::FifoSubject)
        );
        let err = "fifo".parse::<Ordering>().unwrap_err();
        assert_eq!(err.to_string(), "`fifo` is not a known ordering");
        assert_eq!(
            serde_json::to_string(&DeliveryStatus::Succeeded).unwrap(),
            "\"succeeded\""
        );
    }
}
