//! Admission in the provider's dispatch order.
//!
//! The provider's cache view decides, request by request, what each device holds: this
//! one is a hit, that one loads and evicts these victims. Requests travel to the worker
//! on separate connections and can arrive in another order, and a cache that admits them
//! in arrival order ends up holding something else (a request the view planned as a
//! load finds its model still resident, the victim an earlier request was to free is
//! pinned, the worker evicts by its own LRU instead). So each request carries its
//! place, `EPOCH.SEQ` (the provider's start-up epoch and a per-device counter), and the
//! device admits it only when every earlier one has been admitted, or after
//! [`PATIENCE`] (a request the provider numbered but never sent, e.g. its caller left,
//! must not stall the device). Waiting covers only the admission decision (pin, join or
//! begin a load), never a load itself.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

/// How long a request waits for the ones numbered before it, by default (the worker's
/// `order_patience`).
pub const PATIENCE: Duration = Duration::from_millis(50);

/// A request's place in its device's admission order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    /// The provider's start-up epoch: a new one restarts the count.
    pub epoch: u64,
    /// Position in the provider's dispatch order for this device.
    pub seq: u64,
}

impl std::str::FromStr for Ticket {
    type Err = String;

    /// Parses `EPOCH.SEQ`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (epoch, seq) = s
            .trim()
            .split_once('.')
            .ok_or_else(|| format!("`{s}` is not EPOCH.SEQ"))?;
        let number = |v: &str| v.parse::<u64>().map_err(|_| format!("`{s}` is not EPOCH.SEQ"));
        Ok(Ticket { epoch: number(epoch)?, seq: number(seq)? })
    }
}

impl std::fmt::Display for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.epoch, self.seq)
    }
}

/// The next place a device admits, per provider epoch.
#[derive(Debug)]
pub struct Sequencer {
    /// `(epoch, next seq)`; `None` until the first numbered request.
    next: Mutex<Option<(u64, u64)>>,
    turn: Notify,
    /// How long [`Turn::wait`] waits.
    patience: Duration,
}

impl Default for Sequencer {
    fn default() -> Self {
        Sequencer::new(PATIENCE)
    }
}

impl Sequencer {
    /// A sequencer whose turns wait at most `patience`.
    pub fn new(patience: Duration) -> Self {
        Sequencer { next: Mutex::new(None), turn: Notify::new(), patience }
    }

    fn next(&self) -> std::sync::MutexGuard<'_, Option<(u64, u64)>> {
        self.next.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// True when `t` may be admitted now: every earlier place was admitted, `t` is late
    /// (its place passed), or it is the first of its epoch (adopted as the start).
    fn ready(&self, t: Ticket) -> bool {
        let mut next = self.next();
        match *next {
            Some((epoch, n)) if epoch == t.epoch => t.seq <= n,
            _ => {
                *next = Some((t.epoch, t.seq));
                true
            }
        }
    }

    /// Waits for `t`'s turn, at most `patience`. False if it gave up waiting.
    pub async fn wait(&self, t: Ticket, patience: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let notified = self.turn.notified();
            tokio::pin!(notified);
            // Registered before looking, so an admission in between still wakes us.
            notified.as_mut().enable();
            if self.ready(t) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }

    /// `t` was admitted (or will never be): the places after it may go.
    pub fn done(&self, t: Ticket) {
        {
            let mut next = self.next();
            match next.as_mut() {
                Some((epoch, n)) if *epoch == t.epoch => *n = (*n).max(t.seq + 1),
                _ => *next = Some((t.epoch, t.seq + 1)),
            }
        }
        self.turn.notify_waiters();
    }
}

/// One request's turn: released when it is admitted, or when the request ends without
/// being admitted (bad input, a disconnect), so the places after it never wait for it.
#[derive(Debug)]
pub struct Turn {
    sequencer: Arc<Sequencer>,
    ticket: Ticket,
    released: bool,
}

impl Turn {
    pub(crate) fn new(sequencer: Arc<Sequencer>, ticket: Ticket) -> Self {
        Turn { sequencer, ticket, released: false }
    }

    /// Waits for this turn (at most the sequencer's patience); false if it gave up.
    pub async fn wait(&self) -> bool {
        self.sequencer.wait(self.ticket, self.sequencer.patience).await
    }

    /// Lets the next place go.
    pub fn release(&mut self) {
        if !self.released {
            self.released = true;
            self.sequencer.done(self.ticket);
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(epoch: u64, seq: u64) -> Ticket {
        Ticket { epoch, seq }
    }

    #[tokio::test]
    async fn a_request_waits_for_the_one_numbered_before_it() {
        let s = Arc::new(Sequencer::default());
        assert!(s.wait(t(7, 0), PATIENCE).await, "the first of an epoch starts the count");
        let second = {
            let s = s.clone();
            tokio::spawn(async move {
                let ok = s.wait(t(7, 2), Duration::from_secs(10)).await;
                s.done(t(7, 2));
                ok
            })
        };
        // 2 cannot go before 1: admitting 0 lets 1 go, and admitting 1 lets 2 go.
        s.done(t(7, 0));
        tokio::task::yield_now().await;
        assert!(!second.is_finished());
        assert!(s.wait(t(7, 1), PATIENCE).await);
        s.done(t(7, 1));
        assert!(second.await.unwrap(), "2 went in order, not by giving up");
    }

    #[tokio::test]
    async fn a_place_never_sent_stalls_the_next_only_for_the_patience() {
        let s = Sequencer::default();
        assert!(s.wait(t(1, 0), PATIENCE).await);
        s.done(t(1, 0));
        // 1 never comes: 2 gives up after the patience and goes.
        assert!(!s.wait(t(1, 2), PATIENCE).await);
        s.done(t(1, 2));
        // 1 arrives late: its place has passed, so it goes at once.
        assert!(s.wait(t(1, 1), PATIENCE).await);
    }

    #[tokio::test]
    async fn a_new_epoch_restarts_the_count_and_a_dropped_turn_lets_the_next_go() {
        let s = Arc::new(Sequencer::default());
        s.done(t(1, 99));
        assert!(s.wait(t(2, 5), PATIENCE).await, "a restarted provider is not held back");
        drop(Turn::new(s.clone(), t(2, 5)));
        assert!(s.wait(t(2, 6), Duration::from_millis(1)).await);
        assert_eq!("3.14".parse::<Ticket>(), Ok(t(3, 14)));
        assert!("3".parse::<Ticket>().is_err() && "a.1".parse::<Ticket>().is_err());
        assert_eq!(t(3, 14).to_string(), "3.14");
    }
}
