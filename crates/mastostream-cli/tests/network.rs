//! How the binary reaches the network: `--cacert`, `SSL_CERT_FILE`,
//! `--proxy` and the proxy variables (through a real tinyproxy), and
//! `serve --tls` / `--tls-cert` / `--tls-key`.

mod common;

use std::process::Output;
use std::time::Duration;

use common::mastostream;
use mastostream_proto::Channel;
use mastostream_testkit::tinyproxy::Tinyproxy;
use mastostream_testkit::{BlockingTestServer, LOOPBACK_NAMES, Publish, TestServer, TlsIdentity};

fn tls_server() -> BlockingTestServer {
    TestServer::builder()
        // Frequent heartbeats: the connection of a command that has ended
        // is noticed (at the next write) within a tenth of a second.
        .heartbeat(Duration::from_millis(100))
        .tls(TlsIdentity::self_signed(&LOOPBACK_NAMES).unwrap())
        .start_blocking()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A file in a directory of its own, holding `contents`.
fn file_with(name: &str, contents: &str) -> (mastostream_testkit::programs::ScratchDir, String) {
    let dir = mastostream_testkit::programs::ScratchDir::new("cli-network").unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    let path = path.to_str().unwrap().to_owned();
    (dir, path)
}

/// `stream --limit 1 public` with `extra` and `env`, one event published
/// once the server holds the subscription; the output.
fn stream_one(server: &BlockingTestServer, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let url = server.url();
    let mut args = vec!["stream", "--server", &url, "--token", "t", "--limit", "1"];
    args.extend_from_slice(extra);
    args.push("public");
    let mut command = mastostream(&args);
    for (name, value) in env {
        command.env(name, value);
    }
    // The previous command's connection must be gone first, or the event
    // could go to it alone.
    assert!(
        server.wait_until(Duration::from_secs(10), |open| open.is_empty()),
        "a connection lingers: {:?}",
        server.connections()
    );
    let child = command.spawn().unwrap();
    common::wait_for_streams(server, &[&["public"]]);
    server.publish(Publish::new("delete", "77").to(Channel::Public));
    let output = common::finish(child);
    assert!(
        output.status.success(),
        "{args:?} {env:?}: {}",
        text(&output.stderr)
    );
    assert_eq!(
        text(&output.stdout),
        "{\"stream\":[\"public\"],\"event\":\"delete\",\"payload\":\"77\"}\n"
    );
    output
}

#[test]
fn cacert_and_ssl_cert_file_trust_a_private_ca() {
    let server = tls_server();
    let (_dir, ca) = file_with("ca.pem", server.ca_pem().unwrap());
    for transport in ["sse", "ws"] {
        stream_one(&server, &["--transport", transport, "--cacert", &ca], &[]);
        stream_one(
            &server,
            &["--transport", transport],
            &[("SSL_CERT_FILE", &ca)],
        );
    }
    // Without it: refused at once, naming the host and the reason.
    let output = common::finish(
        mastostream(&["health", "--server", &server.url()])
            .spawn()
            .unwrap(),
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("127.0.0.1") && stderr.contains("unknown issuer"),
        "{stderr}"
    );
    let output = common::finish(
        mastostream(&[
            "stream",
            "--server",
            &server.url(),
            "--token",
            "t",
            "--no-reconnect",
            "public",
        ])
        .spawn()
        .unwrap(),
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("unknown issuer"));
    // A file that is not there is a usage error naming it.
    let output = common::finish(
        mastostream(&[
            "health",
            "--server",
            &server.url(),
            "--cacert",
            "/nonexistent/ca.pem",
        ])
        .spawn()
        .unwrap(),
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("/nonexistent/ca.pem"));
}

#[test]
fn proxy_flag_and_variables_send_both_transports_through_tinyproxy() {
    let proxy = Tinyproxy::start();
    let server = tls_server();
    let (_dir, ca) = file_with("ca.pem", server.ca_pem().unwrap());
    let tunnel = format!("CONNECT {} ", server.addr());
    let tunnels = |proxy: &Tinyproxy| {
        proxy
            .requests()
            .iter()
            .filter(|r| r.starts_with(&tunnel))
            .count()
    };
    let mut seen = 0;
    for transport in ["sse", "ws"] {
        let common = ["--transport", transport, "--cacert", &ca];
        // --proxy
        let mut args = common.to_vec();
        let url = proxy.url();
        args.extend(["--proxy", &url]);
        stream_one(&server, &args, &[]);
        assert!(tunnels(&proxy) > seen, "{transport}: {}", proxy.log());
        seen = tunnels(&proxy);
        // HTTPS_PROXY, as curl reads it (upper or lower case).
        for name in ["HTTPS_PROXY", "https_proxy", "ALL_PROXY"] {
            stream_one(&server, &common, &[(name, &url)]);
            assert!(
                tunnels(&proxy) > seen,
                "{transport} {name}: {}",
                proxy.log()
            );
            seen = tunnels(&proxy);
        }
        // NO_PROXY names the server: straight there.
        for no_proxy in ["127.0.0.1", "localhost,127.0.0.0/8", "*"] {
            stream_one(
                &server,
                &common,
                &[("HTTPS_PROXY", &url), ("NO_PROXY", no_proxy)],
            );
            assert_eq!(tunnels(&proxy), seen, "{transport} NO_PROXY={no_proxy}");
        }
        // --proxy '' connects directly whatever the environment says.
        let mut args = common.to_vec();
        args.extend(["--proxy", ""]);
        stream_one(&server, &args, &[("HTTPS_PROXY", &url)]);
        assert_eq!(tunnels(&proxy), seen, "{transport} --proxy ''");
    }
    assert!(!proxy.log().contains("Bearer"));
}

#[test]
fn an_unsupported_proxy_is_a_usage_error() {
    for proxy in ["socks5://127.0.0.1:1080", "https://127.0.0.1:3128"] {
        let output = common::finish(
            mastostream(&[
                "health",
                "--server",
                "https://example.invalid",
                "--proxy",
                proxy,
            ])
            .spawn()
            .unwrap(),
        );
        assert_eq!(output.status.code(), Some(2), "{proxy}");
        assert!(text(&output.stderr).contains("not supported"), "{proxy}");
    }
}

fn health(url: &str, extra: &[&str]) -> Output {
    let mut args = vec!["health", "--server", url];
    args.extend_from_slice(extra);
    common::finish(mastostream(&args).spawn().unwrap())
}

#[test]
fn serve_tls_makes_a_ca_and_says_where_it_is() {
    let (child, line) = common::serve_process(&["--tls"]);
    // listening on https://127.0.0.1:PORT; CA certificate: PATH
    let (url, ca) = line
        .strip_prefix("listening on ")
        .and_then(|rest| rest.split_once("; CA certificate: "))
        .unwrap_or_else(|| panic!("first line: {line:?}"));
    assert!(url.starts_with("https://127.0.0.1:"), "{line}");
    assert!(
        std::fs::read_to_string(ca)
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    let ok = health(url, &["--cacert", ca]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert_eq!(text(&ok.stdout), "OK\n");
    // localhost is in the certificate too.
    let localhost = url.replace("127.0.0.1", "localhost");
    assert!(health(&localhost, &["--cacert", ca]).status.success());
    let refused = health(url, &[]);
    assert!(text(&refused.stderr).contains("unknown issuer"));
    common::terminate(child);
    assert!(
        !std::path::Path::new(ca).exists(),
        "the CA file is removed at exit"
    );
}

#[test]
fn serve_tls_cert_and_key_serve_a_given_certificate() {
    let identity = TlsIdentity::self_signed(&LOOPBACK_NAMES).unwrap();
    let (_a, cert) = file_with("cert.pem", &identity.certificate_pem);
    let (_b, key) = file_with("key.pem", &identity.key_pem);
    let (_c, ca) = file_with("ca.pem", identity.ca_pem.as_deref().unwrap());
    let (child, line) = common::serve_process(&["--tls-cert", &cert, "--tls-key", &key]);
    let url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {line:?}"));
    assert!(url.starts_with("https://"), "{line}");
    let ok = health(url, &["--cacert", &ca]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    common::terminate(child);

    // Half a pair, or a key that is no key: a clear refusal.
    let output = common::finish(
        mastostream(&["serve", "--addr", "127.0.0.1:0", "--tls-cert", &cert])
            .spawn()
            .unwrap(),
    );
    assert_eq!(output.status.code(), Some(2));
    let output = common::finish(
        mastostream(&[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &cert,
        ])
        .spawn()
        .unwrap(),
    );
    assert_ne!(output.status.code(), Some(0));
    assert!(
        text(&output.stderr).contains("key"),
        "{}",
        text(&output.stderr)
    );
}
