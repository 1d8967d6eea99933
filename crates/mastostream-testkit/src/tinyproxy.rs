//! A real HTTP proxy for the tests: Debian's tinyproxy, on a loopback port
//! of its own, logging every request line (`GET http://…` for plain HTTP,
//! `CONNECT host:port` for a tunnel) so a test can see what went through it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::programs::{ScratchDir, free_port, require, stop, wait_for_listener};

/// A running tinyproxy; stopped on drop.
#[derive(Debug)]
pub struct Tinyproxy {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    // Dropped last: the log and configuration live in it.
    _dir: ScratchDir,
}

impl Tinyproxy {
    /// Starts tinyproxy on a free loopback port; panics when it is not
    /// installed (saying what to install) or does not start.
    pub fn start() -> Tinyproxy {
        Self::start_with(None)
    }

    /// Like [`start`](Self::start), but it wants Basic credentials
    /// (tinyproxy's `BasicAuth`): without them it answers 407.
    pub fn start_with_credentials(user: &str, password: &str) -> Tinyproxy {
        Self::start_with(Some((user, password)))
    }

    fn start_with(credentials: Option<(&str, &str)>) -> Tinyproxy {
        let program = require("tinyproxy", "tinyproxy");
        let dir = ScratchDir::new("tinyproxy").expect("a directory for tinyproxy");
        let port = free_port();
        let log = dir.path().join("tinyproxy.log");
        let config = dir.path().join("tinyproxy.conf");
        // No ConnectPort line: CONNECT is allowed to every port (the test
        // servers' are not 443). Requests are logged at Info.
        let user = if crate::programs::is_root() {
            "User root\nGroup root\n"
        } else {
            ""
        };
        let text = format!(
            "{user}Port {port}\nListen 127.0.0.1\nTimeout 600\nMaxClients 200\n\
             LogLevel Info\nLogFile \"{log}\"\nAllow 127.0.0.1\nAllow ::1\n\
             DisableViaHeader Yes\n{auth}",
            log = log.display(),
            auth = credentials
                .map(|(user, password)| format!("BasicAuth {user} {password}\n"))
                .unwrap_or_default(),
        );
        std::fs::write(&config, text).expect("tinyproxy's configuration");
        let mut child = Command::new(program)
            .arg("-d")
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tinyproxy starts");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait_for_listener(addr, &mut child, "tinyproxy", &log);
        Tinyproxy {
            child,
            addr,
            log,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The request lines it has logged so far (`GET http://…`, `CONNECT …`).
    pub fn requests(&self) -> Vec<String> {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log.lines()
            .filter_map(|line| {
                line.split("): ")
                    .nth(1)
                    .filter(|_| line.contains("Request ("))
            })
            .map(str::to_owned)
            .collect()
    }

    /// Its whole log, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
