//! The Python package's pytest suite (crates/mastostream-py/tests), run from
//! `cargo test` so that the README's one test command covers it.
//!
//! `crates/mastostream-py/dev/venv.py` makes `target/py-venv-dev` with the
//! pinned requirements from PyPI (maturin, pytest, Mastodon.py 2.3.3),
//! builds the wheel with maturin in the dev profile (reusing this build's
//! compiled dependencies) and installs it; pytest then runs against
//! `mastostream serve` from this package's binary.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_python_package_passes_its_pytest_suite() {
    let root = workspace();
    let crate_dir = root.join("crates/mastostream-py");
    // The venv the benchmark harness uses too in a debug build.
    let venv = root.join("target/py-venv-dev");
    let made = Command::new("python3")
        .arg(crate_dir.join("dev/venv.py"))
        .arg("--venv")
        .arg(&venv)
        .arg("--requirements")
        .arg(crate_dir.join("tests/requirements.txt"))
        .args(["--profile", "dev"])
        // Not this test's package: maturin's cargo reads its own.
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("CARGO_PKG_NAME")
        .env_remove("CARGO_CRATE_NAME")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run python3 ({e}): install Python 3.9+ with venv (apt-get install python3 python3-venv)")
        });
    assert!(
        made.status.success(),
        "making the venv and the wheel failed (needs python3 with venv and PyPI):\n{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let stdout = String::from_utf8_lossy(&made.stdout);
    let python = stdout
        .lines()
        .last()
        .expect("venv.py prints the venv's python")
        .to_owned();

    let output = Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(crate_dir.join("tests"))
        .env("MASTOSTREAM_BIN", env!("CARGO_BIN_EXE_mastostream"))
        .current_dir(&root)
        .output()
        .expect("run pytest");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "pytest failed:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The suite ran, and ran every test: a summary like "23 passed in 9.1s".
    let summary = report.lines().last().unwrap_or_default();
    assert!(
        summary.contains(" passed")
            && !summary.contains("skipped")
            && !summary.contains("deselected"),
        "unexpected pytest summary: {summary}"
    );
    eprintln!("pytest: {summary}");
}
