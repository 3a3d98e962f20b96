//! The one central dispatch queue, in arrival order, with the index O3 needs.
//!
//! Every submitted request takes a *ticket* (a sequence number, dense from 0). That
//! makes the starvation bound O(1): the oldest waiting request (the head) has been
//! overtaken by the later tickets that already left, and since every earlier ticket has
//! left too, their number is at most `left - head.seq`, where `left` counts departures
//! (a request put back after its GPU failed departs twice, which only makes the count
//! err high). Any other waiting request has been overtaken at most as often as the
//! head, so bounding the head bounds everyone.
//!
//! O3 asks "the oldest waiting request whose model this GPU holds": a per-model FIFO of
//! tickets answers it by looking at one front per held model, never scanning the queue.

use std::collections::{HashMap, VecDeque};

use crate::types::{Micros, ModelId, Request, RequestId};

/// A request waiting in the central queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queued {
    /// The request.
    pub request: Request,
    /// Its ticket: arrival order.
    pub seq: u64,
    /// When it was submitted.
    pub enqueued_at: Micros,
}

/// The central FIFO queue. Slots are indexed by ticket; a dispatched request leaves a
/// hole (`None`) until the holes reach the front.
#[derive(Debug, Default)]
pub struct DispatchQueue {
    /// `slots[i]` holds ticket `base + i`, or `None` once that ticket left.
    slots: VecDeque<Option<Queued>>,
    /// Ticket of `slots[0]`.
    base: u64,
    /// Requests waiting.
    live: usize,
    /// Waiting tickets per model (indexed by `ModelId.0`), ascending.
    by_model: Vec<VecDeque<u64>>,
    /// Ticket of every waiting request, by id.
    index: HashMap<RequestId, u64>,
    /// Tickets issued so far (the next ticket).
    issued: u64,
    /// Departures: dispatches, refusals and cancellations.
    left: u64,
}

impl DispatchQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests waiting.
    pub fn len(&self) -> usize {
        self.live
    }

    /// True when nobody waits.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// True when a request with this id is waiting.
    pub fn contains(&self, id: RequestId) -> bool {
        self.index.contains_key(&id)
    }

    /// Issues the next ticket. Every ticket must end in [`Self::push`] or
    /// [`Self::leave_unqueued`].
    pub fn ticket(&mut self) -> u64 {
        let seq = self.issued;
        self.issued += 1;
        seq
    }

    /// Records that a ticket left without ever waiting (dispatched at once or refused).
    pub fn leave_unqueued(&mut self) {
        self.left += 1;
    }

    /// Appends a request with a fresh ticket at the tail.
    pub fn push(&mut self, seq: u64, request: Request, now: Micros) {
        self.insert(Queued {
            request,
            seq,
            enqueued_at: now,
        });
    }

    /// Puts a request that had left (its GPU went down) back in ticket order. Its
    /// departure stays counted, so the overtaking count only ever errs high: a requeued
    /// request that overtook others still counts as having done so.
    pub fn requeue(&mut self, entry: Queued) {
        self.insert(entry);
    }

    fn insert(&mut self, entry: Queued) {
        let seq = entry.seq;
        if self.live == 0 {
            self.slots.clear();
            self.base = seq;
        }
        while seq < self.base {
            self.slots.push_front(None);
            self.base -= 1;
        }
        let at = (seq - self.base) as usize;
        while self.slots.len() <= at {
            self.slots.push_back(None);
        }
        debug_assert!(self.slots[at].is_none(), "ticket {seq} queued twice");
        let model = entry.request.model.0 as usize;
        if self.by_model.len() <= model {
            self.by_model.resize_with(model + 1, VecDeque::new);
        }
        let fifo = &mut self.by_model[model];
        match fifo.back() {
            Some(&last) if last > seq => {
                let pos = fifo.partition_point(|&s| s < seq);
                fifo.insert(pos, seq);
            }
            _ => fifo.push_back(seq),
        }
        self.index.insert(entry.request.id, seq);
        self.slots[at] = Some(entry);
        self.live += 1;
    }

    /// The oldest waiting request.
    pub fn head(&self) -> Option<&Queued> {
        self.slots.front().and_then(Option::as_ref)
    }

    /// The waiting request with this ticket.
    pub fn get(&self, seq: u64) -> Option<&Queued> {
        let at = seq.checked_sub(self.base)? as usize;
        self.slots.get(at).and_then(Option::as_ref)
    }

    /// How many later requests have left before the head (0 when empty).
    pub fn head_bypassed(&self) -> u64 {
        self.head().map_or(0, |h| self.left - h.seq)
    }

    /// The oldest waiting ticket whose model is among `models`, if it lies within the
    /// first `window` waiting requests (`None` = the whole queue).
    pub fn oldest_of(&self, models: &[ModelId], window: Option<usize>) -> Option<u64> {
        let best = models
            .iter()
            .filter_map(|m| {
                self.by_model
                    .get(m.0 as usize)
                    .and_then(|f| f.front().copied())
            })
            .min()?;
        match window {
            None => Some(best),
            Some(w) => (self.rank(best, w) < w).then_some(best),
        }
    }

    /// Waiting requests before ticket `seq`, counted up to `cap`.
    fn rank(&self, seq: u64, cap: usize) -> usize {
        let end = (seq - self.base) as usize;
        self.slots
            .iter()
            .take(end)
            .filter(|s| s.is_some())
            .take(cap)
            .count()
    }

    /// Waiting requests of one model.
    pub fn waiting_for(&self, model: ModelId) -> usize {
        self.by_model.get(model.0 as usize).map_or(0, VecDeque::len)
    }

    /// Removes a waiting request by ticket (it is being dispatched or refused).
    pub fn take(&mut self, seq: u64) -> Option<Queued> {
        let at = seq.checked_sub(self.base)? as usize;
        let entry = self.slots.get_mut(at)?.take()?;
        let fifo = &mut self.by_model[entry.request.model.0 as usize];
        if fifo.front() == Some(&seq) {
            fifo.pop_front();
        } else if let Ok(pos) = fifo.binary_search(&seq) {
            fifo.remove(pos);
        }
        self.index.remove(&entry.request.id);
        self.live -= 1;
        self.left += 1;
        while matches!(self.slots.front(), Some(None)) {
            self.slots.pop_front();
            self.base += 1;
        }
        Some(entry)
    }

    /// Removes a waiting request by id (its client went away).
    pub fn cancel(&mut self, id: RequestId) -> Option<Queued> {
        let seq = *self.index.get(&id)?;
        self.take(seq)
    }

    /// Waiting requests, oldest first (for inspection and tests; allocates).
    pub fn iter(&self) -> impl Iterator<Item = &Queued> {
        self.slots.iter().filter_map(Option::as_ref)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(id: u64, model: u32) -> Request {
        Request {
            id: RequestId(id),
            model: ModelId(model),
            bytes: 1,
            infer_us: 1,
            load_us: 10,
        }
    }

    fn push(q: &mut DispatchQueue, id: u64, model: u32) -> u64 {
        let seq = q.ticket();
        q.push(seq, req(id, model), 0);
        seq
    }

    #[test]
    fn the_oldest_request_of_a_held_model_is_found_without_scanning() {
        let mut q = DispatchQueue::new();
        push(&mut q, 1, 0);
        push(&mut q, 2, 1);
        push(&mut q, 3, 2);
        push(&mut q, 4, 1);
        assert_eq!(q.oldest_of(&[ModelId(2), ModelId(1)], None), Some(1));
        assert_eq!(q.oldest_of(&[ModelId(9)], None), None);
    }

    #[test]
    fn the_window_hides_requests_too_far_from_the_head() {
        let mut q = DispatchQueue::new();
        for id in 0..5 {
            push(&mut q, id, 0);
        }
        push(&mut q, 5, 1);
        assert_eq!(q.oldest_of(&[ModelId(1)], Some(5)), None);
        assert_eq!(q.oldest_of(&[ModelId(1)], Some(6)), Some(5));
        q.take(2);
        assert_eq!(q.oldest_of(&[ModelId(1)], Some(5)), Some(5));
    }

    #[test]
    fn overtaking_the_head_is_counted_and_dispatching_it_resets_the_count() {
        let mut q = DispatchQueue::new();
        push(&mut q, 1, 0);
        let b = push(&mut q, 2, 1);
        let _ = q.ticket();
        q.leave_unqueued();
        assert_eq!(q.head_bypassed(), 1);
        q.take(b);
        assert_eq!(q.head_bypassed(), 2);
        q.take(0);
        assert!(q.is_empty());
        assert_eq!(q.head_bypassed(), 0);
    }

    #[test]
    fn a_requeued_request_goes_back_in_ticket_order() {
        let mut q = DispatchQueue::new();
        let a = push(&mut q, 1, 0);
        push(&mut q, 2, 0);
        let entry = q.take(a).unwrap();
        assert_eq!(q.head().unwrap().request.id, RequestId(2));
        q.requeue(entry);
        assert_eq!(q.head().unwrap().request.id, RequestId(1));
        assert_eq!(q.len(), 2);
        assert_eq!(q.oldest_of(&[ModelId(0)], None), Some(a));
        assert!(q.cancel(RequestId(2)).is_some());
        assert_eq!(q.iter().count(), 1);
    }
}
