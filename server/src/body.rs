//! The response body: a complete buffer, or the chunks a render sends through a bounded channel.
//! A streamed body owns the render's guard, so dropping it (the client went away) cancels the
//! render; an `Err` chunk makes hyper abort the connection instead of ending the body cleanly.
//!
//! Where the answer's length was sent, the chunk that completes it is held until the channel
//! closes. A client knows such an answer complete at its last byte and may ask again at once
//! (FC's gateway may, with instanceConcurrency 1), but a render gives its slot back, and logs
//! its outcome, only once it has returned, and its channel closes after that: without the wait,
//! an instance with one slot and no queue (s.yaml) could tell that client the slot is taken.

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::sync::mpsc;

/// What a render sends to its body.
pub type Chunk = io::Result<Bytes>;

/// A response body.
pub struct Body {
    kind: Kind,
    _guard: Option<Box<dyn Send + 'static>>,
}

enum Kind {
    Full(Option<Bytes>),
    Stream(Stream),
}

struct Stream {
    rx: mpsc::Receiver<Chunk>,
    /// Bytes to come before the sent length is reached; `None` where no length was sent.
    left: Option<u64>,
    /// The bytes that reached the sent length, waiting for the channel to close.
    held: Option<Bytes>,
}

impl Body {
    /// A body of these bytes.
    pub fn full(bytes: impl Into<Bytes>) -> Body {
        let bytes = bytes.into();
        Body { kind: Kind::Full((!bytes.is_empty()).then_some(bytes)), _guard: None }
    }

    /// An empty body.
    pub fn empty() -> Body {
        Body::full(Bytes::new())
    }

    /// The same body, keeping `guard` alive too until it is dropped.
    pub fn with_guard(self, guard: impl Send + 'static) -> Body {
        Body { kind: self.kind, _guard: Some(Box::new((self._guard, guard))) }
    }

    /// A body streamed from `rx`, keeping `guard` alive until the body is dropped. `length` is
    /// the length sent in the head, if one was: its last bytes wait for `rx` to close.
    pub fn stream(rx: mpsc::Receiver<Chunk>, length: Option<u64>, guard: impl Send + 'static) -> Body {
        Body { kind: Kind::Stream(Stream { rx, left: length, held: None }), _guard: Some(Box::new(guard)) }
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        match &mut self.kind {
            Kind::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Kind::Stream(s) => s.poll_next(cx).map(|c| c.map(|c| c.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(&self.kind, Kind::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Stream(_) => SizeHint::default(),
        }
    }
}

impl Stream {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Chunk>> {
        loop {
            let Some(chunk) = ready!(self.rx.poll_recv(cx)) else {
                return Poll::Ready(self.held.take().map(Ok));
            };
            let (bytes, left) = match (chunk, &mut self.left) {
                (Ok(bytes), Some(left)) => (bytes, left),
                // No length sent: on at once. A failure: on at once too, and the body ends in an
                // error, the held bytes with it.
                (chunk, _) => return Poll::Ready(Some(chunk)),
            };
            *left = left.saturating_sub(bytes.len() as u64);
            if *left > 0 {
                return Poll::Ready(Some(Ok(bytes)));
            }
            // Whatever was held goes first if more comes (hyper refuses more than the length).
            if let Some(earlier) = self.held.replace(bytes) {
                return Poll::Ready(Some(Ok(earlier)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use hyper::body::Body as _;

    fn poll(body: &mut Body) -> Poll<Option<Vec<u8>>> {
        let waker = std::task::Waker::noop();
        let frame = Pin::new(body).poll_frame(&mut Context::from_waker(waker));
        frame.map(|f| f.map(|f| f.unwrap().into_data().unwrap().to_vec()))
    }

    #[test]
    fn the_bytes_that_complete_a_sent_length_wait_for_the_channel_to_close() {
        let (tx, rx) = mpsc::channel(8);
        let mut body = Body::stream(rx, Some(10), ());
        tx.try_send(Ok(Bytes::from_static(b"012345"))).unwrap();
        tx.try_send(Ok(Bytes::from_static(b"6789"))).unwrap();
        assert_eq!(poll(&mut body), Poll::Ready(Some(b"012345".to_vec())));
        assert_eq!(poll(&mut body), Poll::Pending, "the last bytes are held while the render runs");
        drop(tx);
        assert_eq!(poll(&mut body), Poll::Ready(Some(b"6789".to_vec())));
        assert_eq!(poll(&mut body), Poll::Ready(None));
        assert_eq!(poll(&mut body), Poll::Ready(None));
    }

    #[tokio::test]
    async fn without_a_length_chunks_pass_at_once_and_order_is_kept_past_one() {
        let (tx, rx) = mpsc::channel(8);
        let mut body = Body::stream(rx, None, ());
        tx.try_send(Ok(Bytes::from_static(b"ab"))).unwrap();
        assert_eq!(poll(&mut body), Poll::Ready(Some(b"ab".to_vec())));
        assert_eq!(poll(&mut body), Poll::Pending);

        let (tx, rx) = mpsc::channel(8);
        for chunk in [&b"ab"[..], b"cd", b"ef"] {
            tx.try_send(Ok(Bytes::from_static(chunk))).unwrap();
        }
        drop(tx);
        let all = Body::stream(rx, Some(2), ()).collect().await;
        assert_eq!(all.unwrap().to_bytes(), &b"abcdef"[..], "more than the length still comes in order");
    }

    #[test]
    fn a_failure_ends_the_body_in_an_error_even_with_bytes_held() {
        let (tx, rx) = mpsc::channel(8);
        let mut body = Body::stream(rx, Some(2), ());
        tx.try_send(Ok(Bytes::from_static(b"ab"))).unwrap();
        tx.try_send(Err(io::Error::other("render failed"))).unwrap();
        let frame = Pin::new(&mut body).poll_frame(&mut Context::from_waker(std::task::Waker::noop()));
        assert!(matches!(frame, Poll::Ready(Some(Err(_)))));
    }
}
