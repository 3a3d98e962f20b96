//! The state every route shares: configuration, store, metrics, credentials, and the
//! data-plane seams as trait objects so tests and the data plane inject their own.

use std::sync::Arc;

use prometheus::Registry;
use tokio::sync::broadcast;

use crate::auth::Credentials;
use crate::config::Config;
use crate::dataplane::{Availability, DesiredIsAvailable, Invoker, LogSource, NoEndpoints, NoLogs};
use crate::events::FunctionEvent;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// Shared, cheaply cloned state of the provider API.
#[derive(Clone)]
pub struct AppState {
    /// The loaded configuration.
    pub config: Arc<Config>,
    /// Functions, secrets and namespaces.
    pub store: Arc<Store>,
    /// The provider's collectors.
    pub metrics: Arc<Metrics>,
    /// The registry `/metrics` exposes (the one `metrics` is registered in).
    pub registry: Registry,
    /// Basic-auth credentials; `None` when `basic_auth` is off.
    pub credentials: Option<Arc<Credentials>>,
    /// Answers `/function/*`.
    pub invoker: Arc<dyn Invoker>,
    /// Feeds `/system/logs`.
    pub logs: Arc<dyn LogSource>,
    /// Decides `availableReplicas`.
    pub availability: Arc<dyn Availability>,
    /// Committed function changes, for the data plane (`events.subscribe()`).
    pub events: broadcast::Sender<FunctionEvent>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .field("store", &self.store)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State with the control plane's default seams; registers the metrics into
    /// `registry` and seeds the replica gauge from the store.
    pub fn new(
        config: Config,
        store: Arc<Store>,
        registry: Registry,
        credentials: Option<Credentials>,
    ) -> Result<Self, StateError> {
        let metrics = Metrics::new(&registry)?;
        for function in store.all_functions()? {
            let key = format!("{}.{}", function.name(), function.namespace());
            metrics.set_service_count(&key, function.replicas);
        }
        Ok(AppState {
            config: Arc::new(config),
            store,
            metrics: Arc::new(metrics),
            registry,
            credentials: credentials.map(Arc::new),
            invoker: Arc::new(NoEndpoints),
            logs: Arc::new(NoLogs),
            availability: Arc::new(DesiredIsAvailable),
            events: crate::events::channel(),
        })
    }

    /// Announces a committed change to the function set and updates the replica gauge.
    pub fn publish(&self, event: FunctionEvent) {
        let record = event.record();
        let key = format!("{}.{}", record.name(), record.namespace());
        match &event {
            FunctionEvent::Deleted(_) => self.metrics.remove_service(&key),
            _ => self.metrics.set_service_count(&key, record.replicas),
        }
        tracing::info!(function = %key, event = event.kind(), "function changed");
        // No receiver is fine: the data plane may not be attached.
        let _ = self.events.send(event);
    }

    /// Replaces the invoker (the data plane's dispatcher).
    pub fn with_invoker(mut self, invoker: Arc<dyn Invoker>) -> Self {
        self.invoker = invoker;
        self
    }

    /// Replaces the log source.
    pub fn with_logs(mut self, logs: Arc<dyn LogSource>) -> Self {
        self.logs = logs;
        self
    }

    /// Replaces the availability view.
    pub fn with_availability(mut self, availability: Arc<dyn Availability>) -> Self {
        self.availability = availability;
        self
    }
}

/// State that could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The metrics could not be registered (e.g. registered twice in one registry).
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}
