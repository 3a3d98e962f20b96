//! The health round: every `health_interval` the worker source is resolved again and
//! each worker's `GET /v1/status` read; the results go to the actor in one
//! [`Command::Health`], which joins new workers, takes failed or vanished ones out and
//! brings recovered ones back. Every `reconcile_interval` the same round also asks the
//! actor to compare idle GPUs' views with the workers' own status.

use std::time::Duration;

use futures::future::join_all;
use tokio::sync::mpsc;

use super::actor::Command;
use super::discovery::WorkerSource;
use super::workers::WorkerClient;

/// One round: resolve, read every status, report. False once the actor is gone.
pub async fn round(
    source: &WorkerSource,
    client: &WorkerClient,
    commands: &mpsc::UnboundedSender<Command>,
    timeout: Duration,
    reconcile: bool,
) -> bool {
    let urls = source.resolve().await;
    let results = join_all(urls.into_iter().map(|url| async move {
        let status = client
            .status(&url, timeout)
            .await
            .map_err(|e| e.to_string());
        (url, status)
    }))
    .await;
    commands
        .send(Command::Health { results, reconcile })
        .is_ok()
}

/// Runs rounds until the actor stops. Holds only a weak sender, so the actor (and
/// this loop) end when the data plane is dropped.
pub async fn run(
    source: WorkerSource,
    client: WorkerClient,
    commands: mpsc::WeakUnboundedSender<Command>,
    health_interval: Duration,
    reconcile_interval: Duration,
) {
    let period = health_interval.max(Duration::from_millis(50));
    let every = if reconcile_interval.is_zero() {
        u64::MAX
    } else {
        (reconcile_interval.as_millis() / period.as_millis()).max(1) as u64
    };
    let timeout = period
        .min(Duration::from_secs(5))
        .max(Duration::from_millis(500));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: u64 = 0;
    loop {
        ticker.tick().await;
        let Some(commands) = commands.upgrade() else {
            return;
        };
        n += 1;
        if !round(
            &source,
            &client,
            &commands,
            timeout,
            n.is_multiple_of(every),
        )
        .await
        {
            return;
        }
    }
}
