//! Exports of the API's records (disclosures, the access log): CSV or NDJSON.

use actix_web::HttpResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;

/// How a list is answered: JSON (the default), or exported.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    #[default]
    Json,
    Csv,
    Ndjson,
}

/// A CSV field, quoted when it holds a separator, a quote or a line break.
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// Rows as CSV (a header line, then `line` of each) or NDJSON (one JSON object per line).
pub fn export<T: Serialize>(
    format: ExportFormat,
    header: &str,
    rows: &[T],
    line: impl Fn(&T) -> String,
) -> Result<HttpResponse, ApiError> {
    let mut out = String::new();
    let content_type = match format {
        ExportFormat::Csv | ExportFormat::Json => {
            out.push_str(header);
            out.push('\n');
            for row in rows {
                out.push_str(&line(row));
                out.push('\n');
            }
            "text/csv; charset=utf-8"
        }
        ExportFormat::Ndjson => {
            for row in rows {
                out.push_str(&serde_json::to_string(row).map_err(ApiError::internal)?);
                out.push('\n');
            }
            "application/x-ndjson"
        }
    };
    Ok(HttpResponse::Ok().content_type(content_type).body(out))
}
