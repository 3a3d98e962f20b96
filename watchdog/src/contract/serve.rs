//! Serving a router on a bound listener with the contract's shutdown sequence.
//!
//! The sequence mirrors of-watchdog's `listenUntilShutdown`: when `shutdown` resolves the
//! contract flips to not-ready and keeps accepting for `healthcheck_interval`; then the
//! listener closes, idle keep-alive connections are closed, and requests already accepted
//! are drained for up to `write_timeout`. HTTP/1.1 and h2c are both served (Knative).

use std::future::Future;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use super::Contract;

/// Serves `app` on `listener` until `shutdown` resolves, then runs the drain sequence and
/// returns. `read_timeout` bounds the wait for request headers. The caller marks the
/// contract ready ([`Contract::mark_ready`]) when its function can take requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    contract: Contract,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let config = contract.config().clone();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.read_timeout);
    builder.http2().timer(TokioTimer::new());

    let graceful = GracefulShutdown::new();
    let stop = async {
        shutdown.await;
        contract.begin_shutdown("SIGTERM").await;
    };
    tokio::pin!(stop);

    loop {
        let (stream, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!("Error accepting connection: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("connection from {peer} ended: {e}");
            }
        });
    }
    drop(listener);

    tracing::info!(
        "No new connections allowed, draining: {} requests",
        contract.in_flight()
    );
    let drain = async {
        graceful.shutdown().await;
        contract.drained().await;
    };
    if tokio::time::timeout(config.write_timeout, drain)
        .await
        .is_err()
    {
        tracing::warn!(
            "Drain deadline of {} reached; cutting off {} requests",
            crate::duration::display(config.write_timeout),
            contract.in_flight()
        );
    }
    tracing::info!("Exiting. Active connections: {}", contract.in_flight());
    Ok(())
}
