//! The cluster's self-check: indexes agree with the caches, every cache with its rules.
//! The randomised tests call it after every step.

use locus_vram::Lookup;

use super::Cluster;
use crate::types::GpuId;

impl Cluster {
    /// Checks that the indexes agree with the caches and every cache with its rules.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (i, g) in self.gpus.iter().enumerate() {
            g.cache
                .check_invariants()
                .map_err(|e| format!("gpu {i}: {e}"))?;
            if g.held.len() != g.cache.len() {
                return Err(format!(
                    "gpu {i}: held {} != cache {}",
                    g.held.len(),
                    g.cache.len()
                ));
            }
            for m in &g.held {
                if g.cache.lookup(m) == Lookup::Absent
                    || !self.holders(*m).contains(&GpuId(i as u32))
                {
                    return Err(format!("gpu {i}: {m:?} held but not cached or not indexed"));
                }
            }
            let cost = self.cost_indexes;
            let indexed = [
                self.by_load.contains(&(g.outstanding, i as u32)),
                !cost && g.up || self.by_free.contains(&(g.free_at(), i as u32)),
                !cost && g.up || self.by_room.contains(&(g.cache.free_bytes(), i as u32)),
            ];
            if indexed.iter().any(|x| *x != g.up) {
                return Err(format!("gpu {i}: load index out of date"));
            }
        }
        let indexed: usize = self.holders.iter().map(Vec::len).sum();
        let held: usize = self.gpus.iter().map(|g| g.held.len()).sum();
        let cost_ok = !self.cost_indexes
            || (self.by_load.len() == self.by_free.len()
                && self.by_load.len() == self.by_room.len());
        if indexed != held || !cost_ok {
            return Err(format!(
                "holder index has {indexed} entries for {held} held models"
            ));
        }
        Ok(())
    }
}
