//! A real NATS server for the tests: Debian's `nats-server`, with
//! JetStream on a directory of its own, on a loopback port of its own. It
//! can be stopped and started again on the same port and directory (what
//! JetStream stored survives), as a NATS that goes away and comes back.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::programs::{ScratchDir, free_port, require, stop, wait_for_listener};

/// A running (or stopped) nats-server; stopped on drop.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    addr: SocketAddr,
    program: PathBuf,
    log: PathBuf,
    store: PathBuf,
    // Dropped last: the store and log live in it.
    _dir: ScratchDir,
}

impl NatsServer {
    /// Starts nats-server with JetStream on a free loopback port; panics
    /// when it is not installed (saying what to install) or does not start.
    pub fn start() -> NatsServer {
        let program = require("nats-server", "nats-server");
        let dir = ScratchDir::new("nats").expect("a directory for nats-server");
        let port = free_port();
        let mut server = NatsServer {
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            program,
            log: dir.path().join("nats.log"),
            store: dir.path().join("jetstream"),
            _dir: dir,
        };
        server.resume();
        server
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    /// Stops the server (its JetStream store stays).
    pub fn pause(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop(&mut child);
        }
    }

    /// Starts it again on the same port and store.
    pub fn resume(&mut self) {
        if self.child.is_some() {
            return;
        }
        let mut child = Command::new(&self.program)
            .args(["-a", "127.0.0.1", "-p"])
            .arg(self.addr.port().to_string())
            .arg("-js")
            .arg("-sd")
            .arg(&self.store)
            .arg("-l")
            .arg(&self.log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        wait_for_listener(self.addr, &mut child, "nats-server", &self.log);
        self.child = Some(child);
    }

    /// Its log, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.pause();
    }
}
