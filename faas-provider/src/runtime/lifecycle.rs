//! The process runtime's event loop: committed [`FunctionEvent`]s (and, after a lag or
//! at start, the store itself) become keeper slots, `replicas` of them per container
//! function. A deploy starts slots, an update replaces them all (so new secret values
//! are read), a scale adds or drops slots, a delete stops them; model functions are
//! left to the model data plane.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, mpsc, oneshot};

use super::keeper::{self, Replicas, Shared, Slot};
use super::process::{Key, MAX_REPLICAS};
use crate::events::FunctionEvent;
use crate::models::{self, FunctionKind};
use crate::state::AppState;
use crate::store::FunctionRecord;
use crate::types::FunctionDeployment;

/// The task that turns committed changes into keeper slots.
pub(super) struct EventLoop {
    shared: Shared,
    state: AppState,
    replicas: Arc<Mutex<HashMap<Key, Arc<Replicas>>>>,
    slots: HashMap<Key, Function>,
}

/// One container function's keepers.
struct Function {
    deployment: FunctionDeployment,
    generation: u64,
    slots: Vec<Slot>,
}

impl EventLoop {
    pub(super) fn new(
        shared: Shared,
        state: AppState,
        replicas: Arc<Mutex<HashMap<Key, Arc<Replicas>>>>,
    ) -> Self {
        EventLoop {
            shared,
            state,
            replicas,
            slots: HashMap::new(),
        }
    }

    pub(super) async fn run(
        mut self,
        mut events: broadcast::Receiver<FunctionEvent>,
        mut shutdown: mpsc::Receiver<oneshot::Sender<()>>,
    ) {
        self.resync().await;
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Ok(event) => self.apply(event),
                    Err(broadcast::error::RecvError::Lagged(_)) => self.resync().await,
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                done = shutdown.recv() => {
                    let stopping: Vec<Slot> =
                        self.slots.drain().flat_map(|(_, f)| f.slots).collect();
                    futures::future::join_all(stopping.into_iter().map(Slot::stop)).await;
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                    break;
                }
            }
        }
    }

    /// Re-reads the store: the truth after a lag, and the starting point.
    async fn resync(&mut self) {
        let records = match self.state.store.call(|s| s.all_functions()).await {
            Ok(records) => records,
            Err(e) => {
                tracing::error!(error = %e, "process runtime cannot read the functions");
                return;
            }
        };
        let mut seen = Vec::new();
        for record in records.into_iter().filter(is_container) {
            seen.push(key_of(&record));
            self.converge(record, false);
        }
        let gone: Vec<Key> = self
            .slots
            .keys()
            .filter(|k| !seen.contains(k))
            .cloned()
            .collect();
        for key in gone {
            self.remove(&key);
        }
    }

    fn apply(&mut self, event: FunctionEvent) {
        let record = event.record().clone();
        if !is_container(&record) {
            return;
        }
        match event {
            FunctionEvent::Deleted(_) => {
                self.remove(&key_of(&record));
                self.shared.logs.forget(record.namespace(), record.name());
            }
            FunctionEvent::Updated(_) => self.converge(record, true),
            FunctionEvent::Deployed(_) | FunctionEvent::Scaled(_) => self.converge(record, false),
        }
    }

    fn remove(&mut self, key: &Key) {
        if let Some(function) = self.slots.remove(key) {
            for slot in function.slots {
                tokio::spawn(slot.stop());
            }
        }
        let mut map = self.replicas.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(key);
    }

    /// Brings a function to `record`: new replicas when its deployment changed (or
    /// `restart`), then as many slots as it wants.
    fn converge(&mut self, record: FunctionRecord, restart: bool) {
        let key = key_of(&record);
        let replicas = {
            let mut map = self.replicas.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(key.clone()).or_default().clone()
        };
        let function = self.slots.entry(key).or_insert_with(|| Function {
            deployment: record.deployment.clone(),
            generation: 0,
            slots: Vec::new(),
        });
        if restart || function.deployment != record.deployment {
            function.generation += 1;
            function.deployment = record.deployment.clone();
            for slot in function.slots.drain(..) {
                tokio::spawn(slot.stop());
            }
        }
        let want = usize::try_from(record.replicas)
            .unwrap_or(usize::MAX)
            .min(MAX_REPLICAS);
        if record.replicas > MAX_REPLICAS as u64 {
            tracing::warn!(
                function = %record.name(),
                wanted = record.replicas,
                "the process runtime runs at most {MAX_REPLICAS} replicas of a function"
            );
        }
        while function.slots.len() > want {
            let slot = function.slots.pop().expect("more slots than wanted");
            tokio::spawn(slot.stop());
        }
        while function.slots.len() < want {
            let index = function.slots.len();
            function.slots.push(keeper::spawn(
                self.shared.clone(),
                replicas.clone(),
                function.deployment.clone(),
                function.generation,
                index,
            ));
        }
    }
}

fn key_of(record: &FunctionRecord) -> Key {
    (record.namespace().to_string(), record.name().to_string())
}

fn is_container(record: &FunctionRecord) -> bool {
    matches!(
        models::classify(&record.deployment),
        Ok(FunctionKind::Container)
    )
}
