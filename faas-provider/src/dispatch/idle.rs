//! Replicas that mean something for GPUs. A request for a function scaled to zero
//! scales it up itself (to `com.openfaas.scale.min`, at least 1) and is then queued as
//! usual, so it works with or without the gateway's `scale_from_zero`. A function
//! labelled `com.openfaas.scale.zero=true` that has not been invoked for
//! `com.openfaas.scale.zero-duration` (default 15m) is scaled to zero and its model
//! unloaded from every GPU; its endpoint stays up.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::Inner;
use super::actor::Command;
use crate::config::parse_duration;
use crate::events::FunctionEvent;
use crate::store::{FunctionRecord, StoreError};

/// Label enabling idle scale to zero.
pub const SCALE_ZERO: &str = "com.openfaas.scale.zero";
/// Label giving the idle time before scaling to zero.
pub const SCALE_ZERO_DURATION: &str = "com.openfaas.scale.zero-duration";
/// Label giving the replicas to scale up to.
pub const SCALE_MIN: &str = "com.openfaas.scale.min";
/// Idle time when `scale.zero-duration` is absent (OpenFaaS's default).
pub const DEFAULT_IDLE: Duration = Duration::from_secs(15 * 60);

fn label<'a>(record: &'a FunctionRecord, key: &str) -> Option<&'a str> {
    record
        .deployment
        .labels
        .as_ref()?
        .get(key)
        .map(|v| v.trim())
}

/// The idle time after which `record` scales to zero, if it asks to.
pub fn idle_limit(record: &FunctionRecord) -> Option<Duration> {
    if label(record, SCALE_ZERO)? != "true" {
        return None;
    }
    Some(
        label(record, SCALE_ZERO_DURATION)
            .and_then(|d| parse_duration(d).ok())
            .unwrap_or(DEFAULT_IDLE),
    )
}

/// Scales a function at zero back to `scale.min` (at least 1) and announces it.
pub async fn scale_up(inner: &Inner, record: &FunctionRecord) -> Result<(), StoreError> {
    let replicas = label(record, SCALE_MIN)
        .and_then(|m| m.parse::<u64>().ok())
        .filter(|m| *m > 0)
        .unwrap_or(1);
    let (ns, name) = (record.namespace().to_string(), record.name().to_string());
    let scaled = inner
        .store
        .call(move |s| s.scale_function(&ns, &name, replicas))
        .await?;
    inner.publish(FunctionEvent::Scaled(scaled));
    Ok(())
}

/// One pass: scale idle functions to zero and unload their models.
async fn pass(inner: &Arc<Inner>) -> Result<(), StoreError> {
    let records = inner.store.call(|s| s.all_functions()).await?;
    let now = Instant::now();
    for record in &records {
        let Some(limit) = idle_limit(record) else {
            continue;
        };
        if record.replicas == 0 {
            continue;
        }
        // Idle since its last invocation, or since this provider first saw it.
        let key = (record.namespace().to_string(), record.name().to_string());
        let last = match inner.last_used.lock() {
            Ok(mut used) => *used.entry(key).or_insert(now),
            Err(_) => continue,
        };
        if now.duration_since(last) < limit {
            continue;
        }
        let (ns, name) = (record.namespace().to_string(), record.name().to_string());
        let scaled = inner
            .store
            .call(move |s| s.scale_function(&ns, &name, 0))
            .await?;
        inner.publish(FunctionEvent::Scaled(scaled));
        let Some((model, _)) = super::model_of(record) else {
            continue;
        };
        // Another function still up on the same model keeps it loaded.
        let shared = records.iter().any(|other| {
            other.replicas > 0
                && (other.namespace(), other.name()) != (record.namespace(), record.name())
                && super::model_of(other).is_some_and(|(m, _)| m.key == model.key)
        });
        if shared {
            continue;
        }
        let (reply, answer) = oneshot::channel();
        if inner
            .commands
            .send(Command::Unload {
                key: model.key.clone(),
                reply,
            })
            .is_err()
        {
            return Ok(());
        }
        let places = answer.await.unwrap_or_default();
        for (url, device) in places {
            if let Err(e) = inner.client.evict(&url, &device, &model.key).await {
                tracing::warn!(error = %e, "idle unload: eviction failed; reconciliation will correct the view");
            }
        }
        inner.metrics.idle_unloads.inc();
        tracing::info!(function = %record.name(), model = %model.key, "idle: scaled to zero and unloaded");
    }
    Ok(())
}

/// Runs passes every `period` until the plane is dropped.
pub async fn run(inner: Weak<Inner>, period: Duration) {
    let mut ticker = tokio::time::interval(period.max(Duration::from_millis(100)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        if let Err(e) = pass(&inner).await {
            tracing::warn!(error = %e, "idle pass failed");
        }
    }
}
