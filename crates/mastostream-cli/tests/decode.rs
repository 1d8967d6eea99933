//! `mastostream decode`, run as the real binary.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_mastostream");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures");

fn run(args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = Command::new(BIN)
        .arg("decode")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn json_lines(bytes: &[u8]) -> Vec<serde_json::Value> {
    std::str::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn fixtures_decode_to_expected_jsonl() {
    for folder in ["mastodon-4.6.5", "mastodon-recorded"] {
        for entry in std::fs::read_dir(format!("{FIXTURES}/{folder}")).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            if !(name.starts_with("sse-") && name.ends_with(".txt")) {
                continue;
            }
            let out = run(&[], &std::fs::read(&path).unwrap());
            assert!(out.status.success(), "{name}");
            let expected =
                std::fs::read(path.with_file_name(name.replace(".txt", ".expected.jsonl")))
                    .unwrap();
            assert_eq!(json_lines(&out.stdout), json_lines(&expected), "{name}");
            assert!(out.stderr.is_empty(), "{name}");
        }
    }
}

#[test]
fn output_lines_have_the_exact_shape() {
    let out = run(
        &[],
        b":)\nevent: delete\ndata: 42\n\nevent: filters_changed\ndata: undefined\n\n",
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\"event\":\"delete\",\"payload\":\"42\"}\n{\"event\":\"filters_changed\",\"payload\":null}\n"
    );
}

#[test]
fn heartbeats_on_request() {
    let out = run(&["--heartbeats"], b":)\n:thump\n\n");
    assert_eq!(json_lines(&out.stdout).len(), 2);
    let out = run(&[], b":)\n:thump\n\n");
    assert!(out.stdout.is_empty());
}

#[test]
fn malformed_event_is_reported_and_skipped() {
    let input = b"event: update\ndata: {\"id\":\"1\"}\n\nevent: delete\ndata: 5\n\n";
    let out = run(&[], input);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json_lines(&out.stdout).len(), 1);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("\"update\"") && stderr.contains("missing field"),
        "{stderr}"
    );

    let out = run(&["--strict"], input);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
}

#[test]
fn invalid_utf8_is_reported_and_skipped() {
    let out = run(
        &[],
        b"event: update\ndata: \xff\n\nevent: delete\ndata: 5\n\n",
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        json_lines(&out.stdout),
        [serde_json::json!({"event":"delete","payload":"5"})]
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("UTF-8"));
}

#[test]
fn prints_each_event_before_input_ends() {
    let mut child = Command::new(BIN)
        .arg("decode")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    for id in 1..=3 {
        stdin
            .write_all(format!("event: delete\ndata: {id}\n\n").as_bytes())
            .unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        // Blocks until the binary prints the event; stdin stays open.
        stdout.read_line(&mut line).unwrap();
        assert_eq!(
            line,
            format!("{{\"event\":\"delete\",\"payload\":\"{id}\"}}\n")
        );
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn usage_error_exits_2() {
    let out = Command::new(BIN)
        .arg("decode")
        .arg("--nope")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn closed_pipe_exits_quietly() {
    let mut child = Command::new(BIN)
        .arg("decode")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stdin = child.stdin.take().unwrap();
    // Enough events to hit the closed pipe; the write may fail once the child exits.
    let _ = stdin.write_all(&b"event: delete\ndata: 1\n\n".repeat(100_000));
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
