//! A real nginx in front of a test server, configured as Mastodon's own
//! deployment guide configures it: mastodon/mastodon `dist/nginx.conf` —
//! TLS with HTTP/2 on the listener, the `map $http_upgrade
//! $connection_upgrade` block, and a `location ^~ /api/v1/streaming` with
//! `proxy_buffering off`, `proxy_http_version 1.1` and the `Upgrade` /
//! `Connection` headers passed on; everything else (`location /`) to the
//! Rails side with `proxy_buffering on` — here the test server answers both.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::TlsIdentity;
use crate::programs::{ScratchDir, free_port, require, stop, wait_for_listener};

/// How the nginx in front is set up.
#[derive(Debug, Clone)]
pub struct NginxSite {
    /// Where the test server listens (the `streaming` upstream).
    pub upstream: SocketAddr,
    /// The loopback port to listen on; `None` picks a free one. (A test
    /// that must tell the server its public address picks it first.)
    pub port: Option<u16>,
    /// The certificate nginx serves; `None` serves plain HTTP/1.1.
    pub tls: Option<TlsIdentity>,
    /// The streaming location: Mastodon's, or a misconfigured one.
    pub streaming: StreamingLocation,
    /// nginx's `worker_shutdown_timeout`, in seconds: how long a reload
    /// lets old workers keep their open streams. Without it old workers
    /// keep streaming connections for as long as they stay open.
    pub worker_shutdown_timeout_secs: Option<u32>,
}

/// How `location ^~ /api/v1/streaming` proxies. What nginx 1.22 does with
/// each was seen here, not assumed: with `proxy_buffering on` it still
/// forwards each chunk of a chunked HTTP/1.1 response as it comes; a
/// close-delimited HTTP/1.0 response it holds, head and all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamingLocation {
    /// As `dist/nginx.conf` has it: `proxy_buffering off`, HTTP/1.1 to the
    /// upstream, `Upgrade` and `Connection` passed on.
    Mastodon,
    /// The same with `proxy_buffering on`: events still pass at once.
    BufferingOn,
    /// `proxy_buffering on` with no `proxy_http_version` line, so nginx's
    /// default HTTP/1.0 to the upstream: the stream's response (its head,
    /// its `:)` greeting) stays in nginx's buffers, and no WebSocket can
    /// upgrade.
    BufferingOnHttp10,
}

/// A running nginx; stopped on drop.
#[derive(Debug)]
pub struct Nginx {
    program: PathBuf,
    child: Child,
    addr: SocketAddr,
    secure: bool,
    config: PathBuf,
    prefix: PathBuf,
    _dir: ScratchDir,
}

/// The access log's format: method, path (`$uri` carries no query, so no
/// token), protocol, nginx's connection number, status.
const LOG_FORMAT: &str = "$request_method $uri $server_protocol $connection $status";

impl Nginx {
    /// Starts nginx on a free loopback port in front of `site.upstream`;
    /// panics when nginx is not installed (saying what to install) or does
    /// not start.
    pub fn start(site: &NginxSite) -> Nginx {
        let program = require("nginx", "nginx");
        let dir = ScratchDir::new("nginx").expect("a directory for nginx");
        let prefix = dir.path().to_owned();
        let port = site.port.unwrap_or_else(free_port);
        let listen = match &site.tls {
            Some(identity) => {
                std::fs::write(prefix.join("cert.pem"), &identity.certificate_pem)
                    .expect("the certificate file");
                std::fs::write(prefix.join("key.pem"), &identity.key_pem).expect("the key file");
                // nginx 1.22 (Debian 12) spells HTTP/2 on the listen line,
                // as Mastodon's dist/nginx.conf does.
                format!(
                    "listen 127.0.0.1:{port} ssl http2;\n    \
                     ssl_certificate {p}/cert.pem;\n    \
                     ssl_certificate_key {p}/key.pem;\n    \
                     ssl_protocols TLSv1.2 TLSv1.3;\n    \
                     ssl_session_tickets off;",
                    p = prefix.display()
                )
            }
            None => format!("listen 127.0.0.1:{port};"),
        };
        let (buffering, version) = match site.streaming {
            StreamingLocation::Mastodon => ("off", "proxy_http_version 1.1;"),
            StreamingLocation::BufferingOn => ("on", "proxy_http_version 1.1;"),
            StreamingLocation::BufferingOnHttp10 => ("on", ""),
        };
        let shutdown = site
            .worker_shutdown_timeout_secs
            .map(|secs| format!("worker_shutdown_timeout {secs}s;"))
            .unwrap_or_default();
        let user = if crate::programs::is_root() {
            "user root;"
        } else {
            ""
        };
        let config = format!(
            r#"{user}
daemon off;
worker_processes 1;
{shutdown}
pid {p}/nginx.pid;
error_log {p}/error.log info;
events {{ worker_connections 512; }}
http {{
  log_format streaming '{LOG_FORMAT}';
  access_log {p}/access.log streaming;
  client_body_temp_path {p}/body;
  proxy_temp_path {p}/proxy;
  fastcgi_temp_path {p}/fastcgi;
  uwsgi_temp_path {p}/uwsgi;
  scgi_temp_path {p}/scgi;

  map $http_upgrade $connection_upgrade {{
    default upgrade;
    ''      close;
  }}
  upstream streaming {{
    server {upstream} fail_timeout=0;
  }}
  server {{
    {listen}
    keepalive_timeout 70;

    location / {{
      proxy_set_header Host $host;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header Proxy "";
      proxy_pass_header Server;
      proxy_pass http://streaming;
      proxy_buffering on;
      proxy_redirect off;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      tcp_nodelay on;
    }}

    location ^~ /api/v1/streaming {{
      proxy_set_header Host $host;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header Proxy "";
      proxy_pass http://streaming;
      proxy_buffering {buffering};
      proxy_redirect off;
      {version}
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      tcp_nodelay on;
    }}
  }}
}}
"#,
            p = prefix.display(),
            upstream = site.upstream,
        );
        let config_path = prefix.join("nginx.conf");
        std::fs::write(&config_path, config).expect("nginx's configuration");
        let mut command = Command::new(&program);
        // A process group of its own, so that its workers can be stopped with it.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nginx starts");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait_for_listener(addr, &mut child, "nginx", &prefix.join("error.log"));
        Nginx {
            program,
            child,
            addr,
            secure: site.tls.is_some(),
            config: config_path,
            prefix,
            _dir: dir,
        }
    }

    /// `https://127.0.0.1:PORT` (or `http://`).
    pub fn url(&self) -> String {
        let scheme = if self.secure { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Reloads the configuration as `nginx -s reload` does: new workers
    /// take new connections, old ones close theirs within
    /// `worker_shutdown_timeout`.
    pub fn reload(&self) {
        let status = Command::new(&self.program)
            .arg("-p")
            .arg(&self.prefix)
            .arg("-c")
            .arg(&self.config)
            .args(["-s", "reload"])
            .stderr(Stdio::null())
            .status()
            .expect("nginx -s reload runs");
        assert!(status.success(), "nginx -s reload failed: {status}");
    }

    /// The access log's lines so far, in [`LOG_FORMAT`]'s fields: method,
    /// path, protocol, connection number, status. nginx writes a line when
    /// a request ends.
    pub fn access_log(&self) -> Vec<String> {
        std::fs::read_to_string(self.prefix.join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The error log, for a failing test's message.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.prefix.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // nginx's fast shutdown: the master stops its workers, then exits.
        let _ = Command::new(&self.program)
            .arg("-p")
            .arg(&self.prefix)
            .arg("-c")
            .arg(&self.config)
            .args(["-s", "stop"])
            .stderr(Stdio::null())
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // Still there: kill its whole process group, workers included (a
        // worker outlives a killed master).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        stop(&mut self.child);
    }
}
