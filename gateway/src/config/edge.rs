//! The edge's configuration, validated: TLS on the public listener, the load balancers
//! trusted to name the client, and where each upstream is (plain or TLS).
//!
//! Contract: a value of these types is already checked; parsing errors are messages the
//! caller attaches to the config key.

use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

/// TLS on the public listener. The files are read at start and re-read when they
/// change (proxy/tls.rs).
#[derive(Debug, Clone)]
pub struct Tls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// A plain listener answering every request with a redirect to https.
    pub redirect_listen: Option<String>,
    /// `Strict-Transport-Security` max-age; 0 sends none.
    pub hsts_seconds: u64,
}

/// One year: what browsers' preload lists ask for.
pub const DEFAULT_HSTS_SECONDS: u64 = 365 * 24 * 3600;

/// Addresses of load balancers whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Each entry is a CIDR (`10.0.0.0/8`, `fd00::/8`) or one address.
    pub fn parse(entries: &[String]) -> Result<TrustedProxies, String> {
        entries
            .iter()
            .map(|e| {
                e.parse::<IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("`{e}` is not a CIDR like 10.0.0.0/8 or an address"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    /// Whether `ip` (an IPv4-mapped IPv6 address counts as its IPv4 address) is trusted.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Where a route's module listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub addr: SocketAddr,
    /// With TLS: the name sent as SNI and verified in the module's certificate.
    pub tls_name: Option<String>,
}

impl Upstream {
    /// `host:port`, `http://host:port` or `https://host:port`; a host name is resolved
    /// once, here.
    pub fn parse(text: &str) -> Result<Upstream, String> {
        let (tls, authority) = match text.split_once("://") {
            Some(("https", rest)) => (true, rest),
            Some(("http", rest)) => (false, rest),
            Some((scheme, _)) => return Err(format!("`{scheme}://`: use http:// or https://")),
            None => (false, text),
        };
        let bad = || format!("`{text}` is not host:port, http://host:port or https://host:port");
        let authority: http::uri::Authority = authority.parse().map_err(|_| bad())?;
        let port = authority.port_u16().ok_or_else(bad)?;
        if authority.as_str().contains('@') || authority.host().is_empty() {
            return Err(bad());
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let addr = (host, port)
            .to_socket_addrs()
            .map_err(|e| format!("`{host}`: {e}"))?
            .next()
            .ok_or_else(|| format!("`{host}` has no address"))?;
        Ok(Upstream {
            addr,
            tls_name: tls.then(|| host.to_string()),
        })
    }
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.tls_name {
            Some(name) => write!(f, "https://{name}:{}", self.addr.port()),
            None => write!(f, "http://{}", self.addr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_plain_and_tls() {
        let plain = Upstream::parse("127.0.0.1:9001").unwrap();
        assert_eq!(plain.addr, "127.0.0.1:9001".parse().unwrap());
        assert_eq!(plain.tls_name, None);
        assert_eq!(Upstream::parse("http://127.0.0.1:9001").unwrap(), plain);
        let tls = Upstream::parse("https://localhost:9443").unwrap();
        assert_eq!(tls.tls_name.as_deref(), Some("localhost"));
        assert_eq!(tls.addr.port(), 9443);
        let v6 = Upstream::parse("https://[::1]:9443").unwrap();
        assert_eq!(v6.tls_name.as_deref(), Some("::1"));
        for bad in [
            "127.0.0.1",
            "ftp://127.0.0.1:21",
            "https://u@127.0.0.1:1",
            "https://:443",
            "http://127.0.0.1:9001/path",
            "",
        ] {
            assert!(Upstream::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn trusted_proxies_match_cidrs_and_mapped_addresses() {
        let t = TrustedProxies::parse(&["10.0.0.0/8".into(), "::1".into()]).unwrap();
        assert!(t.contains("10.1.2.3".parse().unwrap()));
        assert!(t.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(t.contains("::1".parse().unwrap()));
        assert!(!t.contains("11.0.0.1".parse().unwrap()));
        assert!(!t.contains("127.0.0.1".parse().unwrap()));
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["example.com".into()]).is_err());
    }
}
