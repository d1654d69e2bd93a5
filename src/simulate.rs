//! `gateway simulate`: sends correctly signed example webhooks to a running gateway, so an
//! integrator can try the whole flow without the provider's test environment. The scenarios
//! and the signing are each provider's own (`providers/<name>/simulate.rs`).

use serde_json::Value;

use crate::providers::Provider;

/// Sends a scenario and prints one line per webhook; fails on the first non-2xx answer.
pub async fn run(
    provider: Provider,
    url: &str,
    material: &str,
    scenario: &str,
) -> anyhow::Result<()> {
    let plugin = provider.plugin();
    let Some(bodies) = plugin.scenario(scenario) else {
        let names: Vec<&str> = plugin.scenarios().iter().map(|(n, _)| *n).collect();
        anyhow::bail!("unknown scenario `{scenario}`; known: {}", names.join(", "));
    };
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .build()?;
    for body in bodies {
        let bytes = serde_json::to_vec(&body)?;
        let mut req = client
            .post(url)
            .header("content-type", "application/json")
            .body(bytes.clone());
        for (name, value) in plugin
            .sign(material, &bytes)
            .map_err(|e| anyhow::anyhow!(e))?
        {
            req = req.header(name, value);
        }
        let res = req.send().await?;
        let status = res.status();
        let answer = res.text().await.unwrap_or_default();
        let what = body
            .get("action")
            .or_else(|| body.get("event_type"))
            .and_then(Value::as_str)
            .unwrap_or("event");
        println!("{} {what}: {answer}", status.as_u16());
        if !status.is_success() {
            anyhow::bail!("the gateway answered {status}");
        }
    }
    Ok(())
}
