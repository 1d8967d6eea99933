//! Reaching the server through an HTTP proxy: the same rules for reqwest
//! (SSE, REST) and for the WebSocket, which tunnels through `CONNECT`, so
//! the proxy sees only the host and port, never a request or a token.

// The tunnel serves only the WebSocket.
#![cfg_attr(not(feature = "websocket"), allow(dead_code))]

use std::time::Duration;

use mastostream_proto::{ProxyRules, redact_proxy_url};
use reqwest::Url;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::Error;

/// A proxy URL as the user or the environment gave it, checked: `http://`
/// (the scheme may be left out, as curl allows). TLS to the proxy and SOCKS
/// are refused with a clear error rather than half-supported.
pub(crate) fn parse_proxy_url(text: &str) -> Result<Url, Error> {
    let text = text.trim();
    let with_scheme = if text.contains("://") {
        text.to_owned()
    } else {
        format!("http://{text}")
    };
    let shown = redact_proxy_url(text);
    let url = Url::parse(&with_scheme)
        .map_err(|e| Error::Config(format!("bad proxy URL {shown:?}: {e}")))?;
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(Error::Config(format!(
                "proxy {shown:?}: TLS to the proxy (https://) is not supported; use its http:// address (the connection to the server is still TLS, through CONNECT)"
            )));
        }
        "socks5" | "socks5h" | "socks4" | "socks4a" | "socks" => {
            return Err(Error::Config(format!(
                "proxy {shown:?}: SOCKS proxies are not supported; use an HTTP proxy (http://host:port)"
            )));
        }
        other => {
            return Err(Error::Config(format!(
                "proxy {shown:?}: unsupported scheme {other:?}; use http://host:port"
            )));
        }
    }
    if url.host_str().is_none() {
        return Err(Error::Config(format!("proxy {shown:?} has no host")));
    }
    Ok(url)
}

/// Checks every proxy `rules` name, so a bad one fails `build`, not the
/// first connection.
pub(crate) fn check_rules(rules: &ProxyRules) -> Result<(), Error> {
    for proxy in rules.proxies() {
        parse_proxy_url(proxy)?;
    }
    Ok(())
}

/// The proxy for a connection to `url`, if the rules send it through one.
pub(crate) fn proxy_for(rules: &ProxyRules, url: &Url) -> Option<Url> {
    let proxy = rules.proxy_for(url.scheme(), url.host_str()?)?;
    // Checked at build.
    parse_proxy_url(proxy).ok()
}

/// The same rules, for reqwest (whose own reading of the environment is
/// turned off, so both transports decide alike).
pub(crate) fn for_reqwest(rules: ProxyRules) -> reqwest::Proxy {
    reqwest::Proxy::custom(move |url| proxy_for(&rules, url))
}

/// Opens a TCP connection to `host:port` through the HTTP proxy at `proxy`
/// with `CONNECT`, sending `Proxy-Authorization: Basic` when the proxy URL
/// carries credentials. A refusal by the proxy is an [`Error::Http`] whose
/// message says it came from the proxy.
pub(crate) async fn tunnel(
    proxy: &Url,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<TcpStream, Error> {
    let shown = redact_proxy_url(proxy.as_str());
    let proxy_host = proxy
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let proxy_port = proxy.port_or_known_default().unwrap_or(80);
    let open = async {
        let mut tcp = TcpStream::connect((proxy_host.as_str(), proxy_port))
            .await
            .map_err(|e| network(format!("cannot reach the proxy {shown}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if !proxy.username().is_empty() {
            let user = percent_decode(proxy.username());
            let password = percent_decode(proxy.password().unwrap_or(""));
            request.push_str("Proxy-Authorization: Basic ");
            request.push_str(&base64(format!("{user}:{password}").as_bytes()));
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        tcp.write_all(request.as_bytes())
            .await
            .map_err(|e| network(format!("the proxy {shown} closed the connection: {e}")))?;
        let head = read_head(&mut tcp)
            .await
            .map_err(|e| network(format!("no answer to CONNECT from the proxy {shown}: {e}")))?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or_else(|| {
                network(format!(
                    "the proxy {shown} answered CONNECT with {:?}",
                    first_line(&head)
                ))
            })?;
        if (200..300).contains(&status) {
            return Ok(tcp);
        }
        let hint = if status == 407 {
            " (proxy authentication required: put the credentials in the proxy URL, http://user:password@host:port)"
        } else {
            ""
        };
        Err(Error::Http {
            status,
            message: Some(format!(
                "the proxy {shown} refused to connect to {authority}{hint}"
            )),
            retry_after: None,
        })
    };
    tokio::time::timeout(timeout, open)
        .await
        .map_err(|_| network(format!("the proxy {shown} did not open a tunnel in time")))?
}

fn network(message: String) -> Error {
    Error::Network {
        message,
        source: None,
    }
}

fn first_line(head: &str) -> &str {
    head.lines().next().unwrap_or("")
}

/// Reads a response head up to its blank line (a proxy's answer to
/// CONNECT has no body we need), at most 16 KiB; byte by byte, so nothing
/// of the tunnelled stream after it is consumed.
async fn read_head(tcp: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && !head.ends_with(b"\n\n") {
        if head.len() >= 16 * 1024 {
            return Err(std::io::Error::other("the answer's head is over 16 KiB"));
        }
        if tcp.read(&mut byte).await? == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
        }
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// `%XX` sequences decoded (a URL's user name and password are kept encoded).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((high * 16 + low) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Standard base64 with padding (RFC 4648), for Basic credentials.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
            ("Aladdin:open sesame", "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
        ] {
            assert_eq!(base64(input.as_bytes()), encoded, "{input:?}");
        }
    }

    #[test]
    fn credentials_are_percent_decoded() {
        assert_eq!(percent_decode("p%40ss%3Aw"), "p@ss:w");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn proxy_urls_are_checked_and_secrets_kept_out_of_errors() {
        assert_eq!(
            parse_proxy_url("proxy.example:3128").unwrap().as_str(),
            "http://proxy.example:3128/"
        );
        for bad in [
            "socks5://u:hunter2@h:1",
            "https://u:hunter2@h:1",
            "ftp://h",
            "http://",
        ] {
            let error = parse_proxy_url(bad).unwrap_err().to_string();
            assert!(!error.contains("hunter2"), "{error}");
            assert!(error.contains("proxy"), "{error}");
        }
    }
}
