//! A request body that streams to the worker and can still be sent again.
//!
//! The first attempt pulls chunks from the caller as the worker reads them (nothing is
//! buffered ahead); each chunk is also kept, up to a limit, so that if the worker is
//! lost the request can be re-sent elsewhere: a later attempt replays the kept chunks,
//! then continues pulling. A body longer than the limit still streams, but once a
//! chunk has been dropped no later attempt can be made ([`ReplayBody::replayable`]).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::{Body, BodyDataStream};
use bytes::Bytes;
use futures::Stream;

/// The shared source of every attempt.
struct Source {
    stream: BodyDataStream,
    kept: Vec<Bytes>,
    kept_bytes: usize,
    limit: usize,
    /// A chunk was not kept: attempts after the first cannot replay.
    overflowed: bool,
    /// The caller's body has ended.
    done: bool,
    /// Attempts started so far.
    attempts: u32,
}

/// A caller's body, shared by the attempts to send it.
#[derive(Clone)]
pub struct ReplayBody {
    source: Arc<Mutex<Source>>,
}

impl ReplayBody {
    /// Wraps `body`, keeping at most `limit` bytes for re-sending.
    pub fn new(body: Body, limit: usize) -> Self {
        ReplayBody {
            source: Arc::new(Mutex::new(Source {
                stream: body.into_data_stream(),
                kept: Vec::new(),
                kept_bytes: 0,
                limit,
                overflowed: false,
                done: false,
                attempts: 0,
            })),
        }
    }

    /// Whether another attempt could send the whole body.
    pub fn replayable(&self) -> bool {
        let source = self.source.lock().expect("body lock");
        source.attempts == 0 || !source.overflowed
    }

    /// A stream of the body for one attempt; `None` when it can no longer be replayed.
    pub fn attempt(&self) -> Option<Attempt> {
        let mut source = self.source.lock().expect("body lock");
        if source.attempts > 0 && source.overflowed {
            return None;
        }
        source.attempts += 1;
        Some(Attempt {
            source: self.source.clone(),
            position: 0,
        })
    }
}

/// One attempt's view of the body: the kept chunks, then fresh ones from the caller.
pub struct Attempt {
    source: Arc<Mutex<Source>>,
    position: usize,
}

impl Stream for Attempt {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let source = self.source.clone();
        // Held only for this poll, never across an await.
        let mut source = source.lock().expect("body lock");
        if self.position < source.kept.len() && !source.overflowed {
            let chunk = source.kept[self.position].clone();
            self.position += 1;
            return Poll::Ready(Some(Ok(chunk)));
        }
        if source.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut source.stream).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                if !source.overflowed {
                    if source.kept_bytes + chunk.len() <= source.limit {
                        source.kept_bytes += chunk.len();
                        source.kept.push(chunk.clone());
                        self.position += 1;
                    } else {
                        source.overflowed = true;
                        source.kept.clear();
                        source.kept_bytes = 0;
                    }
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => {
                source.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    async fn collect(attempt: Attempt) -> Vec<u8> {
        let chunks: Vec<_> = attempt.collect().await;
        chunks
            .into_iter()
            .flat_map(|c| c.unwrap().to_vec())
            .collect()
    }

    fn chunked(parts: &[&'static [u8]]) -> Body {
        let parts: Vec<Result<Bytes, std::io::Error>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        Body::from_stream(futures::stream::iter(parts))
    }

    #[tokio::test]
    async fn a_second_attempt_sends_the_same_bytes() {
        let body = ReplayBody::new(chunked(&[b"ab", b"cd", b"e"]), 100);
        assert_eq!(collect(body.attempt().unwrap()).await, b"abcde");
        assert!(body.replayable());
        assert_eq!(collect(body.attempt().unwrap()).await, b"abcde");
    }

    #[tokio::test]
    async fn an_attempt_cut_short_is_completed_by_the_next() {
        let body = ReplayBody::new(chunked(&[b"ab", b"cd", b"e"]), 100);
        let mut first = body.attempt().unwrap();
        assert_eq!(&first.next().await.unwrap().unwrap()[..], b"ab");
        drop(first);
        assert_eq!(collect(body.attempt().unwrap()).await, b"abcde");
    }

    #[tokio::test]
    async fn a_body_over_the_limit_streams_once_and_is_then_not_replayable() {
        let body = ReplayBody::new(chunked(&[b"abc", b"def"]), 4);
        assert_eq!(collect(body.attempt().unwrap()).await, b"abcdef");
        assert!(!body.replayable());
        assert!(body.attempt().is_none());
    }
}
