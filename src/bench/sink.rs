//! The bench's receiving end: answers 204 at once and records which event and delivery arrived
//! when.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse};

#[derive(Default)]
pub struct Sink {
    /// (event id, delivery id, when)
    pub got: Mutex<Vec<(String, String, Instant)>>,
}

pub async fn sink_handler(
    req: HttpRequest,
    body: web::Bytes,
    sink: web::Data<Arc<Sink>>,
) -> HttpResponse {
    // Only the id: a sink that parsed the whole document would take CPU from the gateway it
    // measures. The event's `id` is its first member named so (after `specversion`, and after
    // `stale` when marked); should that change, the parse below still finds it.
    let id = event_id(&body).unwrap_or_default();
    let wid = req
        .headers()
        .get(crate::delivery::send::DELIVERY_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    sink.got
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((id, wid, Instant::now()));
    HttpResponse::NoContent().finish()
}

/// Sends one webhook; its event id, when it was sent and how long the acknowledgement took.
/// The CloudEvent's `id`: the first `"id":"…"` in the text, else a full parse.
fn event_id(body: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"id\":\"";
    let fast = body
        .windows(KEY.len())
        .position(|w| w == KEY)
        .and_then(|at| {
            let rest = &body[at + KEY.len()..];
            let end = rest.iter().position(|b| *b == b'"')?;
            std::str::from_utf8(&rest[..end]).ok()
        })
        .filter(|id| id.starts_with("evt_"));
    match fast {
        Some(id) => Some(id.to_owned()),
        None => {
            #[derive(serde::Deserialize)]
            struct Id {
                id: String,
            }
            serde_json::from_slice::<Id>(body).ok().map(|v| v.id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::event_id;

    #[test]
    fn the_sink_reads_the_event_id_whether_or_not_it_comes_first() {
        assert_eq!(
            event_id(br#"{"specversion":"1.0","id":"evt_1","providereventid":"x"}"#).as_deref(),
            Some("evt_1")
        );
        assert_eq!(
            event_id(br#"{"stale":true,"specversion":"1.0","id":"evt_2"}"#).as_deref(),
            Some("evt_2")
        );
        // Another member's value spelled like an id, then the event's id, pretty-printed.
        assert_eq!(
            event_id(b"{\"data\": {\"id\":\"order-1\"}, \"id\": \"evt_3\"}").as_deref(),
            Some("evt_3")
        );
        assert_eq!(event_id(b"not json"), None);
    }
}
