//! What every connection of the public listeners (and the redirect listener) passes
//! before HTTP: a cap on the connections one client address holds, and a deadline for a
//! request's headers.
//!
//! Contract: [`Guarded`] wraps the gateway's pingora app. A connection from an address
//! that already holds `limits.connections_per_ip` is closed unanswered (a trusted proxy
//! is exempt: it carries many clients); [`Guarded::filter`] refuses it already at accept,
//! before a TLS handshake is spent on it. Every other connection's stream is wrapped in a
//! [`DeadlineStream`]: from a request's first byte (from the connection's start, for its
//! first request) to the blank line that ends its headers, at most
//! `limits.header_read_seconds` may pass, however the client paces its bytes; then the
//! connection is cut. The clock stops at the end of the headers (the body has its own
//! deadline, proxy/gateway.rs) and restarts with the next request once the answer has
//! begun. HTTP/2 connections (ALPN `h2`) are not timed here: their frames interleave
//! requests, and the h2 layer bounds them.

use crate::config::TrustedProxies;
use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::listeners::ConnectionFilter;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, Ssl, Stream, UniqueID,
    UniqueIDType, ALPN,
};
use pingora::server::ShutdownWatch;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
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

/// A pingora app behind the connection limits.
pub struct Guarded<A> {
    inner: Arc<A>,
    limits: ConnectionLimits,
    open: Arc<OpenConnections>,
}

impl<A> Guarded<A> {
    pub fn new(inner: A, limits: ConnectionLimits) -> Guarded<A> {
        Guarded {
            inner: Arc::new(inner),
            limits,
            open: Arc::default(),
        }
    }

    /// The accept-time check of the same cap, for the listener (pingora's
    /// `connection_filter`).
    pub fn filter(&self) -> Arc<dyn ConnectionFilter> {
        Arc::new(FullAddresses {
            open: self.open.clone(),
            limits: self.limits.clone(),
        })
    }

    /// A new connection: its slot and deadline, or `None` when its address is full.
    fn admit(&self, stream: Stream) -> Option<DeadlineStream> {
        let peer = stream
            .get_socket_digest()
            .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).map(|a| a.ip()));
        let slot = match peer {
            Some(ip) if !self.limits.trusted.contains(ip) => {
                let slot = self.open.take(ip.to_canonical(), self.limits.per_ip);
                if slot.is_none() {
                    // Not a warning: under a flood it would be one log line per attempt.
                    tracing::debug!(client = %ip, "connection refused: too many from this address");
                }
                Some(slot?)
            }
            _ => None,
        };
        Some(DeadlineStream::new(stream, self.limits.header_read, slot))
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
            Box::new(self.admit(stream)?)
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

/// Refuses, at accept, a connection from an address that holds its cap already.
#[derive(Debug)]
struct FullAddresses {
    open: Arc<OpenConnections>,
    limits: ConnectionLimits,
}

#[async_trait]
impl ConnectionFilter for FullAddresses {
    async fn should_accept(&self, addr: Option<&std::net::SocketAddr>) -> bool {
        let Some(ip) = addr.map(|a| a.ip().to_canonical()) else {
            return true;
        };
        self.limits.trusted.contains(ip) || self.open.count(ip) < self.limits.per_ip
    }
}

/// Open connections per client address.
#[derive(Debug, Default)]
struct OpenConnections(Mutex<HashMap<IpAddr, usize>>);

impl OpenConnections {
    fn count(&self, ip: IpAddr) -> usize {
        let open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&ip).copied().unwrap_or(0)
    }

    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<Slot> {
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            open: self.clone(),
            ip,
        })
    }
}

/// One connection counted against its address; given back on drop.
struct Slot {
    open: Arc<OpenConnections>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Where a connection is in its current request.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Between requests: the next byte starts the header clock.
    Idle,
    /// Reading headers until `deadline`; `newlines` counts line ends seen in a row.
    Headers { deadline: Instant, newlines: u8 },
    /// Headers complete; nothing timed here until the answer begins.
    Body,
    /// Not timed (HTTP/2).
    Off,
}

/// A stream whose request headers must arrive by a deadline (see the module contract).
pub struct DeadlineStream {
    inner: Stream,
    header_read: Duration,
    phase: Phase,
    timer: Pin<Box<Sleep>>,
    _slot: Option<Slot>,
}

impl DeadlineStream {
    fn new(inner: Stream, header_read: Duration, slot: Option<Slot>) -> DeadlineStream {
        let deadline = Instant::now() + header_read;
        let phase = if matches!(inner.selected_alpn_proto(), Some(ALPN::H2)) {
            Phase::Off
        } else {
            Phase::Headers {
                deadline,
                newlines: 0,
            }
        };
        DeadlineStream {
            inner,
            header_read,
            phase,
            timer: Box::pin(tokio::time::sleep_until(deadline)),
            _slot: slot,
        }
    }

    /// Advances the phase over bytes just read.
    fn observe(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if let Phase::Idle = self.phase {
            let deadline = Instant::now() + self.header_read;
            self.timer.as_mut().reset(deadline);
            self.phase = Phase::Headers {
                deadline,
                newlines: 0,
            };
        }
        let Phase::Headers {
            deadline,
            mut newlines,
        } = self.phase
        else {
            return;
        };
        for &b in bytes {
            match b {
                b'\n' => newlines += 1,
                b'\r' => {}
                _ => newlines = 0,
            }
            if newlines == 2 {
                self.phase = Phase::Body;
                return;
            }
        }
        self.phase = Phase::Headers { deadline, newlines };
    }

    /// Bytes written: an answer (not a `1xx` interim one) ends the request.
    fn answered(&mut self, bytes: &[u8]) {
        let interim = bytes.starts_with(b"HTTP/1.1 1") || bytes.starts_with(b"HTTP/1.0 1");
        if matches!(self.phase, Phase::Body) && !interim && !bytes.is_empty() {
            self.phase = Phase::Idle;
        }
    }

    fn timed_out() -> io::Error {
        io::Error::new(
            io::ErrorKind::TimedOut,
            "request headers not received in time",
        )
    }
}

impl AsyncRead for DeadlineStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Phase::Headers { deadline, .. } = this.phase {
            if Instant::now() >= deadline {
                return Poll::Ready(Err(Self::timed_out()));
            }
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
                let timing = matches!(this.phase, Phase::Headers { .. });
                if timing && this.timer.as_mut().poll(cx).is_ready() {
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
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            this.answered(&buf[..n]);
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
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
}
