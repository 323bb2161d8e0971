//! Listening on an address the gateway bound itself.
//!
//! pingora binds its listeners from address strings and cannot report the port it got
//! for `:0`. The gateway binds the socket first (so `--listen 127.0.0.1:0` works and the
//! real address can be printed before serving), then hands the file descriptor to
//! pingora through its listen-fd table — the mechanism pingora uses for graceful
//! upgrades — under the address string the service listens on. pingora then adopts the
//! socket instead of binding again.

use async_trait::async_trait;
use pingora::server::{ListenFds, ShutdownWatch};
use pingora::services::Service;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{IntoRawFd, RawFd};

/// Binds `addr` (port 0 allowed) with the options pingora would use.
pub fn bind(addr: &str) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr)?;
    // pingora's runtime accepts with tokio, which needs a non-blocking socket.
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// A pingora service that listens on a socket bound beforehand.
pub struct Prebound<S> {
    inner: S,
    addr: String,
    fd: Option<RawFd>,
}

impl<S> Prebound<S> {
    /// `inner` must have been given `add_tcp(&local.to_string())` for the same address.
    pub fn new(inner: S, listener: TcpListener, local: SocketAddr) -> Prebound<S> {
        Prebound {
            inner,
            addr: local.to_string(),
            fd: Some(listener.into_raw_fd()),
        }
    }
}

#[async_trait]
impl<S: Service> Service for Prebound<S> {
    async fn start_service(
        &mut self,
        fds: Option<ListenFds>,
        shutdown: ShutdownWatch,
        listeners_per_fd: usize,
    ) {
        if let (Some(table), Some(fd)) = (&fds, self.fd.take()) {
            table.lock().add(self.addr.clone(), fd);
        }
        self.inner
            .start_service(fds, shutdown, listeners_per_fd)
            .await
    }

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn threads(&self) -> Option<usize> {
        self.inner.threads()
    }
}
