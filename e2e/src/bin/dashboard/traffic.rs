//! The traffic the picture shows: an open loop of Poisson arrivals at a fixed rate,
//! each request to one function drawn from a skewed popularity that changes halfway
//! (the small model hot first, the large one after), plus a small share of calls to
//! a function that does not exist, so the error panels have something true to show.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp};
use tokio::time::Instant;

/// The name called for the error share; never deployed.
pub const MISSING: &str = "no-such-function";

/// Popularity of the functions (in `system::functions()` order: resnet18, resnet34,
/// minilm, resnet50) in the first half of the run.
pub const FIRST_HALF: [f64; 4] = [0.50, 0.25, 0.20, 0.05];
/// Popularity in the second half: the large model hot, the small one cold.
pub const SECOND_HALF: [f64; 4] = [0.05, 0.15, 0.30, 0.50];

/// What to send.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Mean requests per second.
    pub rate: f64,
    /// Length of the run.
    pub duration: Duration,
    /// Share of requests sent to [`MISSING`].
    pub error_share: f64,
    /// Seed of the arrival times and choices.
    pub seed: u64,
}

/// What came back: request counts by function and status (`0` = no answer).
pub type Outcome = BTreeMap<(String, u16), usize>;

/// One scheduled request: when (from the start) and to which function.
fn schedule(plan: &Plan, names: &[String]) -> Vec<(Duration, String)> {
    let mut rng = ChaCha8Rng::seed_from_u64(plan.seed);
    let gap = Exp::new(plan.rate.max(1e-9)).expect("a positive rate");
    let end = plan.duration.as_secs_f64();
    let mut at = 0.0;
    let mut out = Vec::new();
    loop {
        at += gap.sample(&mut rng);
        if at >= end {
            return out;
        }
        let weights = if at < end / 2.0 {
            &FIRST_HALF
        } else {
            &SECOND_HALF
        };
        let name = if rng.r#gen::<f64>() < plan.error_share {
            MISSING.to_string()
        } else {
            pick(&mut rng, weights, names)
        };
        out.push((Duration::from_secs_f64(at), name));
    }
}

/// A name drawn with `weights` (the last one takes any rounding remainder).
fn pick(rng: &mut ChaCha8Rng, weights: &[f64], names: &[String]) -> String {
    let total: f64 = weights.iter().take(names.len()).sum();
    let mut x = rng.r#gen::<f64>() * total;
    for (w, name) in weights.iter().zip(names) {
        if x < *w {
            return name.clone();
        }
        x -= w;
    }
    names.last().cloned().unwrap_or_default()
}

/// Sends `plan`'s requests to `base` (the provider) for `names`, each at its time, and
/// waits for every answer.
pub async fn run(client: &reqwest::Client, base: &str, names: &[String], plan: &Plan) -> Outcome {
    let start = Instant::now();
    let client = Arc::new(client.clone());
    let tasks: Vec<_> = schedule(plan, names)
        .into_iter()
        .map(|(at, name)| {
            let client = client.clone();
            let url = format!("{base}/function/{name}");
            tokio::spawn(async move {
                tokio::time::sleep_until(start + at).await;
                let status = match client.post(url).body("x").send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let _ = response.bytes().await;
                        status
                    }
                    Err(_) => 0,
                };
                (name, status)
            })
        })
        .collect();
    let mut outcome = Outcome::new();
    for task in tasks {
        if let Ok(key) = task.await {
            *outcome.entry(key).or_default() += 1;
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_follows_the_popularity_of_each_half() {
        let names: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        let plan = Plan {
            rate: 200.0,
            duration: Duration::from_secs(100),
            error_share: 0.0,
            seed: 7,
        };
        let sent = schedule(&plan, &names);
        assert!((19_000..21_000).contains(&sent.len()), "{}", sent.len());
        let share = |first: bool, name: &str| {
            let half: Vec<_> = sent
                .iter()
                .filter(|(at, _)| (at.as_secs_f64() < 50.0) == first)
                .collect();
            half.iter().filter(|(_, n)| n == name).count() as f64 / half.len() as f64
        };
        assert!((share(true, "a") - FIRST_HALF[0]).abs() < 0.03);
        assert!((share(false, "d") - SECOND_HALF[3]).abs() < 0.03);
        assert!(sent.windows(2).all(|w| w[0].0 <= w[1].0));
    }
}
