//! Which proxy a connection goes through, decided as curl decides it from
//! the environment (or from one proxy the user names), without reading the
//! environment itself: the driver hands the variables in.
//!
//! curl's rules (its `libcurl-env` manual): an `http://` URL uses
//! `http_proxy` (lower case only: the upper-case name can be set by a web
//! server's CGI environment, "httpoxy"); an `https://` URL uses
//! `HTTPS_PROXY` or `https_proxy`; either falls back to `ALL_PROXY` /
//! `all_proxy`. `NO_PROXY` / `no_proxy` lists hosts that go direct: `*` for
//! all, a name (which covers its subdomains, with or without a leading dot),
//! an IP address, or an IP range in CIDR form. Lower case wins where both
//! are set; an empty value counts as unset.

use std::net::IpAddr;

/// The proxies a client uses, and the hosts that go direct.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProxyRules {
    http: Option<String>,
    https: Option<String>,
    all: Option<String>,
    bypass: Vec<Bypass>,
}

impl std::fmt::Debug for ProxyRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A proxy URL may carry a password: show only where it goes.
        let shown = |proxy: &Option<String>| proxy.as_deref().map(redact_proxy_url);
        f.debug_struct("ProxyRules")
            .field("http", &shown(&self.http))
            .field("https", &shown(&self.https))
            .field("all", &shown(&self.all))
            .field("bypass", &self.bypass)
            .finish()
    }
}

/// One `NO_PROXY` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Bypass {
    /// `*`: nothing is proxied.
    Everything,
    /// A host name and its subdomains, lower case, without a leading dot.
    Domain(String),
    /// An address, or a range of them: the address and the prefix length.
    Network(IpAddr, u8),
}

impl ProxyRules {
    /// No proxy at all.
    pub fn direct() -> ProxyRules {
        ProxyRules::default()
    }

    /// The rules curl would take from an environment in which `var` looks a
    /// variable up (`std::env::var(name).ok()`, say).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> ProxyRules {
        let get = |lower: &str, upper: Option<&str>| {
            [Some(lower), upper]
                .into_iter()
                .flatten()
                .find_map(|name| var(name).filter(|v| !v.trim().is_empty()))
        };
        ProxyRules {
            http: get("http_proxy", None),
            https: get("https_proxy", Some("HTTPS_PROXY")),
            all: get("all_proxy", Some("ALL_PROXY")),
            bypass: get("no_proxy", Some("NO_PROXY"))
                .map(|list| parse_bypass(&list))
                .unwrap_or_default(),
        }
    }

    /// Every connection through `proxy` (curl's `--proxy`), except the hosts
    /// `no_proxy` lists (curl's `--noproxy`, in `NO_PROXY`'s form).
    pub fn single(proxy: impl Into<String>, no_proxy: Option<&str>) -> ProxyRules {
        ProxyRules {
            all: Some(proxy.into()),
            bypass: no_proxy.map(parse_bypass).unwrap_or_default(),
            ..ProxyRules::default()
        }
    }

    /// Every proxy URL the rules name (to check them once, up front).
    pub fn proxies(&self) -> impl Iterator<Item = &str> {
        [&self.http, &self.https, &self.all]
            .into_iter()
            .filter_map(|proxy| proxy.as_deref())
    }

    /// Whether no connection at all goes through a proxy.
    pub fn is_direct(&self) -> bool {
        self.http.is_none() && self.https.is_none() && self.all.is_none()
    }

    /// The proxy URL (as configured) for a connection to `host` over
    /// `scheme` (`http`, `https`; `ws` and `wss` count as those), or `None`
    /// to connect directly. `host` may be an IPv6 literal, bracketed or not.
    pub fn proxy_for(&self, scheme: &str, host: &str) -> Option<&str> {
        let chosen = match scheme.to_ascii_lowercase().as_str() {
            "http" | "ws" => self.http.as_ref(),
            "https" | "wss" => self.https.as_ref(),
            _ => None,
        }
        .or(self.all.as_ref())?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        let address = host.parse::<IpAddr>().ok();
        let bypassed = self.bypass.iter().any(|rule| match rule {
            Bypass::Everything => true,
            Bypass::Domain(domain) => {
                host == *domain
                    || (host.ends_with(domain.as_str())
                        && host[..host.len() - domain.len()].ends_with('.'))
            }
            Bypass::Network(network, prefix) => {
                address.is_some_and(|a| in_network(a, *network, *prefix))
            }
        });
        (!bypassed).then_some(chosen.as_str())
    }
}

fn parse_bypass(list: &str) -> Vec<Bypass> {
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            if entry == "*" {
                return Bypass::Everything;
            }
            let (address, prefix) = match entry.split_once('/') {
                Some((address, prefix)) => (address, prefix.parse::<u8>().ok()),
                None => (entry, None),
            };
            let address = address.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = address.parse::<IpAddr>() {
                let full = if ip.is_ipv4() { 32 } else { 128 };
                return Bypass::Network(ip, prefix.unwrap_or(full).min(full));
            }
            let domain = entry.trim_start_matches("*.").trim_start_matches('.');
            let domain = domain.strip_suffix('.').unwrap_or(domain);
            Bypass::Domain(domain.to_ascii_lowercase())
        })
        .collect()
}

fn in_network(address: IpAddr, network: IpAddr, prefix: u8) -> bool {
    let (address, network, width): (u128, u128, u32) = match (address, network) {
        (IpAddr::V4(a), IpAddr::V4(n)) => (u32::from(a).into(), u32::from(n).into(), 32),
        (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128),
        // An IPv4-mapped IPv6 address is its IPv4 address.
        (IpAddr::V6(a), IpAddr::V4(_)) => match a.to_ipv4_mapped() {
            Some(v4) => return in_network(IpAddr::V4(v4), network, prefix),
            None => return false,
        },
        _ => return false,
    };
    let prefix = u32::from(prefix).min(width);
    if prefix == 0 {
        return true;
    }
    let shift = width - prefix;
    (address >> shift) == (network >> shift)
}

/// A proxy URL with any password replaced, for logs and errors.
pub fn redact_proxy_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return redact_authority(url);
    };
    format!("{scheme}://{}", redact_authority(rest))
}

fn redact_authority(rest: &str) -> String {
    // The credentials end at the last `@`, wherever it is: a password
    // with an unescaped `/`, `?` or `#` makes the URL invalid, and the
    // error that says so shows it (a proxy URL has no path that holds an
    // `@`; one that did would only be shown with less of it).
    match rest.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split([':', '/', '?', '#']).next().unwrap_or("");
            format!("{user}:***@{host}")
        }
        None => rest.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> ProxyRules {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ProxyRules::from_env(|name| map.get(name).cloned())
    }

    #[test]
    fn each_scheme_takes_its_own_variable_as_curl_does() {
        let rules = env(&[
            ("http_proxy", "http://plain:1"),
            ("HTTPS_PROXY", "http://secure:2"),
            ("ALL_PROXY", "socks5://all:3"),
        ]);
        assert_eq!(rules.proxy_for("http", "a.example"), Some("http://plain:1"));
        assert_eq!(rules.proxy_for("ws", "a.example"), Some("http://plain:1"));
        assert_eq!(
            rules.proxy_for("https", "a.example"),
            Some("http://secure:2")
        );
        assert_eq!(rules.proxy_for("wss", "a.example"), Some("http://secure:2"));
        // Upper-case HTTP_PROXY is not read (httpoxy); ALL_PROXY covers it.
        let rules = env(&[
            ("HTTP_PROXY", "http://cgi:1"),
            ("all_proxy", "http://all:3"),
        ]);
        assert_eq!(rules.proxy_for("http", "a.example"), Some("http://all:3"));
        // Lower case wins; empty is unset.
        let rules = env(&[
            ("https_proxy", "http://lower:1"),
            ("HTTPS_PROXY", "http://upper:2"),
        ]);
        assert_eq!(rules.proxy_for("https", "x"), Some("http://lower:1"));
        let rules = env(&[("https_proxy", ""), ("HTTPS_PROXY", "http://upper:2")]);
        assert_eq!(rules.proxy_for("https", "x"), Some("http://upper:2"));
        assert!(env(&[]).is_direct());
        assert_eq!(env(&[]).proxy_for("https", "x"), None);
    }

    #[test]
    fn no_proxy_covers_names_subdomains_addresses_and_ranges() {
        let rules = env(&[
            ("ALL_PROXY", "http://p:1"),
            (
                "NO_PROXY",
                "localhost, .internal.example,Corp.Example,10.0.0.0/8,::1,192.168.1.7",
            ),
        ]);
        for direct in [
            "localhost",
            "LOCALHOST",
            "a.internal.example",
            "internal.example",
            "corp.example",
            "x.y.corp.example.",
            "10.200.3.4",
            "[::1]",
            "::1",
            "192.168.1.7",
            "::ffff:10.1.2.3",
        ] {
            assert_eq!(rules.proxy_for("https", direct), None, "{direct}");
        }
        for proxied in [
            "notlocalhost",
            "badcorp.example",
            "corp.example.org",
            "11.0.0.1",
            "192.168.1.8",
            "::2",
        ] {
            assert_eq!(
                rules.proxy_for("https", proxied),
                Some("http://p:1"),
                "{proxied}"
            );
        }
        let rules = env(&[("ALL_PROXY", "http://p:1"), ("no_proxy", "*")]);
        assert_eq!(rules.proxy_for("http", "anything"), None);
    }

    #[test]
    fn a_single_proxy_serves_every_scheme_but_the_exceptions() {
        let rules = ProxyRules::single("http://p:8", Some("localhost"));
        assert_eq!(rules.proxy_for("http", "a"), Some("http://p:8"));
        assert_eq!(rules.proxy_for("wss", "a"), Some("http://p:8"));
        assert_eq!(rules.proxy_for("https", "localhost"), None);
        assert_eq!(rules.proxy_for("ftp", "a"), Some("http://p:8"));
    }

    #[test]
    fn passwords_stay_out_of_debug_and_redacted_urls() {
        let rules = ProxyRules::single("http://user:s3cret@proxy:3128/", None);
        let shown = format!("{rules:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("user:***@proxy:3128"), "{shown}");
        assert_eq!(redact_proxy_url("proxy:3128"), "proxy:3128");
        assert_eq!(redact_proxy_url("a:b@proxy:1"), "a:***@proxy:1");
        assert_eq!(
            redact_proxy_url("socks5://a:b:c@h:1/x"),
            "socks5://a:***@h:1/x"
        );
        // A password with characters that end an authority.
        for password in ["s3#cr", "s3/cr", "s3?cr", "a@b#c"] {
            let url = format!("http://bob:{password}@proxy:3128");
            assert_eq!(redact_proxy_url(&url), "http://bob:***@proxy:3128");
        }
    }

    proptest! {
        /// Whatever the password holds, a redacted URL does not show it.
        #[test]
        fn no_password_survives_redaction(password in "[a-z0-9/?#@:%]{1,12}", user in "[a-z]{1,6}") {
            let url = format!("http://{user}:{password}@proxy.example:3128");
            let shown = redact_proxy_url(&url);
            prop_assert_eq!(shown, format!("http://{user}:***@proxy.example:3128"));
        }
    }

    proptest! {
        /// A CIDR entry bypasses exactly the addresses that share its prefix.
        #[test]
        fn cidr_matches_exactly_the_prefix(network: u32, address: u32, prefix in 0u8..=32) {
            let net = std::net::Ipv4Addr::from(network);
            let rules = env(&[("ALL_PROXY", "http://p:1"), ("NO_PROXY", &format!("{net}/{prefix}"))]);
            let host = std::net::Ipv4Addr::from(address).to_string();
            let same = prefix == 0 || (network >> (32 - u32::from(prefix))) == (address >> (32 - u32::from(prefix)));
            prop_assert_eq!(rules.proxy_for("https", &host).is_none(), same);
        }

        /// Whatever the variables hold, deciding never panics.
        #[test]
        fn any_no_proxy_list_is_read_without_panicking(list in ".{0,64}", host in ".{0,32}") {
            let rules = env(&[("ALL_PROXY", "http://p:1"), ("NO_PROXY", &list)]);
            let _ = rules.proxy_for("https", &host);
        }
    }
}
