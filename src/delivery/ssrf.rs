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
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254.0.0/16, including 169.254.169.254 (cloud metadata)
        || ip.is_multicast()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || (o[0] == 100 && (64..128).contains(&o[1])) // carrier-grade NAT
        || o[0] == 0
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    let seg = ip.segments();
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (seg[0] & 0xfe00) == 0xfc00 // unique local
        || (seg[0] & 0xffc0) == 0xfe80 // link-local
        || ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) // AWS metadata over IPv6
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

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?
                .collect();
            let allowed: Vec<SocketAddr> = addrs
                .iter()
                .copied()
                .filter(|a| guard.allows(a.ip()))
                .collect();
            if allowed.is_empty() && !addrs.is_empty() {
                return Err(Box::new(Refused(format!(
                    "{host} resolves only to internal addresses"
                )))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused_unless_allowlisted() {
        let guard = Guard {
            enabled: true,
            allow: vec![],
        };
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!guard.allows(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1::1"] {
            assert!(guard.allows(ip.parse().unwrap()), "{ip}");
        }
        let allow = Guard {
            enabled: true,
            allow: vec!["127.0.0.1/32".parse().unwrap()],
        };
        assert!(allow.allows("127.0.0.1".parse().unwrap()));
        assert!(!allow.allows("127.0.0.2".parse().unwrap()));
        assert!(Guard {
            enabled: false,
            allow: vec![]
        }
        .allows("10.0.0.1".parse().unwrap()));
    }
}
