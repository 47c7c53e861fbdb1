//! The bench's client: POSTs pre-encoded bodies to a receiver from a few concurrent
//! connections, as a fleet's agents would, and comes back after a 429/503 (waiting its
//! `Retry-After`, or 100 ms), so backpressure slows the bench rather than losing items.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use super::BenchError;

/// How the bodies are sent.
pub struct Push {
    pub url: String,
    pub headers: &'static [(&'static str, &'static str)],
    pub concurrency: usize,
}

/// Sends every body once (retrying refusals); returns how many times one was refused.
pub async fn push_all(push: Push, bodies: Vec<Vec<u8>>) -> Result<u64, BenchError> {
    let client = reqwest::Client::new();
    let bodies: Arc<Vec<bytes::Bytes>> = Arc::new(bodies.into_iter().map(Into::into).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let push = Arc::new(push);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..push.concurrency.max(1) {
        let (client, bodies, next, refused, push) = (
            client.clone(),
            bodies.clone(),
            next.clone(),
            refused.clone(),
            push.clone(),
        );
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else {
                    return Ok(());
                };
                loop {
                    let mut req = client.post(&push.url).body(body.clone());
                    for (k, v) in push.headers {
                        req = req.header(*k, *v);
                    }
                    let resp = req
                        .send()
                        .await
                        .map_err(|e| BenchError::Push(format!("{}: {e}", push.url)))?;
                    let status = resp.status();
                    if status.is_success() {
                        break;
                    }
                    if status.as_u16() == 429 || status.as_u16() == 503 {
                        refused.fetch_add(1, Ordering::Relaxed);
                        let wait = resp
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                            .map_or(Duration::from_millis(100), Duration::from_secs);
                        tokio::time::sleep(wait.min(Duration::from_secs(5))).await;
                        continue;
                    }
                    let text = resp.text().await.unwrap_or_default();
                    return Err(BenchError::Push(format!(
                        "{} answered {status}: {}",
                        push.url,
                        text.trim()
                    )));
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(|e| BenchError::Push(e.to_string()))??;
    }
    Ok(refused.load(Ordering::Relaxed))
}
