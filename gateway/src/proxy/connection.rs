//! What every connection of the public listener (and the redirect listener) passes
//! before HTTP: a cap on the connections one client address holds, the TLS handshake,
//! and a deadline for a request's headers.
//!
//! Contract: [`Guarded`] wraps the gateway's pingora app; its listener is plain TCP and
//! [`Guarded::filter`] is the listener's `connection_filter`.
//!
//! - The cap: a connection counts against its address from accept. The filter takes the
//!   address's slot before anything else is spent on the connection and refuses (closes
//!   unanswered) one from an address that holds `limits.connections_per_ip` already;
//!   the slot travels with the connection and is given back when it closes. A trusted
//!   proxy is exempt (it carries many clients).
//! - The deadline: from accept, the TLS handshake and then the first request's headers
//!   (up to the blank line that ends them) must be done within
//!   `limits.header_read_seconds`, however the client paces its bytes; for a later request
//!   on a kept-alive connection the clock starts with its first byte. Past it the
//!   connection is cut. The clock stops at the end of the headers (the body has its own
//!   deadline, proxy/gateway.rs) and restarts with the next request once the answer has
//!   begun. On HTTP/2 (ALPN `h2`) it runs from accept until the client's first complete
//!   header block (the first stream opened): a connection that opens none is cut; later
//!   streams interleave with other frames and are not timed here.
//! - HSTS: over TLS, an HTTP/1 answer that does not carry `Strict-Transport-Security`
//!   (pingora's own `400` for a request it cannot parse; every other answer has it from
//!   proxy/respond.rs) gets it added as it is written.
//!
//! Why the handshake runs here and not in pingora's listener: pingora runs it before the
//! app sees the connection, under a fixed 60 s timeout, and its accept filter can only
//! say yes or no. Running [`Acceptor::tls_handshake`] (pingora's own, on the same TCP
//! stream type) in [`Guarded`] puts the handshake under the header deadline and keeps
//! the slot with the connection throughout. The filter hands the slot over by the
//! peer's address and port, unique among the open connections of one listener.

use crate::config::TrustedProxies;
use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::listeners::tls::Acceptor;
use pingora::listeners::ConnectionFilter;
use pingora::protocols::l4::stream::Stream as TcpStream;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, Ssl, Stream, UniqueID,
    UniqueIDType, ALPN,
};
use pingora::server::ShutdownWatch;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How long connections accepted just before the listener stopped may take to send
/// their first request (within the shutdown grace period).
const ACCEPT_TAIL: Duration = Duration::from_millis(500);

/// The limits [`Guarded`] enforces.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub header_read: Duration,
    pub per_ip: usize,
    pub trusted: TrustedProxies,
}

/// A pingora app behind the connection limits (and TLS, with [`Guarded::with_tls`]).
pub struct Guarded<A> {
    inner: Arc<A>,
    limits: ConnectionLimits,
    open: Arc<OpenConnections>,
    tls: Option<Acceptor>,
    /// The header line added to an answer without one, over TLS.
    hsts: Option<Arc<[u8]>>,
}

impl<A> Guarded<A> {
    pub fn new(inner: A, limits: ConnectionLimits) -> Guarded<A> {
        Guarded {
            inner: Arc::new(inner),
            limits,
            open: Arc::default(),
            tls: None,
            hsts: None,
        }
    }

    /// Speaks TLS through `acceptor`; `hsts` is the `Strict-Transport-Security` value
    /// every answer carries, if any.
    pub fn with_tls(mut self, acceptor: Acceptor, hsts: Option<&str>) -> Guarded<A> {
        self.tls = Some(acceptor);
        self.hsts =
            hsts.map(|v| Arc::from(format!("strict-transport-security: {v}\r\n").into_bytes()));
        self
    }

    /// The accept-time half of the cap, for the listener (pingora's `connection_filter`).
    pub fn filter(&self) -> Arc<dyn ConnectionFilter> {
        Arc::new(SlotAtAccept {
            open: self.open.clone(),
            limits: self.limits.clone(),
        })
    }

    /// A new connection: its slot, handshake and deadline; `None` when it is closed.
    async fn open(&self, stream: Stream) -> Option<DeadlineStream> {
        let deadline = Instant::now() + self.limits.header_read;
        let slot = self.slot(&stream)?;
        let stream = match &self.tls {
            Some(acceptor) => handshake(acceptor, stream, deadline).await?,
            None => stream,
        };
        let hsts = self.hsts.clone().filter(|_| self.tls.is_some());
        Some(DeadlineStream::new(
            stream,
            deadline,
            self.limits.header_read,
            slot,
            hsts,
        ))
    }

    /// The slot the filter took at accept; taken now when the filter did not run. The
    /// outer `None`: the address is full.
    fn slot(&self, stream: &Stream) -> Option<Option<Slot>> {
        let Some(peer) = peer_addr(stream) else {
            return Some(None);
        };
        let ip = peer.ip().to_canonical();
        if self.limits.trusted.contains(ip) {
            return Some(None);
        }
        if let Some(slot) = self.open.claim(peer) {
            return Some(Some(slot));
        }
        let slot = self.open.take(ip, self.limits.per_ip);
        if slot.is_none() {
            tracing::debug!(client = %ip, "connection refused: too many from this address");
        }
        Some(Some(slot?))
    }
}

fn peer_addr(stream: &Stream) -> Option<SocketAddr> {
    let digest = stream.get_socket_digest()?;
    digest.peer_addr()?.as_inet().copied()
}

/// pingora's TLS handshake on the accepted TCP stream, by `deadline`.
async fn handshake(acceptor: &Acceptor, stream: Stream, deadline: Instant) -> Option<Stream> {
    let Ok(tcp) = stream.into_any().downcast::<TcpStream>() else {
        tracing::warn!("connection closed: not a TCP stream, TLS cannot be spoken on it");
        return None;
    };
    match tokio::time::timeout_at(deadline, acceptor.tls_handshake(*tcp)).await {
        Ok(Ok(tls)) => Some(Box::new(tls)),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!("TLS handshake not done by the header deadline");
            None
        }
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for Guarded<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        // A kept-alive connection comes back already wrapped.
        let stream: Stream = if stream.as_any().is::<DeadlineStream>() {
            stream
        } else {
            Box::new(self.open(stream).await?)
        };
        self.inner.process_new(stream, shutdown).await
    }

    /// The listener has stopped accepting (shutdown, or an upgrade handing it over).
    /// pingora then drops every connection still waiting for its first request; one
    /// accepted in the last instant has its request on the wire, so it gets
    /// [`ACCEPT_TAIL`] to arrive and be served before that.
    async fn cleanup(&self) {
        tokio::time::sleep(ACCEPT_TAIL).await;
        self.inner.cleanup().await
    }
}

/// Takes, at accept, the slot of the connection's address, or refuses the connection
/// when the address holds its cap already.
#[derive(Debug)]
struct SlotAtAccept {
    open: Arc<OpenConnections>,
    limits: ConnectionLimits,
}

#[async_trait]
impl ConnectionFilter for SlotAtAccept {
    async fn should_accept(&self, addr: Option<&SocketAddr>) -> bool {
        let Some(&peer) = addr else {
            return true;
        };
        let ip = peer.ip().to_canonical();
        if self.limits.trusted.contains(ip) {
            return true;
        }
        match self.open.take(ip, self.limits.per_ip) {
            Some(slot) => {
                self.open.hand_over(peer, slot);
                true
            }
            None => {
                // Not a warning: under a flood it would be one log line per attempt.
                tracing::debug!(client = %ip, "connection refused: too many from this address");
                false
            }
        }
    }
}

/// Open connections per client address, and the slots taken at accept on their way to
/// their connection.
#[derive(Debug, Default)]
struct OpenConnections {
    counts: Mutex<HashMap<IpAddr, usize>>,
    accepted: Mutex<HashMap<SocketAddr, Slot>>,
}

impl OpenConnections {
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<Slot> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            open: self.clone(),
            ip,
        })
    }

    /// Keeps `slot` for the connection from `peer` ([`OpenConnections::claim`]). A slot
    /// left for an earlier connection from the same address and port (one that never
    /// reached the app: pingora failed it between accept and the app) is given back.
    fn hand_over(&self, peer: SocketAddr, slot: Slot) {
        let stale = {
            let mut accepted = self.accepted.lock().unwrap_or_else(|e| e.into_inner());
            accepted.insert(peer, slot)
        };
        drop(stale);
    }

    fn claim(&self, peer: SocketAddr) -> Option<Slot> {
        let mut accepted = self.accepted.lock().unwrap_or_else(|e| e.into_inner());
        accepted.remove(&peer)
    }
}

/// One connection counted against its address; given back on drop.
#[derive(Debug)]
struct Slot {
    open: Arc<OpenConnections>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.open.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Where a connection is in its current request.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Between requests: the next byte starts the header clock.
    Idle,
    /// Reading headers until `deadline`; `after_newline`: the bytes read so far end in a
    /// line end (and perhaps `\r`s), so a line end next ends the headers.
    Headers {
        deadline: Instant,
        after_newline: bool,
    },
    /// Headers complete; nothing timed here until the answer begins.
    Body,
    /// HTTP/2 until the client's first complete header block, by `deadline`.
    H2 { deadline: Instant, frames: H2Frames },
    /// Not timed (HTTP/2 once a stream is open).
    Off,
}

impl Phase {
    fn deadline(&self) -> Option<Instant> {
        match self {
            Phase::Headers { deadline, .. } | Phase::H2 { deadline, .. } => Some(*deadline),
            _ => None,
        }
    }
}

/// The client's side of an HTTP/2 connection, read only as far as frame boundaries
/// (RFC 9113 §3.4, §4.1): enough to see its first header block end.
#[derive(Debug, Clone, Copy)]
enum H2Frames {
    /// Within the 24-byte connection preface; the bytes seen so far.
    Preface(u8),
    /// Within a 9-byte frame header.
    Header { bytes: [u8; 9], seen: u8 },
    /// Within a frame's payload; `ends_block`: the frame ends a header block.
    Payload { left: u32, ends_block: bool },
}

const H2_PREFACE_LEN: u8 = 24;
const H2_HEADERS: u8 = 0x1;
const H2_CONTINUATION: u8 = 0x9;
const H2_END_HEADERS: u8 = 0x4;

impl H2Frames {
    /// Advances over `bytes`; `true` once a header block has ended.
    fn advance(&mut self, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() {
            match self {
                H2Frames::Preface(seen) => {
                    let n = bytes.len().min(usize::from(H2_PREFACE_LEN - *seen));
                    *seen += n as u8;
                    bytes = &bytes[n..];
                    if *seen == H2_PREFACE_LEN {
                        *self = H2Frames::Header {
                            bytes: [0; 9],
                            seen: 0,
                        };
                    }
                }
                H2Frames::Header { bytes: head, seen } => {
                    head[usize::from(*seen)] = bytes[0];
                    *seen += 1;
                    bytes = &bytes[1..];
                    if *seen == 9 {
                        let left = u32::from_be_bytes([0, head[0], head[1], head[2]]);
                        let ends_block = matches!(head[3], H2_HEADERS | H2_CONTINUATION)
                            && head[4] & H2_END_HEADERS != 0;
                        if left == 0 && ends_block {
                            return true;
                        }
                        *self = if left == 0 {
                            H2Frames::Header {
                                bytes: [0; 9],
                                seen: 0,
                            }
                        } else {
                            H2Frames::Payload { left, ends_block }
                        };
                    }
                }
                H2Frames::Payload { left, ends_block } => {
                    let n = bytes.len().min(*left as usize);
                    *left -= n as u32;
                    bytes = &bytes[n..];
                    if *left == 0 {
                        if *ends_block {
                            return true;
                        }
                        *self = H2Frames::Header {
                            bytes: [0; 9],
                            seen: 0,
                        };
                    }
                }
            }
        }
        false
    }
}

/// An answer being written with a header added: the bytes still to write, and how
/// many of the caller's bytes they stand for.
struct Rewritten {
    bytes: Vec<u8>,
    written: usize,
    stands_for: usize,
}

/// A stream whose request headers must arrive by a deadline (see the module contract).
pub struct DeadlineStream {
    inner: Stream,
    header_read: Duration,
    phase: Phase,
    timer: Pin<Box<Sleep>>,
    hsts: Option<Arc<[u8]>>,
    rewritten: Option<Rewritten>,
    _slot: Option<Slot>,
}

impl DeadlineStream {
    fn new(
        inner: Stream,
        deadline: Instant,
        header_read: Duration,
        slot: Option<Slot>,
        hsts: Option<Arc<[u8]>>,
    ) -> DeadlineStream {
        let phase = if matches!(inner.selected_alpn_proto(), Some(ALPN::H2)) {
            Phase::H2 {
                deadline,
                frames: H2Frames::Preface(0),
            }
        } else {
            Phase::Headers {
                deadline,
                after_newline: false,
            }
        };
        DeadlineStream {
            inner,
            header_read,
            phase,
            timer: Box::pin(tokio::time::sleep_until(deadline)),
            hsts,
            rewritten: None,
            _slot: slot,
        }
    }

    /// Advances the phase over bytes just read.
    fn observe(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if let Phase::H2 { frames, .. } = &mut self.phase {
            if frames.advance(bytes) {
                self.phase = Phase::Off;
            }
            return;
        }
        if let Phase::Idle = self.phase {
            // The timer itself is armed only if a read of these headers has to wait
            // (`poll_read`): most requests arrive whole in one read and never touch it.
            let deadline = Instant::now() + self.header_read;
            self.phase = Phase::Headers {
                deadline,
                after_newline: false,
            };
        }
        if let Phase::Headers {
            deadline,
            mut after_newline,
        } = self.phase
        {
            self.phase = if head_ends(bytes, &mut after_newline) {
                Phase::Body
            } else {
                Phase::Headers {
                    deadline,
                    after_newline,
                }
            };
        }
    }

    /// Bytes written: an answer (not a `1xx` interim one) ends the request.
    fn answered(&mut self, bytes: &[u8]) {
        if matches!(self.phase, Phase::Body) && !is_interim(bytes) && !bytes.is_empty() {
            self.phase = Phase::Idle;
        }
    }

    /// `buf` with the HSTS line added, when it is the head of an answer to the current
    /// HTTP/1 request (see [`with_hsts`]).
    fn with_hsts(&self, buf: &[u8]) -> Option<Vec<u8>> {
        let hsts = self.hsts.as_ref()?;
        let answering = matches!(self.phase, Phase::Headers { .. } | Phase::Body);
        answering.then(|| with_hsts(hsts, buf)).flatten()
    }

    /// Writes what is left of a rewritten answer; `Ready(Ok(n))`: all of it, standing for
    /// `n` of the caller's bytes (the answer has begun).
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some(r) = self.rewritten.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        while r.written < r.bytes.len() {
            match Pin::new(&mut self.inner).poll_write(cx, &r.bytes[r.written..]) {
                Poll::Ready(Ok(0)) => {
                    self.rewritten = None;
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => r.written += n,
                Poll::Ready(Err(e)) => {
                    self.rewritten = None;
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        let (n, interim) = (r.stands_for, is_interim(&r.bytes));
        self.rewritten = None;
        if matches!(self.phase, Phase::Body) && !interim {
            self.phase = Phase::Idle;
        }
        Poll::Ready(Ok(n))
    }

    fn timed_out() -> io::Error {
        io::Error::new(
            io::ErrorKind::TimedOut,
            "request headers not received in time",
        )
    }
}

/// `head` (an HTTP/1 answer's head, status line to blank line) with the `hsts` line added
/// after the status line; `None` when it carries one already, is an interim `1xx`
/// answer, or is not a complete head.
fn with_hsts(hsts: &[u8], head: &[u8]) -> Option<Vec<u8>> {
    if !head.starts_with(b"HTTP/1.") || is_interim(head) {
        return None;
    }
    let end = find(head, b"\r\n\r\n")?;
    let lower = head[..end].to_ascii_lowercase();
    if find(&lower, b"\nstrict-transport-security:").is_some() {
        return None;
    }
    let line_end = find(head, b"\r\n")? + 2;
    let mut out = Vec::with_capacity(head.len() + hsts.len());
    out.extend_from_slice(&head[..line_end]);
    out.extend_from_slice(hsts);
    out.extend_from_slice(&head[line_end..]);
    Some(out)
}

/// Whether `bytes` hold the blank line that ends a request head: two line ends with
/// nothing but `\r` between them, the first possibly in an earlier read
/// (`after_newline` carries that over). Jumps from line end to line end (memchr): this
/// runs over every request's head.
fn head_ends(bytes: &[u8], after_newline: &mut bool) -> bool {
    let mut rest = bytes;
    loop {
        if *after_newline {
            let returns = rest.iter().take_while(|&&b| b == b'\r').count();
            rest = &rest[returns..];
            match rest.first() {
                None => return false,
                Some(b'\n') => return true,
                Some(_) => *after_newline = false,
            }
        }
        match memchr::memchr(b'\n', rest) {
            Some(at) => {
                *after_newline = true;
                rest = &rest[at + 1..];
            }
            None => return false,
        }
    }
}

/// A `1xx` status line.
fn is_interim(bytes: &[u8]) -> bool {
    bytes.starts_with(b"HTTP/1.1 1") || bytes.starts_with(b"HTTP/1.0 1")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl AsyncRead for DeadlineStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.phase.deadline().is_some_and(|d| Instant::now() >= d) {
            return Poll::Ready(Err(Self::timed_out()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.observe(&buf.filled()[before..]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                // Wake at the deadline too, so a silent client is cut on time.
                let Some(deadline) = this.phase.deadline() else {
                    return Poll::Pending;
                };
                if this.timer.deadline() != deadline {
                    this.timer.as_mut().reset(deadline);
                }
                if this.timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(Self::timed_out()));
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for DeadlineStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.rewritten.is_none() {
            if let Some(bytes) = this.with_hsts(buf) {
                this.rewritten = Some(Rewritten {
                    bytes,
                    written: 0,
                    stands_for: buf.len(),
                });
            }
        }
        if this.rewritten.is_some() {
            // The caller writes the same bytes again until they are taken.
            let n = std::task::ready!(this.drain(cx))?;
            return Poll::Ready(Ok(n.min(buf.len())));
        }
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            this.answered(&buf[..n]);
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for DeadlineStream {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for DeadlineStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for DeadlineStream {
    fn get_ssl(&self) -> Option<&pingora::protocols::tls::TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<pingora::protocols::tls::SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for DeadlineStream {
    fn get_timing_digest(&self) -> Vec<Option<pingora::protocols::TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for DeadlineStream {
    fn get_proxy_digest(&self) -> Option<Arc<pingora::protocols::raw_connect::ProxyDigest>> {
        self.inner.get_proxy_digest()
    }
}

impl GetSocketDigest for DeadlineStream {
    fn get_socket_digest(&self) -> Option<Arc<pingora::protocols::SocketDigest>> {
        self.inner.get_socket_digest()
    }
}

#[async_trait]
impl Peek for DeadlineStream {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

impl std::fmt::Debug for DeadlineStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadlineStream")
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_address_and_given_back() {
        let open = Arc::new(OpenConnections::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = open.take(a, 2).unwrap();
        let _second = open.take(a, 2).unwrap();
        assert!(open.take(a, 2).is_none());
        assert!(open.take(b, 2).is_some());
        drop(first);
        assert!(open.take(a, 2).is_some());
    }

    #[test]
    fn a_slot_taken_at_accept_reaches_its_connection_once() {
        let open = Arc::new(OpenConnections::default());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let peer = SocketAddr::new(ip, 4000);
        open.hand_over(peer, open.take(ip, 2).unwrap());
        // The same address and port again (the first never reached the app): its slot
        // is given back, not leaked.
        open.hand_over(peer, open.take(ip, 2).unwrap());
        let slot = open.claim(peer).unwrap();
        assert!(open.claim(peer).is_none());
        assert!(open.take(ip, 2).is_some());
        let _other = open.take(ip, 2).unwrap();
        assert!(open.take(ip, 2).is_none());
        drop(slot);
        assert!(open.take(ip, 2).is_some());
    }

    /// The definition, a byte at a time: line ends in a row, `\r` not breaking the row.
    fn head_ends_bytewise(bytes: &[u8], newlines: &mut u8) -> bool {
        for &b in bytes {
            match b {
                b'\n' => *newlines += 1,
                b'\r' => {}
                _ => *newlines = 0,
            }
            if *newlines == 2 {
                return true;
            }
        }
        false
    }

    #[test]
    fn head_end_is_found_however_the_bytes_are_split() {
        let heads: [&[u8]; 7] = [
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\nHost: a\n\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: \r\r\r\n\rbody",
            b"GET / HTTP/1.1\r\nHost: a\r\n",
            b"\r\n\r",
            b"\n",
            b"a\nb\r\nc\r\r\nd\n\r\r\r\r\n",
        ];
        for head in heads {
            let mut expected_state = 0u8;
            let expected = head_ends_bytewise(head, &mut expected_state);
            for split in 0..=head.len() {
                let (first, second) = head.split_at(split);
                let mut after_newline = false;
                let found =
                    head_ends(first, &mut after_newline) || head_ends(second, &mut after_newline);
                assert_eq!(found, expected, "{head:?} split at {split}");
            }
        }
    }

    #[test]
    fn hsts_is_added_to_a_head_without_it() {
        let hsts = b"strict-transport-security: max-age=60\r\n";
        let bare = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            with_hsts(hsts, bare).unwrap(),
            b"HTTP/1.1 400 Bad Request\r\nstrict-transport-security: max-age=60\r\n\
              Content-Length: 0\r\n\r\n"
                .to_vec()
        );
        let only_status = b"HTTP/1.1 400 Bad Request\r\n\r\n";
        assert_eq!(
            with_hsts(hsts, only_status).unwrap(),
            b"HTTP/1.1 400 Bad Request\r\nstrict-transport-security: max-age=60\r\n\r\n".to_vec()
        );
        let has = b"HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=1\r\n\r\nbody";
        assert!(with_hsts(hsts, has).is_none());
        assert!(with_hsts(hsts, b"HTTP/1.1 100 Continue\r\n\r\n").is_none());
        assert!(with_hsts(hsts, b"HTTP/1.1 200 OK\r\nContent-Le").is_none());
        assert!(with_hsts(hsts, b"body bytes\r\n\r\n").is_none());
    }

    #[test]
    fn h2_frames_end_at_the_first_complete_header_block() {
        let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        let frame = |kind: u8, flags: u8, payload: &[u8]| {
            let len = (payload.len() as u32).to_be_bytes();
            let mut f = vec![len[1], len[2], len[3], kind, flags, 0, 0, 0, 1];
            f.extend_from_slice(payload);
            f
        };
        let settings = frame(0x4, 0, &[0, 3, 0, 0, 0, 100]);
        let ping = frame(0x6, 0, &[0; 8]);
        let open = frame(H2_HEADERS, 0, &[0x82, 0x84]);
        let more = frame(H2_CONTINUATION, H2_END_HEADERS, &[0x86]);
        let whole = frame(H2_HEADERS, H2_END_HEADERS | 0x1, &[0x82]);

        // Preface, settings and pings forever: no stream.
        let mut f = H2Frames::Preface(0);
        let idle = [&preface[..], &settings, &ping, &ping].concat();
        assert!(!f.advance(&idle));
        // A header block split over HEADERS and CONTINUATION, fed a byte at a time.
        let mut f = H2Frames::Preface(0);
        let stream = [&preface[..], &settings, &open, &more].concat();
        let ended = stream.iter().position(|b| f.advance(&[*b]));
        assert_eq!(ended, Some(stream.len() - 1));
        // One frame, all at once.
        let mut f = H2Frames::Preface(0);
        assert!(f.advance(&[&preface[..], &whole].concat()));
    }
}
