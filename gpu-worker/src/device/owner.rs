//! The owner thread of one device: the only thread that touches the device's models.
//! It takes jobs in order, so a victim is always dropped before the model that
//! replaces it is loaded, and a model is never dropped while a forward queued before
//! the drop still runs. A panic inside the backend is caught and answered as an
//! internal error; the device keeps serving.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::time::Instant;

use super::Job;
use crate::backend::{BackendError, ModelBackend};
use crate::metrics::Metrics;

pub(super) struct Owner {
    pub name: String,
    pub backend: Box<dyn ModelBackend>,
    pub queued: Arc<AtomicU64>,
    pub device_free: Arc<AtomicU64>,
    pub metrics: Metrics,
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> BackendError {
    let text = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    BackendError::Internal(format!("device thread panicked: {text}"))
}

impl Owner {
    /// Serves jobs until every sender is gone, then drops the backend (and with it
    /// every model) on this thread.
    pub fn run(mut self, rx: std::sync::mpsc::Receiver<Job>) {
        tracing::info!(device = %self.name, backend = self.backend.kind().name(), "device thread started");
        while let Ok(job) = rx.recv() {
            let left = self.queued.fetch_sub(1, Ordering::SeqCst).saturating_sub(1);
            self.metrics.queue_depth.with_label_values(&[&self.name]).set(left as i64);
            self.handle(job);
        }
        tracing::info!(device = %self.name, "device thread stopped");
    }

    fn handle(&mut self, job: Job) {
        match job {
            Job::Load { req, drop_first, reply } => {
                self.unload(&drop_first);
                let started = Instant::now();
                let key = req.key.clone();
                let result = catch_unwind(AssertUnwindSafe(|| self.backend.load(req))).unwrap_or_else(|p| Err(panic_message(p)));
                let ms = started.elapsed().as_secs_f64() * 1e3;
                match &result {
                    Ok(l) => tracing::info!(device = %self.name, model = %key, bytes = l.bytes, ms, "loaded"),
                    Err(e) => tracing::warn!(device = %self.name, model = %key, error = %e, "load failed"),
                }
                self.read_memory();
                let _ = reply.send(result.map(|l| (l, ms)));
            }
            Job::Unload { keys, reply } => {
                self.unload(&keys);
                if let Some(reply) = reply {
                    let _ = reply.send(());
                }
            }
            Job::Place(place) => {
                // Its holder sends its inference at once, or drops the place.
                if let Ok(job) = place.blocking_recv() {
                    self.handle(job);
                }
            }
            Job::Infer { key, input, reply } => {
                let started = Instant::now();
                let result = catch_unwind(AssertUnwindSafe(|| self.backend.infer(&key, &input))).unwrap_or_else(|p| Err(panic_message(p)));
                let ms = started.elapsed().as_secs_f64() * 1e3;
                let _ = reply.send(result.map(|out| (out, ms)));
            }
        }
    }

    fn unload(&mut self, keys: &[String]) {
        if keys.is_empty() {
            return;
        }
        for key in keys {
            let was = catch_unwind(AssertUnwindSafe(|| self.backend.unload(key))).unwrap_or(false);
            tracing::info!(device = %self.name, model = %key, was_loaded = was, "unloaded");
        }
        self.read_memory();
    }

    fn read_memory(&mut self) {
        if let Some(m) = self.backend.memory() {
            self.device_free.store(m.free, Ordering::SeqCst);
        }
    }
}
