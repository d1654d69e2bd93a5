//! The SSRF guard: callbacks never reach loopback, private, link-local (cloud metadata),
//! multicast or unspecified addresses unless configuration allows them. Names are checked after
//! resolution, on the addresses the connection will use, so DNS rebinding cannot slip past.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

#[derive(Clone, Debug, Default)]
pub struct Guard {
    pub enabled: bool,
    pub allow: Vec<IpNet>,
    /// Names pinned to addresses (`ssrf_resolve`): looked up here before DNS, still guarded.
    pub pinned: Vec<(String, IpAddr)>,
}

impl Guard {
    pub fn from_settings(settings: &crate::config::DeliverySettings) -> Self {
        Self {
            enabled: settings.ssrf_guard,
            allow: settings.ssrf_allowlist.clone(),
            pinned: settings.ssrf_resolve.clone(),
        }
    }
}

/// Addresses no callback may reach: loopback, private, link-local (cloud metadata), shared
/// (carrier-grade NAT), benchmarking, reserved, multicast, broadcast, unspecified.
pub fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254.0.0/16, including 169.254.169.254 (cloud metadata)
        || ip.is_multicast()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || (o[0] == 100 && (64..128).contains(&o[1])) // carrier-grade NAT
        || (o[0] == 198 && (o[1] == 18 || o[1] == 19)) // benchmarking, 198.18.0.0/15
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || o[0] >= 240 // reserved, 240.0.0.0/4
        || o[0] == 0
}

/// The IPv4 addresses an IPv6 address carries and that a router would reach: IPv4-mapped and
/// IPv4-compatible, NAT64 (`64:ff9b::/96`), 6to4 (`2002::/16`) and Teredo (`2001::/32`, its
/// server and its obfuscated client).
fn embedded_v4(ip: Ipv6Addr) -> Vec<Ipv4Addr> {
    let seg = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    let mut out = Vec::new();
    if let Some(mapped) = ip.to_ipv4_mapped() {
        out.push(mapped);
    }
    if seg[..6] == [0; 6] && !ip.is_loopback() && !ip.is_unspecified() {
        out.push(v4(seg[6], seg[7])); // IPv4-compatible `::a.b.c.d`
    }
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        out.push(v4(seg[6], seg[7]));
    }
    if seg[0] == 0x2002 {
        out.push(v4(seg[1], seg[2]));
    }
    if seg[0] == 0x2001 && seg[1] == 0 {
        out.push(v4(seg[2], seg[3]));
        out.push(v4(!seg[6], !seg[7]));
    }
    out
}

pub fn forbidden_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (seg[0] & 0xfe00) == 0xfc00 // unique local
        || (seg[0] & 0xffc0) == 0xfe80 // link-local
        || (seg[0] & 0xffc0) == 0xfec0 // site-local (deprecated, still routed by some)
        || ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) // AWS metadata over IPv6
        || embedded_v4(ip).into_iter().any(forbidden_v4)
}

impl Guard {
    pub fn allows(&self, ip: IpAddr) -> bool {
        if !self.enabled || self.allow.iter().any(|n| n.contains(&ip)) {
            return true;
        }
        match ip {
            IpAddr::V4(v4) => !forbidden_v4(v4),
            IpAddr::V6(v6) => !forbidden_v6(v6),
        }
    }

    /// What an endpoint URL may not be, checked when it is created or changed: a literal
    /// address the guard refuses, or a URL that `url` and `http::Uri` read differently (the
    /// check and the connection must agree on the host). Names are checked on every attempt.
    pub fn check_url(&self, text: &str) -> Result<(), String> {
        let url = url::Url::parse(text).map_err(|e| format!("is not an absolute URL ({e})"))?;
        let uri: http::Uri = text
            .parse()
            .map_err(|_| "is not read the same way by every HTTP parser".to_owned())?;
        let host = url.host_str().unwrap_or_default();
        let same_host = uri.host().is_some_and(|h| h.eq_ignore_ascii_case(host));
        let same_port = uri.port_u16().or(match uri.scheme_str() {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        }) == url.port_or_known_default();
        if !same_host || !same_port {
            return Err("is not read the same way by every HTTP parser".into());
        }
        if let Some(ip) = literal(&url) {
            if !self.allows(ip) {
                return Err(format!(
                    "points at {ip}, an internal address the gateway does not call"
                ));
            }
        }
        Ok(())
    }

    /// A name pinned by configuration; `*` pins every other name (a test run that must not
    /// query DNS at all).
    fn pinned(&self, host: &str) -> Option<IpAddr> {
        let pins = &self.pinned;
        pins.iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(host))
            .or_else(|| pins.iter().find(|(name, _)| name == "*"))
            .map(|(_, ip)| *ip)
    }
}

/// The URL's host when it is an IP literal (these never reach the resolver).
pub fn literal(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

/// Marks a refusal in the error chain, so the attempt log can say `ssrf_refused`.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused by the SSRF guard: {}", self.0)
    }
}

impl std::error::Error for Refused {}

/// Resolves with the system resolver, then keeps only the addresses the guard allows.
pub struct GuardedResolver(pub Arc<Guard>);

impl GuardedResolver {
    /// Resolves `host` as a connection would, for a call that goes through a proxy.
    pub async fn check(&self, host: &str) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.addresses(host.to_owned()).await.map(drop)
    }

    async fn addresses(
        &self,
        host: String,
    ) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
        let guard = &self.0;
        let addrs: Vec<SocketAddr> = match guard.pinned(&host) {
            Some(ip) => vec![SocketAddr::new(ip, 0)],
            None => tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?
                .collect(),
        };
        let allowed: Vec<SocketAddr> = addrs
            .iter()
            .copied()
            .filter(|a| guard.allows(a.ip()))
            .collect();
        if allowed.is_empty() && !addrs.is_empty() {
            return Err(Box::new(Refused(format!(
                "{host} resolves only to internal addresses"
            ))) as Box<dyn std::error::Error + Send + Sync>);
        }
        Ok(allowed)
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let resolver = GuardedResolver(self.0.clone());
        Box::pin(async move {
            let allowed = resolver.addresses(name.as_str().to_owned()).await?;
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> Guard {
        Guard {
            enabled: true,
            ..Guard::default()
        }
    }

    #[test]
    fn internal_addresses_are_refused_unless_allowlisted() {
        let guard = guard();
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "100.64.0.1",
            "198.18.0.1",
            "198.19.255.254",
            "240.0.0.1",
            "255.255.255.255",
            "192.0.0.8",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "fec0::1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",                 // IPv4-compatible
            "::10.0.0.1",                  // IPv4-compatible
            "64:ff9b::a00:1",              // NAT64 of 10.0.0.1
            "64:ff9b::7f00:1",             // NAT64 of 127.0.0.1
            "2002:a9fe:a9fe::1",           // 6to4 of 169.254.169.254
            "2002:7f00:1::",               // 6to4 of 127.0.0.1
            "2001:0:a00:1::1",             // Teredo, server 10.0.0.1
            "2001:0:5db8:2d3f::80ff:fffe", // Teredo, client 127.0.0.1 (inverted)
        ] {
            assert!(!guard.allows(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "2606:2800:220:1::1",
            "198.20.0.1",
            "64:ff9b::5db8:d822",          // NAT64 of a public address
            "2002:5db8:d822::1",           // 6to4 of a public address
            "2001:0:5db8:d822::a247:27dd", // Teredo with public server and client
        ] {
            assert!(guard.allows(ip.parse().unwrap()), "{ip}");
        }
        let allow = Guard {
            allow: vec!["127.0.0.1/32".parse().unwrap()],
            ..guard.clone()
        };
        assert!(allow.allows("127.0.0.1".parse().unwrap()));
        assert!(!allow.allows("127.0.0.2".parse().unwrap()));
        assert!(Guard::default().allows("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn an_endpoint_url_may_not_name_a_refused_literal_or_read_differently_to_the_connection() {
        let guard = guard();
        for ok in [
            "https://example.com/hook",
            "https://example.com:8443/hook?x=1",
            "http://93.184.216.34/hook",
            "https://[2606:2800:220:1::1]/hook",
        ] {
            assert_eq!(guard.check_url(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://127.0.0.1:9/hook",
            "http://[::1]/hook",
            "http://0x7f000001/hook", // url reads 127.0.0.1
            "http://2130706433/hook", // url reads 127.0.0.1
            "http://[::ffff:a9fe:a9fe]/latest/meta-data",
            "http://[fe80::1%25eth0]/hook", // a zone id
            "http://example.com\\@127.0.0.1/hook",
            "http://127.0.0.1\\@example.com/hook",
            "http://example.com:80\\@10.0.0.1/",
        ] {
            assert!(guard.check_url(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_pinned_name_resolves_to_its_address_and_is_still_guarded() {
        let pinned = Guard {
            pinned: vec![("internal-db.corp".into(), "10.1.2.3".parse().unwrap())],
            ..guard()
        };
        let err = GuardedResolver(Arc::new(pinned.clone()))
            .check("INTERNAL-DB.corp")
            .await
            .unwrap_err();
        assert!(err.downcast_ref::<Refused>().is_some(), "{err}");
        let allowed = Guard {
            allow: vec!["10.1.2.3/32".parse().unwrap()],
            ..pinned
        };
        assert!(GuardedResolver(Arc::new(allowed))
            .check("internal-db.corp")
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn a_wildcard_pin_answers_every_other_name_without_asking_dns() {
        let guard = Guard {
            pinned: vec![
                ("hooks.example".into(), "203.0.113.9".parse().unwrap()),
                ("*".into(), "127.0.0.1".parse().unwrap()),
            ],
            ..guard()
        };
        assert_eq!(guard.pinned("hooks.example"), "203.0.113.9".parse().ok());
        // A name no DNS server knows: answered by the pin, and refused as loopback.
        let err = GuardedResolver(Arc::new(guard))
            .check("no-such-name.invalid")
            .await
            .unwrap_err();
        assert!(err.downcast_ref::<Refused>().is_some(), "{err}");
    }
}
