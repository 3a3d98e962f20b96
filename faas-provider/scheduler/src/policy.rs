//! The policies, selected by name at start-up, and every knob they have.
//!
//! `lb`, `lalb` and `lalb-o3` follow PAPER.md to the letter, with each rule the paper
//! leaves open (\[ours\]) exposed as a knob. `locus` is our own policy; see
//! `docs/scheduling.md` for what it does and why each piece was kept.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Which policy places requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PolicyKind {
    /// Load balancing only; residency ignored.
    #[serde(rename = "lb")]
    Lb,
    /// Locality-aware load balancing.
    #[serde(rename = "lalb")]
    Lalb,
    /// LALB with out-of-order dispatch from the central queue.
    #[serde(rename = "lalb-o3")]
    LalbO3,
    /// Cost-aware placement (ours).
    #[serde(rename = "locus")]
    Locus,
}

impl PolicyKind {
    /// Every policy, in report order.
    pub const ALL: [PolicyKind; 4] = [Self::Lb, Self::Lalb, Self::LalbO3, Self::Locus];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Lb => "lb",
            Self::Lalb => "lalb",
            Self::LalbO3 => "lalb-o3",
            Self::Locus => "locus",
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a policy (or not a knob value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}` (expected one of: {expected})")]
pub struct ParseError {
    what: &'static str,
    value: String,
    expected: &'static str,
}

impl ParseError {
    /// Stable snake_case name of this error.
    pub fn error_type(&self) -> &'static str {
        "unknown_name"
    }
}

impl FromStr for PolicyKind {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| ParseError {
                what: "policy",
                value: s.to_owned(),
                expected: "lb, lalb, lalb-o3, locus",
            })
    }
}

/// How `lb` picks a GPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LbMode {
    /// Fewest outstanding requests, ties to the lowest GPU index (the default).
    #[default]
    LeastLoaded,
    /// Each GPU in turn.
    RoundRobin,
    /// Uniformly at random, from the scheduler's own seeded generator.
    Random,
}

impl FromStr for LbMode {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "least_loaded" => Ok(Self::LeastLoaded),
            "round_robin" => Ok(Self::RoundRobin),
            "random" => Ok(Self::Random),
            _ => Err(ParseError {
                what: "lb_mode",
                value: s.to_owned(),
                expected: "least_loaded, round_robin, random",
            }),
        }
    }
}

/// What `lalb` does with a request when every GPU is at the busy threshold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenAllBusy {
    /// Keep it in the central queue until a GPU frees (the default).
    #[default]
    Wait,
    /// Send it to the least-loaded GPU holding its model (else the least-loaded GPU).
    QueueOnCached,
    /// Send it to the least-loaded GPU.
    QueueOnLeastLoaded,
}

impl FromStr for WhenAllBusy {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "wait" => Ok(Self::Wait),
            "queue_on_cached" => Ok(Self::QueueOnCached),
            "queue_on_least_loaded" => Ok(Self::QueueOnLeastLoaded),
            _ => Err(ParseError {
                what: "when_all_busy",
                value: s.to_owned(),
                expected: "wait, queue_on_cached, queue_on_least_loaded",
            }),
        }
    }
}

/// Cache replacement inside one GPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvictionKind {
    /// Least recently used first (the paper's).
    #[default]
    Lru,
    /// GreedyDual-Size: cheap-to-reload bytes go first.
    Gds,
}

impl FromStr for EvictionKind {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "lru" => Ok(Self::Lru),
            "gds" => Ok(Self::Gds),
            _ => Err(ParseError {
                what: "eviction",
                value: s.to_owned(),
                expected: "lru, gds",
            }),
        }
    }
}

/// Every knob of every policy. Defaults are PAPER.md's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// `lb`: how a GPU is picked.
    pub lb_mode: LbMode,
    /// Seed of `lb_mode = random`'s generator.
    pub lb_seed: u64,
    /// `lalb`, `lalb-o3`: a GPU with fewer outstanding requests than this is not busy.
    pub busy_threshold: u32,
    /// `lalb`, `lalb-o3`: what to do when every GPU is busy.
    pub when_all_busy: WhenAllBusy,
    /// `lalb-o3`: how many waiting requests a freed GPU scans (`None` = all).
    pub o3_window: Option<usize>,
    /// `lalb-o3`: how often a request may be overtaken before it goes next.
    pub o3_max_bypass: u64,
    /// Eviction inside each GPU for `lb`, `lalb`, `lalb-o3` (the paper: LRU).
    pub eviction: EvictionKind,
    /// `locus`: eviction inside each GPU.
    pub locus_eviction: EvictionKind,
    /// `locus`: a non-holder is chosen only if its expected completion, with the load
    /// counted `locus_load_weight` times, beats the best holder's. Above 1 it charges a
    /// load for the misses it causes later (evicted victims, the GPU time it takes).
    pub locus_load_weight: f64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            lb_mode: LbMode::LeastLoaded,
            lb_seed: 0,
            busy_threshold: 1,
            when_all_busy: WhenAllBusy::Wait,
            o3_window: None,
            o3_max_bypass: 32,
            eviction: EvictionKind::Lru,
            locus_eviction: EvictionKind::Lru,
            locus_load_weight: 2.0,
        }
    }
}
