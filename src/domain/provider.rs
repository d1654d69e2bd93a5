//! The providers the gateway speaks to.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// VectorCare: medical transport marketplace (RSA-signed webhooks, OAuth2 Open API).
    Vectorcare,
    /// Vital / Junction: lab testing (Svix-signed webhooks, API key).
    Vital,
}

impl Provider {
    pub const ALL: [Provider; 2] = [Provider::Vectorcare, Provider::Vital];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Vectorcare => "vectorcare",
            Provider::Vital => "vital",
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == text)
            .ok_or_else(|| format!("unknown provider `{text}`; known: vectorcare, vital"))
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
