//! The log lines of container functions: one bounded ring per function, fed by its
//! replicas' stdout and stderr, read by `/system/logs` (history, then live lines when
//! following).
//!
//! [`Ring`] is the plain struct (push, select); [`LogBook`] shares the rings behind a
//! std mutex (never held across an await) and broadcasts each new line to followers.
//! Every line gets a sequence number so a follower that subscribed before reading the
//! history skips the lines it already has.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

use crate::dataplane::{LogRequest, LogSource};
use crate::types::LogMessage;

/// Longest line kept, in bytes; the rest of a longer line is cut and marked.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// How many live lines a slow follower may fall behind before it skips some.
const LIVE_CAPACITY: usize = 4096;

/// A line with its sequence number.
type Numbered = (u64, Arc<LogMessage>);

/// One function's last `capacity` lines, oldest first.
#[derive(Debug)]
pub struct Ring {
    lines: VecDeque<Numbered>,
    capacity: usize,
}

impl Ring {
    /// An empty ring keeping at most `capacity` lines (at least one).
    pub fn new(capacity: usize) -> Self {
        Ring {
            lines: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Appends a line, dropping the oldest beyond capacity.
    pub fn push(&mut self, seq: u64, line: Arc<LogMessage>) {
        if self.lines.len() == self.capacity {
            self.lines.pop_front();
        }
        self.lines.push_back((seq, line));
    }

    /// The lines `request` asks for (instance, since, then the last `tail`).
    pub fn select(&self, request: &LogRequest) -> Vec<Numbered> {
        let matching: Vec<Numbered> = self
            .lines
            .iter()
            .filter(|(_, line)| matches(request, line))
            .cloned()
            .collect();
        let skip = match request.tail {
            Some(tail) => matching.len().saturating_sub(tail as usize),
            None => 0,
        };
        matching.into_iter().skip(skip).collect()
    }

    /// How many lines are kept.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether no line is kept.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

/// Whether `line` passes `request`'s instance and since filters (its function is the
/// ring's, or checked by the caller for live lines).
fn matches(request: &LogRequest, line: &LogMessage) -> bool {
    request
        .instance
        .as_ref()
        .is_none_or(|i| *i == line.instance)
        && request.since.is_none_or(|since| line.timestamp >= since)
}

/// Cuts `text` to [`MAX_LINE_BYTES`] on a character boundary, marking the cut.
pub fn bounded(mut text: String) -> String {
    if text.len() > MAX_LINE_BYTES {
        let mut end = MAX_LINE_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str(" [line truncated]");
    }
    text
}

#[derive(Debug, Default)]
struct Rings {
    next_seq: u64,
    by_function: HashMap<(String, String), Ring>,
}

/// Every container function's log lines, shared by the runtime and the logs route.
#[derive(Debug, Clone)]
pub struct LogBook {
    rings: Arc<Mutex<Rings>>,
    live: broadcast::Sender<Numbered>,
    capacity: usize,
}

impl LogBook {
    /// A log book keeping `capacity` lines per function.
    pub fn new(capacity: usize) -> Self {
        LogBook {
            rings: Arc::default(),
            live: broadcast::channel(LIVE_CAPACITY).0,
            capacity,
        }
    }

    /// Records one line (cut to [`MAX_LINE_BYTES`]) and hands it to followers.
    pub fn push(&self, mut line: LogMessage) {
        line.text = bounded(line.text);
        let line = Arc::new(line);
        let mut rings = self.rings.lock().unwrap_or_else(|e| e.into_inner());
        let seq = rings.next_seq;
        rings.next_seq += 1;
        let key = (line.namespace.clone(), line.name.clone());
        let capacity = self.capacity;
        rings
            .by_function
            .entry(key)
            .or_insert_with(|| Ring::new(capacity))
            .push(seq, line.clone());
        // Sent under the lock so followers see lines in sequence order; no receiver is fine.
        let _ = self.live.send((seq, line));
    }

    /// Drops a deleted function's lines.
    pub fn forget(&self, namespace: &str, name: &str) {
        let mut rings = self.rings.lock().unwrap_or_else(|e| e.into_inner());
        rings
            .by_function
            .remove(&(namespace.to_string(), name.to_string()));
    }

    /// How many lines are kept for a function.
    pub fn lines_of(&self, namespace: &str, name: &str) -> usize {
        let rings = self.rings.lock().unwrap_or_else(|e| e.into_inner());
        rings
            .by_function
            .get(&(namespace.to_string(), name.to_string()))
            .map_or(0, Ring::len)
    }
}

impl LogSource for LogBook {
    fn logs(&self, request: LogRequest) -> BoxStream<'static, LogMessage> {
        // Subscribe first, then read the history: no line falls between the two.
        let live = request.follow.then(|| self.live.subscribe());
        let history = {
            let rings = self.rings.lock().unwrap_or_else(|e| e.into_inner());
            rings
                .by_function
                .get(&(request.namespace.clone(), request.name.clone()))
                .map(|ring| ring.select(&request))
                .unwrap_or_default()
        };
        let last = history.last().map(|(seq, _)| *seq);
        let history = futures::stream::iter(history.into_iter().map(|(_, l)| (*l).clone()));
        let Some(live) = live else {
            return Box::pin(history);
        };
        let live = BroadcastStream::new(live).filter_map(move |item| {
            let keep = match item {
                Ok((seq, line))
                    if last.is_none_or(|last| seq > last)
                        && line.name == request.name
                        && line.namespace == request.namespace
                        && matches(&request, &line) =>
                {
                    Some((*line).clone())
                }
                // A lagging follower skips what it missed rather than end the stream.
                _ => None,
            };
            futures::future::ready(keep)
        });
        Box::pin(history.chain(live))
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;

    fn line(name: &str, instance: &str, text: &str, at: i64) -> LogMessage {
        LogMessage {
            name: name.into(),
            namespace: "openfaas-fn".into(),
            instance: instance.into(),
            timestamp: OffsetDateTime::from_unix_timestamp(at).unwrap(),
            text: text.into(),
        }
    }

    fn request(name: &str) -> LogRequest {
        LogRequest {
            name: name.into(),
            namespace: "openfaas-fn".into(),
            instance: None,
            since: None,
            tail: None,
            follow: false,
        }
    }

    async fn texts(book: &LogBook, request: LogRequest) -> Vec<String> {
        book.logs(request).map(|l| l.text).collect().await
    }

    #[tokio::test]
    async fn history_is_per_function_bounded_and_filtered_by_tail_instance_and_since() {
        let book = LogBook::new(3);
        for (i, text) in ["a", "b", "c", "d"].into_iter().enumerate() {
            let instance = if i % 2 == 0 { "fn1-0" } else { "fn1-1" };
            book.push(line("fn1", instance, text, i as i64));
        }
        book.push(line("fn2", "fn2-0", "other", 9));
        assert_eq!(texts(&book, request("fn1")).await, ["b", "c", "d"]);
        let mut r = request("fn1");
        r.tail = Some(2);
        assert_eq!(texts(&book, r).await, ["c", "d"]);
        let mut r = request("fn1");
        r.instance = Some("fn1-0".into());
        assert_eq!(texts(&book, r).await, ["c"]);
        let mut r = request("fn1");
        r.since = Some(OffsetDateTime::from_unix_timestamp(3).unwrap());
        assert_eq!(texts(&book, r).await, ["d"]);
        book.forget("openfaas-fn", "fn1");
        assert!(texts(&book, request("fn1")).await.is_empty());
        assert_eq!(book.lines_of("openfaas-fn", "fn2"), 1);
    }

    #[tokio::test]
    async fn a_follower_gets_the_history_then_only_new_lines_of_its_function() {
        let book = LogBook::new(10);
        book.push(line("fn1", "fn1-0", "old", 0));
        let mut r = request("fn1");
        r.follow = true;
        let mut stream = book.logs(r);
        book.push(line("fn2", "fn2-0", "not mine", 1));
        book.push(line("fn1", "fn1-0", "new", 2));
        assert_eq!(stream.next().await.unwrap().text, "old");
        assert_eq!(stream.next().await.unwrap().text, "new");
    }

    #[test]
    fn long_lines_are_cut_on_a_character_boundary_and_marked() {
        let text = "é".repeat(MAX_LINE_BYTES);
        let cut = bounded(text);
        assert!(cut.ends_with(" [line truncated]"));
        assert!(cut.len() <= MAX_LINE_BYTES + 20);
        assert_eq!(bounded("short".into()), "short");
    }
}
