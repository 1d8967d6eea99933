//! The harness, run small: every part must build, run and count every event.
//! (The numbers themselves are not checked here; they are too noisy for CI.)

use std::process::Command;

fn bench(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_mastostream-bench"))
        .args(args)
        .output()
        .expect("the harness starts");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn throughput_counts_every_event_for_every_client() {
    let table = bench(&["throughput", "--events", "300", "--repeat", "1"]);
    for row in [
        "mastostream SSE, multi-thread runtime",
        "mastostream WS, current-thread runtime",
        "limit: plain socket read",
        "limit: curl",
        "limit: bare serde_json typed parse",
        "mastostream decoder alone",
        "Mastodon.py (SSE)",
        "mastostream (Python, listener)",
        "mastostream (Python, listener, Mastodon.py entities)",
        "masto.js (WS)",
    ] {
        let line = table
            .lines()
            .find(|l| l.starts_with(&format!("| {row}")))
            .unwrap_or_else(|| panic!("no row {row:?} in\n{table}"));
        assert!(
            !line.contains("void") && !line.contains("not installed"),
            "{line}"
        );
    }
}

#[test]
fn latency_reports_percentiles_for_both_transports() {
    let table = bench(&[
        "latency", "--events", "300", "--warmup", "20", "--rate", "500",
    ]);
    for wire in ["| Sse |", "| Ws |"] {
        let line = table.lines().find(|l| l.starts_with(wire)).expect(wire);
        let p50: f64 = line.split('|').nth(2).unwrap().trim().parse().unwrap();
        assert!(p50 > 0.0, "{line}");
    }
}

#[test]
fn scale_opens_idle_and_active_streams() {
    let out = bench(&[
        "scale",
        "--idle",
        "40",
        "--idle-secs",
        "1",
        "--heartbeat-secs",
        "0.5",
        "--active",
        "10",
        "--events-per-stream",
        "100",
    ]);
    assert!(
        out.lines().filter(|l| l.starts_with("| Sse |")).count() == 2,
        "{out}"
    );
    assert!(
        out.lines().filter(|l| l.starts_with("| Ws |")).count() == 2,
        "{out}"
    );
}

/// The CI version of the hour-long soak: one minute of random faults while
/// publishing; every status exactly once and in order over SSE and over the
/// WebSocket, no growth of memory, open files or tasks after warm-up.
#[test]
fn soak_for_a_minute_under_faults_loses_nothing() {
    let report = bench(&["soak", "--secs", "60", "--sample-secs", "5"]);
    assert!(report.contains("SSE: 6"), "{report}");
    assert!(report.contains("WS: 6"), "{report}");
    assert!(!report.contains("FAILED"), "{report}");
}

#[test]
fn firehose_writes_every_status_once() {
    let report = bench(&[
        "firehose",
        "--instances",
        "20",
        "--rate",
        "200",
        "--seconds",
        "3",
    ]);
    assert!(
        report.contains("| distinct statuses written | 600 of 600 |"),
        "{report}"
    );
    assert!(report.contains("| duplicates written | 0 |"), "{report}");
}

#[test]
fn coordinated_firehose_workers_share_and_store_each_status_once() {
    let report = bench(&[
        "firehose",
        "--workers",
        "3",
        "--instances",
        "30",
        "--rate",
        "200",
        "--seconds",
        "3",
    ]);
    assert!(
        report.contains("| statuses JetStream stored | 600 of 600 |"),
        "{report}"
    );
    assert!(report.contains("| worker2 | 10 |"), "{report}");
}
