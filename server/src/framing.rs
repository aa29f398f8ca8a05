//! Strict request framing in front of hyper. hyper already answers 400 to malformed or
//! conflicting `Content-Length` values and to a `Transfer-Encoding` that does not end in chunked;
//! two cases it accepts are refused here too, as the service's contract asks:
//!
//! - `Content-Length` together with `Transfer-Encoding` (hyper reads such a request as chunked, as
//!   RFC 9112 §6.3 allows, and closes the connection after it);
//! - `Content-Length` given more than once, even with equal values.
//!
//! The connection's read side passes through [`StrictFraming`], which holds back each request head
//! until it is complete, and in a head with either defect overwrites the first byte of the
//! offending header value (`Transfer-Encoding`, or the second `Content-Length`), so hyper's own
//! parser refuses it with 400 and closes the connection: one response, nothing behind it read.
//! Bodies with a `Content-Length` are skipped by count, so every head of a kept-alive connection is
//! checked; after a chunked body, an upgrade or a head it cannot parse, the wrapper steps aside
//! for the rest of the connection and hyper's rules alone apply.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Heads longer than this are passed on unchecked; hyper refuses them (431) anyway.
const MAX_HEAD: usize = 128 * 1024;
/// hyper's default header count limit.
const MAX_HEADERS: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Collecting a request head.
    Head,
    /// Passing this many body bytes.
    Body(u64),
    /// No longer inspecting.
    Passthrough,
}

/// A connection whose request heads are checked before hyper reads them.
pub struct StrictFraming<T> {
    io: T,
    state: State,
    /// An incomplete head.
    held: Vec<u8>,
    /// Bytes checked and ready for hyper, from `ready_pos`.
    ready: Vec<u8>,
    ready_pos: usize,
}

impl<T> StrictFraming<T> {
    /// Wraps a connection.
    pub fn new(io: T) -> StrictFraming<T> {
        StrictFraming { io, state: State::Head, held: Vec::new(), ready: Vec::new(), ready_pos: 0 }
    }

    /// Runs freshly read bytes through the state machine into `ready`.
    fn feed(&mut self, mut data: Vec<u8>) {
        while !data.is_empty() {
            match self.state {
                State::Passthrough => {
                    self.ready.append(&mut data);
                }
                State::Body(n) => {
                    let k = data.len().min(usize::try_from(n).unwrap_or(usize::MAX));
                    self.ready.extend(data.drain(..k));
                    self.state = if n == k as u64 { State::Head } else { State::Body(n - k as u64) };
                }
                State::Head => {
                    self.held.append(&mut data);
                    match inspect(&mut self.held) {
                        Inspected::Partial if self.held.len() <= MAX_HEAD => {}
                        Inspected::Partial | Inspected::Unparsable => {
                            self.ready.append(&mut self.held);
                            self.state = State::Passthrough;
                        }
                        Inspected::Complete { len, next } => {
                            data = self.held.split_off(len);
                            self.ready.append(&mut self.held);
                            self.state = next;
                        }
                    }
                }
            }
        }
    }
}

enum Inspected {
    Partial,
    Unparsable,
    /// A complete head of `len` bytes (already corrected if it was ambiguous), and what follows it.
    Complete {
        len: usize,
        next: State,
    },
}

/// Parses the head at the start of `buf`; spoils an ambiguous one so hyper refuses it.
fn inspect(buf: &mut [u8]) -> Inspected {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Inspected::Partial,
        Err(_) => return Inspected::Unparsable,
    };
    let base = buf.as_ptr() as usize;
    let offset = |v: &[u8]| v.as_ptr() as usize - base;
    let mut lengths = Vec::new();
    let mut te = None;
    let mut upgrade = req.method == Some("CONNECT");
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            lengths.push((offset(h.value), h.value));
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            te = te.or(Some((offset(h.value), h.value.len())));
        } else if h.name.eq_ignore_ascii_case("upgrade") {
            upgrade = true;
        }
    }
    let spoil = match (te, lengths.as_slice()) {
        (Some((at, n)), [_, ..]) if n > 0 => Some(at),
        (None, [_, (at, v), ..]) if !v.is_empty() => Some(*at),
        _ => None,
    };
    let next = match (te, lengths.first()) {
        _ if spoil.is_some() || upgrade => State::Passthrough,
        (Some(_), _) => State::Passthrough,
        (None, Some((_, v))) => match std::str::from_utf8(v).ok().and_then(|s| s.trim().parse::<u64>().ok()) {
            Some(0) => State::Head,
            Some(n) => State::Body(n),
            None => State::Passthrough,
        },
        (None, None) => State::Head,
    };
    if let Some(at) = spoil {
        // Not a token character: hyper refuses the header value and the request with 400.
        buf[at] = b'\x01';
    }
    Inspected::Complete { len, next }
}

impl<T: AsyncRead + Unpin> AsyncRead for StrictFraming<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.ready_pos < this.ready.len() {
                let n = buf.remaining().min(this.ready.len() - this.ready_pos);
                buf.put_slice(&this.ready[this.ready_pos..this.ready_pos + n]);
                this.ready_pos += n;
                if this.ready_pos == this.ready.len() {
                    this.ready.clear();
                    this.ready_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.state == State::Passthrough && this.held.is_empty() {
                return Pin::new(&mut this.io).poll_read(cx, buf);
            }
            let mut scratch = [0u8; 8192];
            let mut rb = ReadBuf::new(&mut scratch);
            ready!(Pin::new(&mut this.io).poll_read(cx, &mut rb))?;
            if rb.filled().is_empty() {
                // End of stream: hand over what is held so hyper sees the partial head, then EOF.
                if this.held.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                this.ready.append(&mut this.held);
                this.state = State::Passthrough;
                continue;
            }
            this.feed(rb.filled().to_vec());
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StrictFraming<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes and returns what hyper would read.
    fn run(input: &[u8], step: usize) -> (Vec<u8>, State) {
        let mut f = StrictFraming::new(());
        for piece in input.chunks(step) {
            f.feed(piece.to_vec());
        }
        (f.ready, f.state)
    }

    #[test]
    fn good_requests_pass_unchanged_in_any_split() {
        let input = b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\n\r\n";
        for step in [1, 3, 7, input.len()] {
            assert_eq!(run(input, step), (input.to_vec(), State::Head), "step {step}");
        }
        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        assert_eq!(run(chunked, 4), (chunked.to_vec(), State::Passthrough));
    }

    #[test]
    fn ambiguous_heads_are_spoiled() {
        for (input, spoiled) in [
            (&b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"[..], "\x01hunked"),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", "\x01hunked"),
            (b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", "Content-Length: \x01"),
        ] {
            for step in [1, 5, input.len()] {
                let (out, state) = run(input, step);
                assert!(String::from_utf8_lossy(&out).contains(spoiled), "{out:?}");
                assert_eq!((out.len(), state), (input.len(), State::Passthrough));
            }
        }
    }

    #[test]
    fn a_body_is_skipped_and_the_next_head_checked() {
        let input = b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcdPOST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx";
        let (out, state) = run(input, 2);
        assert!(String::from_utf8_lossy(&out).ends_with("Content-Length: \x01\r\n\r\nx"), "{out:?}");
        assert_eq!(state, State::Passthrough);
    }
}
