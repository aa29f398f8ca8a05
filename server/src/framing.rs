//! Strict request framing and client time limits in front of hyper. hyper already answers 400 to
//! malformed or conflicting `Content-Length` values and to a `Transfer-Encoding` that does not end
//! in chunked; the cases it accepts are refused here too, as the service's contract asks:
//!
//! - `Content-Length` together with `Transfer-Encoding` (any instance of either; hyper reads such
//!   a request as chunked, as RFC 9112 §6.3 allows);
//! - `Content-Length` given more than once, even with equal values;
//! - `Transfer-Encoding` given more than once (a second instance is how a smuggled request slips
//!   past a proxy that reads only the first).
//!
//! The connection's read side passes through [`StrictFraming`], which holds back each request head
//! until it is complete, and answers a head with a defect (or a malformed `Content-Length`) with a
//! 400 in JSON itself; behind a pipelined request still being answered it overwrites the first byte
//! of the offending header value instead, so hyper's own parser refuses it with 400. Either way the
//! connection closes: one response, nothing behind it read. Bodies are followed to their end — by
//! count for `Content-Length`, chunk by chunk (sizes, data, trailers) for chunked ones — and
//! requests with `Upgrade` or `CONNECT` are ordinary requests here (the server upgrades nothing),
//! so every head of a kept-alive connection is checked. Only after a head it cannot parse (which
//! hyper refuses and closes on) does the wrapper step aside.
//!
//! **Time limits for what a client sends, not for idle.** Once the first byte of a request head
//! has arrived, the head must be complete within [`Timeouts::head`]; past it the client gets a
//! 408 with a JSON body and the connection closes. A body must arrive within [`Timeouts::body`]
//! of its head (with `MAX_BODY_BYTES` that is also a minimum rate); past it the read fails with
//! `TimedOut`, which the service answers 408. Between requests a kept-alive connection may stay
//! silent for ever, as FC requires.
//!
//! **And for what a client is sent**: a response the client accepts none of for
//! [`Timeouts::send`] (a paused download, `curl … | less` waiting on its reader) fails its write
//! with `TimedOut`, so hyper closes the connection and drops the body, which cancels the render
//! and frees its slot; otherwise the stalled render would hold it until its deadline. The clock
//! runs only while a write waits, from its first wait after the last progress, as nginx's
//! `send_timeout` does: a render that has nothing to send yet is not slow.

use crate::conns::Slot;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// hyper's default header count limit.
const MAX_HEADERS: usize = 100;
/// Longest chunk-size or trailer line followed; a longer one is refused by hyper anyway.
const MAX_LINE: usize = 4096;

/// How long a client may take to send what it has started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// From the first byte of a request head to its end.
    pub head: Duration,
    /// From the end of a head to the end of its body.
    pub body: Duration,
    /// The longest a write may wait for the client to accept any of it.
    pub send: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts { head: Duration::from_secs(10), body: Duration::from_secs(30), send: Duration::from_secs(60) }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// Collecting a request head.
    Head,
    /// Passing this many body bytes.
    Body(u64),
    /// Following a chunked body.
    Chunked(Chunk),
    /// No longer inspecting.
    Passthrough,
}

/// Where a chunked body is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Chunk {
    /// A chunk-size line, so far.
    Size(Vec<u8>),
    /// This many bytes of chunk data.
    Data(u64),
    /// The CRLF after chunk data: this many bytes of it.
    DataEnd(u8),
    /// A trailer line (or the final empty line), so far.
    Trailer(Vec<u8>),
}

/// A connection whose request heads are checked before hyper reads them, and whose client is
/// held to [`Timeouts`].
pub struct StrictFraming<T> {
    io: T,
    state: State,
    /// An incomplete head.
    held: Vec<u8>,
    /// Bytes checked and ready for hyper, from `ready_pos`.
    ready: Vec<u8>,
    ready_pos: usize,
    timeouts: Timeouts,
    /// When what the client is sending must be complete; `None` while idle.
    deadline: Option<Instant>,
    sleep: Option<Pin<Box<Sleep>>>,
    /// When a write that is waiting must have made progress; `None` while writes go out.
    send_deadline: Option<Instant>,
    send_sleep: Option<Pin<Box<Sleep>>>,
    /// The answer being written in hyper's place (a 408, a refusal of a head, HTTP/2's GOAWAY),
    /// and how much of it is out.
    refusal: Option<(Vec<u8>, usize)>,
    /// The connection's place among the open ones (closed when evicted while idle).
    slot: Option<Arc<Slot>>,
    /// Longest request head taken (`MAX_HEADER_BYTES`); a longer one is a 431.
    max_head: usize,
}

impl<T> StrictFraming<T> {
    /// Wraps a connection.
    pub fn new(io: T, timeouts: Timeouts) -> StrictFraming<T> {
        StrictFraming {
            io,
            state: State::Head,
            held: Vec::new(),
            ready: Vec::new(),
            ready_pos: 0,
            timeouts,
            deadline: None,
            sleep: None,
            send_deadline: None,
            send_sleep: None,
            refusal: None,
            slot: None,
            max_head: 64 * 1024,
        }
    }

    /// Refuses heads longer than `bytes` with a 431.
    pub fn with_max_head(mut self, bytes: usize) -> StrictFraming<T> {
        self.max_head = bytes;
        self
    }

    /// Whether the server may answer a bad head itself now (a JSON refusal written straight to
    /// the connection): nothing of an earlier request is waiting for hyper or being answered.
    fn may_answer(&self) -> bool {
        self.ready_pos >= self.ready.len() && self.slot.as_ref().is_some_and(|s| !s.busy())
    }

    /// Answers the held head with `status` and a JSON error, then ends the connection.
    fn refuse(&mut self, status: &str, why: &str) {
        self.answer_and_end(refusal(status, why));
    }

    /// Writes `answer` in place of anything hyper would, then ends the connection.
    fn answer_and_end(&mut self, answer: Vec<u8>) {
        self.held.clear();
        self.deadline = None;
        self.state = State::Passthrough;
        self.refusal = Some((answer, 0));
    }

    /// Makes the connection one of `conns`'s: when evicted between requests (or while its head
    /// trickles in), it closes.
    pub fn with_slot(mut self, slot: Arc<Slot>) -> StrictFraming<T> {
        self.slot = Some(slot);
        self
    }

    /// Runs freshly read bytes through the state machine into `ready`.
    fn feed(&mut self, mut data: Vec<u8>) {
        while !data.is_empty() {
            match &mut self.state {
                State::Passthrough => {
                    self.ready.append(&mut data);
                }
                State::Body(n) => {
                    let k = data.len().min(usize::try_from(*n).unwrap_or(usize::MAX));
                    self.ready.extend(data.drain(..k));
                    *n -= k as u64;
                    if *n == 0 {
                        self.next_request();
                    }
                }
                State::Chunked(chunk) => {
                    let (consumed, next) = follow_chunk(chunk, &data);
                    self.ready.extend(data.drain(..consumed));
                    match next {
                        Some(State::Head) => self.next_request(),
                        Some(state) => self.state = state,
                        None => {}
                    }
                }
                State::Head => {
                    if self.held.is_empty() {
                        // The first byte of a head: from now it has `timeouts.head` to complete.
                        self.deadline = Some(Instant::now() + self.timeouts.head);
                    }
                    self.held.append(&mut data);
                    let answer = self.may_answer();
                    match inspect(&mut self.held, answer) {
                        Inspected::Partial if self.held.len() <= self.max_head => {}
                        Inspected::Complete { len, .. } | Inspected::Refused { len, .. }
                            if len > self.max_head && answer =>
                        {
                            let why = format!("the request head is over {} bytes (MAX_HEADER_BYTES)", self.max_head);
                            self.refuse("431 Request Header Fields Too Large", &why);
                            return;
                        }
                        Inspected::Partial if answer => {
                            let why = format!("the request head is over {} bytes (MAX_HEADER_BYTES)", self.max_head);
                            self.refuse("431 Request Header Fields Too Large", &why);
                            return;
                        }
                        Inspected::Refused { why, .. } if answer => {
                            self.refuse("400 Bad Request", why);
                            return;
                        }
                        Inspected::Unparsable if answer && self.held.starts_with(H2_PREFACE) => {
                            self.answer_and_end(h2_refusal());
                            return;
                        }
                        Inspected::Unparsable if answer => {
                            self.refuse("400 Bad Request", "the request head is not valid HTTP/1.1");
                            return;
                        }
                        Inspected::TooManyHeaders if answer => {
                            let why = format!("the request head has more than {MAX_HEADERS} header fields");
                            self.refuse("431 Request Header Fields Too Large", &why);
                            return;
                        }
                        Inspected::Partial
                        | Inspected::Unparsable
                        | Inspected::TooManyHeaders
                        | Inspected::Refused { .. } => {
                            self.ready.append(&mut self.held);
                            self.state = State::Passthrough;
                            self.deadline = None;
                        }
                        Inspected::Complete { len, next } => {
                            data = self.held.split_off(len);
                            self.ready.append(&mut self.held);
                            self.deadline = match next {
                                State::Body(_) | State::Chunked(_) => Some(Instant::now() + self.timeouts.body),
                                _ => None,
                            };
                            self.state = next;
                        }
                    }
                }
            }
        }
    }

    /// A request (head and body) is through: the next head is awaited, with no time limit.
    fn next_request(&mut self) {
        self.state = State::Head;
        self.deadline = None;
    }
}

/// Follows `data` through a chunked body from `chunk`: the bytes that belong to the body, and the
/// state after them if it changed (`Head` at the body's end, `Passthrough` if it is malformed —
/// hyper refuses it and closes).
fn follow_chunk(chunk: &mut Chunk, data: &[u8]) -> (usize, Option<State>) {
    let mut i = 0;
    while i < data.len() {
        let (trailer, line) = match chunk {
            Chunk::Data(n) => {
                let k = (data.len() - i).min(usize::try_from(*n).unwrap_or(usize::MAX));
                i += k;
                *n -= k as u64;
                if *n == 0 {
                    *chunk = Chunk::DataEnd(2);
                }
                continue;
            }
            Chunk::DataEnd(n) => {
                let want = if *n == 2 { b'\r' } else { b'\n' };
                if data[i] != want {
                    return (i, Some(State::Passthrough));
                }
                i += 1;
                *n -= 1;
                if *n == 0 {
                    *chunk = Chunk::Size(Vec::new());
                }
                continue;
            }
            Chunk::Size(line) => (false, line),
            Chunk::Trailer(line) => (true, line),
        };
        line.push(data[i]);
        i += 1;
        if line.len() > MAX_LINE {
            return (i, Some(State::Passthrough));
        }
        if !line.ends_with(b"\r\n") {
            continue;
        }
        let text = &line[..line.len() - 2];
        if trailer {
            if text.is_empty() {
                return (i, Some(State::Head));
            }
            line.clear();
            continue;
        }
        // `size [; extensions]` in hex.
        let digits = text.split(|&b| b == b';').next().unwrap_or_default().trim_ascii();
        let size =
            std::str::from_utf8(digits).ok().filter(|d| !d.is_empty()).and_then(|d| u64::from_str_radix(d, 16).ok());
        *chunk = match size {
            Some(0) => Chunk::Trailer(Vec::new()),
            Some(n) => Chunk::Data(n),
            None => return (i, Some(State::Passthrough)),
        };
    }
    (i, None)
}

enum Inspected {
    Partial,
    Unparsable,
    /// More than [`MAX_HEADERS`] header fields (hyper's own limit too).
    TooManyHeaders,
    /// A head of `len` bytes to refuse (ambiguous framing, a target that is not a URI), and why.
    Refused {
        len: usize,
        why: &'static str,
    },
    /// A complete head of `len` bytes (already corrected if it was ambiguous), and what follows it.
    Complete {
        len: usize,
        next: State,
    },
}

/// Parses the head at the start of `buf`. A head to refuse is `Refused` when the caller may
/// answer it itself (`answer`), else spoiled so hyper refuses it (400, with no body).
fn inspect(buf: &mut [u8], answer: bool) -> Inspected {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Inspected::Partial,
        Err(httparse::Error::TooManyHeaders) => return Inspected::TooManyHeaders,
        Err(_) => return Inspected::Unparsable,
    };
    let base = buf.as_ptr() as usize;
    let offset = |v: &[u8]| v.as_ptr() as usize - base;
    let (mut lengths, mut encodings) = (Vec::new(), Vec::new());
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            lengths.push((offset(h.value), h.value));
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            encodings.push((offset(h.value), h.value));
        }
    }
    // The offset of a value to spoil: a `Transfer-Encoding` beside a `Content-Length`, a second
    // `Transfer-Encoding`, or a second `Content-Length`. (An empty value cannot be spoiled in
    // place; hyper refuses an empty `Content-Length`, and an empty `Transfer-Encoding` among
    // several is caught through the others.)
    let spoil = match (encodings.as_slice(), lengths.as_slice()) {
        ([.., (at, v)], [_, ..]) if !v.is_empty() => Some(*at),
        ([_, .., (at, v)], []) if !v.is_empty() => Some(*at),
        ([], [_, (at, v), ..]) if !v.is_empty() => Some(*at),
        ([_, ..], [(at, v), ..]) if !v.is_empty() => Some(*at),
        _ => None,
    };
    let next = match (encodings.as_slice(), lengths.first()) {
        _ if spoil.is_some() => State::Passthrough,
        ([(_, v)], None) if is_chunked(v) => State::Chunked(Chunk::Size(Vec::new())),
        // Another coding last: hyper refuses it (400).
        ([_, ..], _) => State::Passthrough,
        ([], Some((_, v))) => match byte_count(v) {
            Some(0) => State::Head,
            Some(n) => State::Body(n),
            None => State::Passthrough,
        },
        ([], None) => State::Head,
    };
    // The request target as hyper will read it: a non-ASCII byte (say an unencoded UTF-8 or
    // Latin-1 character in the query) makes hyper refuse the request with an empty 400.
    let line_end = buf.iter().position(|&b| b == b'\r' || b == b'\n').unwrap_or(len);
    let target = buf[..line_end].split(|&b| b == b' ').nth(1).unwrap_or_default();
    let bad_target = hyper::Uri::try_from(target).is_err();
    // One `Content-Length` that is not a byte count (`2x`, `+2`, `2, 2`, past 2⁶⁴ − 3): hyper
    // would refuse it too, with an empty 400 or 431.
    let bad_length = spoil.is_none() && matches!(lengths.as_slice(), [(_, v)] if byte_count(v).is_none());
    // A body in a coding other than chunked last has no length to read (hyper: an empty 400).
    let bad_coding = spoil.is_none() && matches!(encodings.as_slice(), [(_, v)] if !is_chunked(v));
    if answer && (spoil.is_some() || bad_target || bad_length || bad_coding) {
        let why = if spoil.is_some() {
            "ambiguous framing: Content-Length with Transfer-Encoding, or either given twice"
        } else if bad_length {
            "Content-Length must be a byte count: digits only, below 2^64 - 2"
        } else if bad_coding {
            "Transfer-Encoding must end in `chunked` (no other coding is read)"
        } else {
            "the request target is not a valid URI (non-ASCII bytes must be percent-encoded)"
        };
        return Inspected::Refused { len, why };
    }
    if let Some(at) = spoil {
        // Not a token character: hyper refuses the header value and the request with 400.
        buf[at] = b'\x01';
    }
    Inspected::Complete { len, next }
}

/// A `Content-Length` value as hyper takes one: digits only, at most hyper's largest length
/// (`u64::MAX - 2`; the two above it are its markers for chunked and close-delimited bodies).
fn byte_count(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse::<u64>().ok().filter(|&n| n <= u64::MAX - 2)
}

/// Whether a `Transfer-Encoding` value ends in `chunked`.
fn is_chunked(v: &[u8]) -> bool {
    v.rsplit(|&b| b == b',').next().is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// How an HTTP/2 client begins a connection it knows speaks HTTP/2 (RFC 9113 §3.4), as `curl
/// --http2-prior-knowledge` does and a gateway set to HTTP/2 towards its backend would.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n";

/// The answer to an HTTP/2 client, in HTTP/2 (an HTTP/1.1 400 reads to it as an empty reply):
/// the server's connection preface (an empty SETTINGS frame), then a GOAWAY with
/// HTTP_1_1_REQUIRED (RFC 9113 §7), the code made for this, whose debug data says why.
fn h2_refusal() -> Vec<u8> {
    const SETTINGS: u8 = 0x4;
    const GOAWAY: u8 = 0x7;
    const HTTP_1_1_REQUIRED: u32 = 0xd;
    let why = b"this server speaks HTTP/1.1 only";
    // A frame: 24-bit length, type, flags, stream 0.
    let frame = |kind: u8, payload: &[u8]| {
        let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        f.extend_from_slice(&[kind, 0, 0, 0, 0, 0]);
        f.extend_from_slice(payload);
        f
    };
    // GOAWAY: the last stream processed (none), the error code, debug data.
    let goaway = [&0u32.to_be_bytes()[..], &HTTP_1_1_REQUIRED.to_be_bytes(), why].concat();
    [frame(SETTINGS, &[]), frame(GOAWAY, &goaway)].concat()
}

/// A response with `status` and a JSON body saying `why`; the connection closes after it.
fn refusal(status: &str, why: &str) -> Vec<u8> {
    let body = serde_json::json!({ "error": why }).to_string() + "\n";
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for StrictFraming<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if let Some((bytes, sent)) = &mut this.refusal {
                // A timed-out or refused head: write the answer, then end the stream (hyper closes
                // quietly: it has seen none of that request).
                while *sent < bytes.len() {
                    match ready!(Pin::new(&mut this.io).poll_write(cx, &bytes[*sent..])) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => *sent += n,
                    }
                }
                let _ = ready!(Pin::new(&mut this.io).poll_flush(cx));
                *sent = bytes.len();
                return Poll::Ready(Ok(()));
            }
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
            if this.state == State::Head && this.slot.as_ref().is_some_and(|s| s.should_close()) {
                // Evicted to make room (see `conns`): end the stream; a half-sent head gets a 408.
                this.deadline = None;
                if this.held.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                this.refuse("408 Request Timeout", "the server needed the connection for another client");
                continue;
            }
            if this.state == State::Passthrough && this.held.is_empty() {
                return Pin::new(&mut this.io).poll_read(cx, buf);
            }
            let mut scratch = [0u8; 8192];
            let mut rb = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.io).poll_read(cx, &mut rb) {
                Poll::Ready(r) => r?,
                Poll::Pending => {
                    if let Some(slot) = &this.slot {
                        slot.park(cx.waker());
                    }
                    let Some(deadline) = this.deadline else { return Poll::Pending };
                    let sleep = this.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                    if sleep.deadline() != deadline {
                        sleep.as_mut().reset(deadline);
                    }
                    ready!(sleep.as_mut().poll(cx));
                    this.deadline = None;
                    if this.state == State::Head && this.slot.as_ref().is_some_and(|s| s.busy()) {
                        // A pipelined head behind a response still going out: a 408 now would
                        // land inside that response. Give the head another period once it is done.
                        this.deadline = Some(Instant::now() + this.timeouts.head);
                        continue;
                    }
                    if this.state == State::Head {
                        let limit = this.timeouts.head.as_secs();
                        let why = format!("the request head was not complete within {limit} s of its first byte");
                        this.refuse("408 Request Timeout", &why);
                        continue;
                    }
                    this.state = State::Passthrough;
                    let limit = this.timeouts.body.as_secs();
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the request body was not complete within {limit} s of its head"),
                    )));
                }
            }
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

impl<T> StrictFraming<T> {
    /// A write's outcome, held to [`Timeouts::send`]: progress (or an error) stops the clock; a
    /// wait starts it if it is not running, and fails the write once it runs out.
    fn timed<R>(&mut self, cx: &mut Context<'_>, outcome: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        if outcome.is_ready() {
            self.send_deadline = None;
            return outcome;
        }
        let deadline = *self.send_deadline.get_or_insert_with(|| Instant::now() + self.timeouts.send);
        let sleep = self.send_sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.deadline() != deadline {
            sleep.as_mut().reset(deadline);
        }
        ready!(sleep.as_mut().poll(cx));
        self.send_deadline = None;
        let limit = self.timeouts.send.as_secs();
        // In the request's span, as its other lines are: the connection knows which it is sending.
        let id = self.slot.as_ref().and_then(|s| s.answering_id()).unwrap_or_default();
        tracing::info_span!("request", id = %id).in_scope(|| {
            tracing::warn!(limit_secs = limit, "the client accepted none of a response for its send timeout: closing")
        });
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the client accepted none of the response for {limit} s"),
        )))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StrictFraming<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let outcome = Pin::new(&mut self.io).poll_write(cx, buf);
        self.timed(cx, outcome)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let outcome = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.timed(cx, outcome)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let outcome = Pin::new(&mut self.io).poll_flush(cx);
        self.timed(cx, outcome)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The framing state machine on `input` fed in pieces of `step` bytes: what hyper would read, and
/// whether it stopped inspecting. For the fuzz targets (`fuzz/`).
#[cfg(fuzzing)]
pub fn fuzz_feed(input: &[u8], step: usize) -> (Vec<u8>, bool) {
    let mut f = StrictFraming::new((), Timeouts::default());
    for piece in input.chunks(step) {
        f.feed(piece.to_vec());
    }
    // What is still held (a head not yet complete) reaches hyper at the end of the stream.
    f.ready.append(&mut f.held);
    (f.ready, f.state == State::Passthrough)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes and returns what hyper would read.
    fn run(input: &[u8], step: usize) -> (Vec<u8>, State) {
        // No slot: the framing never answers itself, it spoils for hyper.
        let mut f = StrictFraming::new((), Timeouts::default());
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
        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n";
        for step in [1, 4, chunked.len()] {
            assert_eq!(run(chunked, step), (chunked.to_vec(), State::Head), "step {step}");
        }
    }

    #[test]
    fn a_content_length_is_digits_only_and_within_hypers_range() {
        assert_eq!(byte_count(b"0"), Some(0));
        assert_eq!(byte_count(b" 42 "), Some(42));
        assert_eq!(byte_count(b"18446744073709551613"), Some(u64::MAX - 2));
        for bad in [&b""[..], b"+2", b"-1", b"2x", b"2, 2", b"0x10", b"18446744073709551614", b"99999999999999999999"] {
            assert_eq!(byte_count(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
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

    /// After a chunked body, an `Upgrade` or a `CONNECT`, and across repeated headers, the checks
    /// still hold.
    #[test]
    fn every_head_of_a_connection_is_checked() {
        let ambiguous = "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
        for first in [
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n",
            "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        ] {
            let input = format!("{first}{ambiguous}");
            for step in [1, 7, input.len()] {
                let (out, _) = run(input.as_bytes(), step);
                assert!(String::from_utf8_lossy(&out).ends_with("Transfer-Encoding: \x01hunked\r\n\r\n"), "{first:?}");
            }
        }
        for (head, spoiled) in [
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: \r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                "\x01hunked",
            ),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                "chunked\r\nTransfer-Encoding: \x01",
            ),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
                "Transfer-Encoding: \x01hunked",
            ),
        ] {
            let (out, state) = run(head.as_bytes(), 3);
            assert!(String::from_utf8_lossy(&out).contains(spoiled), "{head:?}: {:?}", String::from_utf8_lossy(&out));
            assert_eq!(state, State::Passthrough);
        }
    }
}
