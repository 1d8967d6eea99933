//! The peers in other languages: installed from PyPI and npm by the harness,
//! into `target/bench-peers` and `bench/peers/node_modules`, then run as
//! child processes with the same arguments as our own clients.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::clients::Target;

/// Where the peers' scripts and pinned requirements live.
pub fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/peers")
}

fn run_quietly(command: &mut Command) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|e| format!("cannot start {:?}: {e}", command.get_program()))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
    Err(format!(
        "{:?} failed: {}",
        command.get_program(),
        tail.join(" | ")
    ))
}

/// A venv with the pinned Mastodon.py; returns its python. Reinstalls when
/// the requirements change.
pub fn python_env() -> Result<PathBuf, String> {
    let peers = peers_dir();
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-peers/venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        run_quietly(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    let requirements = std::fs::read_to_string(peers.join("requirements.txt"))
        .map_err(|e| format!("bench/peers/requirements.txt: {e}"))?;
    let marker = venv.join("installed-requirements.txt");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(requirements.as_str()) {
        run_quietly(
            Command::new(&python)
                .args(["-m", "pip", "install", "--quiet", "-r"])
                .arg(peers.join("requirements.txt")),
        )?;
        std::fs::write(&marker, &requirements).map_err(|e| e.to_string())?;
    }
    Ok(python)
}

/// The npm packages of `package-lock.json`, installed once.
pub fn node_env() -> Result<(), String> {
    let peers = peers_dir();
    let installed = ["masto", "megalodon", "ws"]
        .iter()
        .all(|name| peers.join("node_modules").join(name).exists());
    if installed {
        return Ok(());
    }
    run_quietly(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--silent"])
            .current_dir(&peers),
    )
}

/// A peer client, ready to run against a server.
#[derive(Debug, Clone)]
pub struct Peer {
    /// What the table calls it.
    pub label: &'static str,
    /// The program.
    pub program: PathBuf,
    /// The script it runs.
    pub script: PathBuf,
}

impl Peer {
    /// The command counting the target's events, with our clients' arguments.
    pub fn command(&self, target: &Target) -> Command {
        let mut command = Command::new(&self.program);
        command.arg(&self.script).args(target.args());
        command
    }
}

/// Every peer that could be installed, and why the others could not.
pub fn available() -> (Vec<Peer>, Vec<(&'static str, String)>) {
    let peers = peers_dir();
    let mut ready = Vec::new();
    let mut missing = Vec::new();
    match python_env() {
        Ok(python) => ready.push(Peer {
            label: "Mastodon.py (SSE)",
            program: python,
            script: peers.join("mastodon_py_count.py"),
        }),
        Err(reason) => missing.push(("Mastodon.py (SSE)", reason)),
    }
    match node_env() {
        Ok(()) => {
            for (label, script) in [
                ("masto.js (WS)", "masto_count.mjs"),
                ("megalodon (WS)", "megalodon_count.mjs"),
            ] {
                if peers.join(script).exists() {
                    ready.push(Peer {
                        label,
                        program: PathBuf::from("node"),
                        script: peers.join(script),
                    });
                }
            }
        }
        Err(reason) => missing.push(("masto.js (WS)", reason)),
    }
    (ready, missing)
}
