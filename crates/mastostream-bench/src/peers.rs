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

/// A venv with the mastostream Python package (built by maturin in this
/// binary's profile, so a release benchmark measures a release wheel) and
/// Mastodon.py; returns its python. `crates/mastostream-py/dev/venv.py`
/// does the work, as for the Python tests.
pub fn mastostream_python_env() -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let crate_dir = root.join("crates/mastostream-py");
    let profile = if cfg!(debug_assertions) {
        "dev"
    } else {
        "release"
    };
    let output = Command::new("python3")
        .arg(crate_dir.join("dev/venv.py"))
        .arg("--venv")
        .arg(root.join(format!("target/py-venv-{profile}")))
        .arg("--requirements")
        .arg(crate_dir.join("tests/requirements.txt"))
        .args(["--profile", profile])
        .env_remove("CARGO_MANIFEST_DIR")
        .output()
        .map_err(|e| format!("cannot start python3: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
        return Err(format!("dev/venv.py failed: {}", tail.join(" | ")));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .map(PathBuf::from)
        .ok_or_else(|| "dev/venv.py printed no python".to_owned())
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
    /// Arguments before our clients' ones.
    pub args: &'static [&'static str],
}

impl Peer {
    /// The command counting the target's events, with our clients' arguments.
    pub fn command(&self, target: &Target) -> Command {
        let mut command = Command::new(&self.program);
        command
            .arg(&self.script)
            .args(self.args)
            .args(target.args());
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
            args: &[],
        }),
        Err(reason) => missing.push(("Mastodon.py (SSE)", reason)),
    }
    // The same script and listener (Mastodon.py's StreamListener, its
    // entities), the engine swapped in by `mastostream.use_engine`.
    // Payloads as the package gives them by default without Mastodon.py
    // (attribute dicts), and cast into Mastodon.py's classes as the drop-in
    // does when it is installed.
    match mastostream_python_env() {
        Ok(python) => {
            ready.push(Peer {
                label: "mastostream (Python, listener)",
                program: python.clone(),
                script: peers.join("mastodon_py_count.py"),
                args: &["--engine", "mastostream-plain"],
            });
            ready.push(Peer {
                label: "mastostream (Python, listener, Mastodon.py entities)",
                program: python,
                script: peers.join("mastodon_py_count.py"),
                args: &["--engine", "mastostream"],
            });
        }
        Err(reason) => missing.push(("mastostream (Python, listener)", reason)),
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
                        args: &[],
                    });
                }
            }
        }
        Err(reason) => missing.push(("masto.js (WS)", reason)),
    }
    (ready, missing)
}
