//! The SSRF guard: a DNS resolver for the outbound client that drops every resolved address the
//! operator has not allowed, plus the same check for URLs whose host is an IP literal (which no
//! resolver sees).

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use vestnik_core::ssrf::{self, AddressClass};

/// Raised through reqwest's error chain when every address of a host is refused.
#[derive(Debug, thiserror::Error)]
#[error("refused target address {address} ({})", class.as_str())]
pub struct BlockedTarget {
    pub address: IpAddr,
    pub class: AddressClass,
}

/// Raised when the name does not resolve at all.
#[derive(Debug, thiserror::Error)]
#[error("the host name did not resolve: {0}")]
pub struct DnsFailure(String);

#[derive(Debug, Clone)]
pub struct GuardedResolver {
    allow: Arc<Vec<IpNet>>,
}

impl GuardedResolver {
    pub fn new(allow: Vec<IpNet>) -> Self {
        Self {
            allow: Arc::new(allow),
        }
    }

    /// Checks a URL's host when it is an IP literal; names are checked at resolution.
    pub fn check_literal(&self, url: &url::Url) -> Result<(), BlockedTarget> {
        let address = match url.host() {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            _ => return Ok(()),
        };
        ssrf::check(address, &self.allow).map_err(|class| BlockedTarget { address, class })
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = Arc::clone(&self.allow);
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|err| DnsFailure(err.to_string()))?
                .collect();
            if resolved.is_empty() {
                return Err(DnsFailure(format!("{host} has no addresses")).into());
            }
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match ssrf::check(addr.ip(), &allow) {
                    Ok(()) => true,
                    Err(class) => {
                        refused.get_or_insert(BlockedTarget {
                            address: addr.ip(),
                            class,
                        });
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let blocked = refused.expect("a refused address when none is allowed");
                return Err(Box::new(blocked) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn localhost_is_refused_unless_allowed() {
        let closed = GuardedResolver::new(Vec::new());
        let name: Name = "localhost".parse().unwrap();
        let err = match closed.resolve(name).await {
            Ok(_) => panic!("localhost must be refused"),
            Err(err) => err,
        };
        assert!(err.downcast_ref::<BlockedTarget>().is_some(), "{err}");

        let open = GuardedResolver::new(vec![
            "127.0.0.0/8".parse().unwrap(),
            "::1/128".parse().unwrap(),
        ]);
        let addrs: Vec<_> = open
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
    }

    #[test]
    fn ip_literals_are_checked_too() {
        let guard = GuardedResolver::new(Vec::new());
        let metadata = url::Url::parse("http://169.254.169.254/latest").unwrap();
        let err = guard.check_literal(&metadata).unwrap_err();
        assert_eq!(err.class, AddressClass::LinkLocal);
        assert!(
            guard
                .check_literal(&url::Url::parse("http://[::ffff:127.0.0.1]/").unwrap())
                .is_err()
        );
        assert!(
            guard
                .check_literal(&url::Url::parse("https://8.8.8.8/").unwrap())
                .is_ok()
        );
    }
}
