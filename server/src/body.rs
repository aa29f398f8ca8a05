//! The response body: a complete buffer, or the chunks a render sends through a bounded channel.
//! A streamed body owns the render's guard, so dropping it (the client went away) cancels the
//! render; an `Err` chunk makes hyper abort the connection instead of ending the body cleanly.

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
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
    Stream(mpsc::Receiver<Chunk>),
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

    /// A body streamed from `rx`, keeping `guard` alive until the body is dropped.
    pub fn stream(rx: mpsc::Receiver<Chunk>, guard: impl Send + 'static) -> Body {
        Body { kind: Kind::Stream(rx), _guard: Some(Box::new(guard)) }
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        match &mut self.kind {
            Kind::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Kind::Stream(rx) => rx.poll_recv(cx).map(|c| c.map(|c| c.map(Frame::data))),
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
