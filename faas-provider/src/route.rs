//! The one front door of the data plane: [`KindRouter`] looks a function up in the
//! store and, by the kind [`models::classify`] gives it, hands its invocations, log
//! requests and availability questions to the model data plane (GPU workers) or to a
//! container runtime.
//!
//! Unknown functions, and container functions when no container runtime is plugged in,
//! are answered as faas-provider's proxy answers an unresolvable name: 503 `No endpoints
//! available for: <name>.` with `X-OpenFaaS-Internal: proxy`
//! ([`ProviderError::NoEndpoints`]).

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use futures::stream::BoxStream;

use crate::dataplane::{Availability, Invocation, Invoker, LogRequest, LogSource, NoLogs};
use crate::error::ProviderError;
use crate::models::{self, FunctionKind};
use crate::store::{FunctionRecord, Store, StoreError};
use crate::types::LogMessage;

/// Everything a data plane answers for the functions it serves.
pub trait DataPlane: Invoker + LogSource + Availability {}

impl<T: Invoker + LogSource + Availability> DataPlane for T {}

/// Which plane serves a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    /// A model function: the GPU workers.
    Models,
    /// An ordinary container function.
    Containers,
}

/// Dispatches every data-plane question to the plane that serves the function.
#[derive(Clone)]
pub struct KindRouter {
    store: Arc<Store>,
    models: Arc<dyn DataPlane>,
    containers: Option<Arc<dyn DataPlane>>,
}

impl std::fmt::Debug for KindRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KindRouter")
            .field("store", &self.store)
            .field("containers", &self.containers.is_some())
            .finish_non_exhaustive()
    }
}

impl KindRouter {
    /// A router over `store` sending model functions to `models`; no container runtime.
    pub fn new(store: Arc<Store>, models: Arc<dyn DataPlane>) -> Self {
        KindRouter {
            store,
            models,
            containers: None,
        }
    }

    /// Plugs in the runtime that serves ordinary container functions.
    pub fn with_containers(mut self, containers: Arc<dyn DataPlane>) -> Self {
        self.containers = Some(containers);
        self
    }

    /// The plane serving `record`: models for a model function; containers for any
    /// other kind, and for a record `classify` refuses (only a container runtime can
    /// make sense of a deployment without a valid model).
    pub fn plane_of(record: &FunctionRecord) -> Plane {
        match models::classify(&record.deployment) {
            Ok(FunctionKind::Model(_)) => Plane::Models,
            // Future kinds (container functions) land here.
            #[allow(unreachable_patterns)]
            Ok(_) => Plane::Containers,
            Err(_) => Plane::Containers,
        }
    }

    /// The data plane serving `record`, if one is plugged in.
    fn serving(&self, record: &FunctionRecord) -> Option<&Arc<dyn DataPlane>> {
        match Self::plane_of(record) {
            Plane::Models => Some(&self.models),
            Plane::Containers => self.containers.as_ref(),
        }
    }

    /// The stored record of `namespace/name`; `None` when there is none. A read-only
    /// redb transaction on pages the OS already caches: microseconds, so it runs inline.
    fn lookup(&self, namespace: &str, name: &str) -> Result<Option<FunctionRecord>, StoreError> {
        match self.store.function(namespace, name) {
            Ok(record) => Ok(Some(record)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Invoker for KindRouter {
    fn invoke(&self, invocation: Invocation) -> BoxFuture<'static, Response> {
        let found = self.lookup(&invocation.namespace, &invocation.function);
        let plane = match found {
            Ok(Some(record)) => self.serving(&record).cloned(),
            Ok(None) => None,
            Err(e) => {
                let response = ProviderError::Store(e).into_response();
                return Box::pin(async move { response });
            }
        };
        match plane {
            Some(plane) => plane.invoke(invocation),
            None => {
                let response = ProviderError::NoEndpoints(invocation.target).into_response();
                Box::pin(async move { response })
            }
        }
    }
}

impl LogSource for KindRouter {
    fn logs(&self, request: LogRequest) -> BoxStream<'static, LogMessage> {
        let plane = match self.lookup(&request.namespace, &request.name) {
            Ok(Some(record)) => self.serving(&record).cloned(),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "logs: store lookup failed");
                None
            }
        };
        match plane {
            Some(plane) => plane.logs(request),
            None => NoLogs.logs(request),
        }
    }
}

impl Availability for KindRouter {
    fn available_replicas(&self, function: &FunctionRecord) -> u64 {
        self.serving(function)
            .map_or(0, |plane| plane.available_replicas(function))
    }

    fn gpu_status(&self, function: &FunctionRecord) -> Option<serde_json::Value> {
        self.serving(function)?.gpu_status(function)
    }

    fn usage(&self, function: &FunctionRecord) -> Option<crate::types::FunctionUsage> {
        self.serving(function)?.usage(function)
    }
}

#[cfg(test)]
mod tests;
