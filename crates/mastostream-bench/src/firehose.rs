//! `mastostream-bench firehose`: the `mastostream firehose` command
//! following many simulated instances (test servers in this process, one
//! port each) while statuses are published to them at a steady aggregate
//! rate, a share of them on two instances at once. It measures what the
//! firehose process costs (CPU, peak memory) and checks it wrote every
//! status exactly once.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mastostream::Channel;
use mastostream_testkit::{Publish, TestServer};

use crate::measure;

#[derive(Debug, clap::Args)]
pub struct FirehoseArgs {
    /// Simulated instances.
    #[arg(long, default_value_t = 1000)]
    pub instances: usize,
    /// Statuses a second, over all instances.
    #[arg(long, default_value_t = 2000.0)]
    pub rate: f64,
    /// The share of statuses published on two instances (federated).
    #[arg(long, default_value_t = 0.1)]
    pub shared: f64,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 30.0)]
    pub seconds: f64,
}

const TOKEN: &str = "bench-token";

fn status(n: u64) -> serde_json::Value {
    serde_json::json!({
        "id": (109_000_000_000_000_000u64 + n).to_string(),
        "uri": format!("https://origin.example/statuses/{n}"),
        "created_at": "2026-12-01T12:00:00.000Z",
        "content": "<p>a status of a simulated instance</p>",
        "visibility": "public",
        "account": {"id": "1", "username": "alice", "acct": "alice"}
    })
}

/// CPU time (user + system) of a process so far.
fn cpu_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name in parentheses: fields 14 and 15 (1-based) of
    // the whole line are utime and stime, in clock ticks.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // SAFETY: sysconf reads a constant of the system.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis((ticks(11) + ticks(12)) * 1000 / per_second)
}

pub fn run(args: &FirehoseArgs) -> Result<String, String> {
    measure::raise_fd_limit();
    let binary = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .with_file_name("mastostream");
    if !binary.is_file() {
        return Err(format!(
            "{} is missing: build it first (cargo build --release -p mastostream-cli)",
            binary.display()
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let servers: Vec<TestServer> = runtime.block_on(async {
        let mut servers = Vec::with_capacity(args.instances);
        for _ in 0..args.instances {
            servers.push(
                TestServer::builder()
                    .token(TOKEN)
                    .start()
                    .await
                    .map_err(|e| e.to_string())?,
            );
        }
        Ok::<_, String>(servers)
    })?;
    let dir =
        std::env::temp_dir().join(format!("mastostream-bench-firehose-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let list = dir.join("instances.txt");
    let mut text = String::new();
    for server in &servers {
        text.push_str(&format!("{} $FIREHOSE_BENCH_TOKEN\n", server.url()));
    }
    std::fs::write(&list, text).map_err(|e| e.to_string())?;
    let mut child = Command::new(&binary)
        .args(["firehose", "--summary-every", "0", "--instances"])
        .arg(&list)
        .env("FIREHOSE_BENCH_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let pid = child.id();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    // Every line's uri, as the firehose writes them.
    let written: Arc<Mutex<(u64, HashSet<String>)>> = Arc::default();
    let reader = std::thread::spawn({
        let written = written.clone();
        move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let uri = serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .and_then(|v| v["status"]["uri"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                let mut written = written.lock().unwrap_or_else(|e| e.into_inner());
                written.0 += 1;
                written.1.insert(uri);
            }
        }
    });
    let opening = Instant::now();
    let opened = runtime.block_on(async {
        for server in &servers {
            if !server
                .wait_for_subscriptions(1, Duration::from_secs(300))
                .await
            {
                return false;
            }
        }
        true
    });
    let open_secs = opening.elapsed().as_secs_f64();
    if !opened {
        let _ = child.kill();
        return Err("not every instance's stream opened within 5 minutes".into());
    }
    let rss_open = measure::proc_status_kib(&pid.to_string(), "VmRSS");
    // Publish: every 10 ms a batch, round-robin over the instances; a share
    // of the statuses also on the next instance.
    let cpu_before = cpu_of(pid);
    let started = Instant::now();
    let total = (args.rate * args.seconds).round() as u64;
    let mut published = 0u64;
    let mut copies = 0u64;
    let mut shared_budget = 0.0;
    let tick = Duration::from_millis(10);
    while published < total {
        let due = ((started.elapsed().as_secs_f64() * args.rate) as u64).min(total);
        while published < due {
            let server = (published as usize) % servers.len();
            let event = Publish::new("update", status(published)).to(Channel::PublicLocal);
            servers[server].publish(event.clone());
            copies += 1;
            shared_budget += args.shared;
            if shared_budget >= 1.0 {
                shared_budget -= 1.0;
                servers[(server + 1) % servers.len()].publish(event);
                copies += 1;
            }
            published += 1;
        }
        std::thread::sleep(tick);
    }
    let publish_secs = started.elapsed().as_secs_f64();
    // Wait (up to 30 s) for the last statuses to come out.
    let deadline = Instant::now() + Duration::from_secs(30);
    while written.lock().unwrap_or_else(|e| e.into_inner()).1.len() < total as usize
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_of(pid).saturating_sub(cpu_before).as_secs_f64();
    let peak = measure::proc_status_kib(&pid.to_string(), "VmHWM");
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    let _ = std::fs::remove_dir_all(&dir);
    let (lines, uris) = {
        let written = written.lock().unwrap_or_else(|e| e.into_inner());
        (written.0, written.1.len() as u64)
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} instances (test servers in the bench process), `mastostream firehose` as a child; \
         {} statuses in {publish_secs:.1} s ({:.0}/s), {copies} copies published ({:.0}% on two instances)\n",
        args.instances,
        total,
        total as f64 / publish_secs,
        args.shared * 100.0
    );
    let _ = writeln!(out, "| what | figure |\n|---|---:|");
    let _ = writeln!(out, "| streams open after | {open_secs:.1} s |");
    let _ = writeln!(out, "| lines written | {lines} |");
    let _ = writeln!(out, "| distinct statuses written | {uris} of {total} |");
    let _ = writeln!(out, "| duplicates written | {} |", lines - uris);
    let _ = writeln!(
        out,
        "| CPU while publishing | {cpu:.2} s over {wall:.1} s = {:.2} cores |",
        cpu / wall
    );
    let _ = writeln!(
        out,
        "| µs CPU per status copy | {:.1} |",
        cpu * 1e6 / copies.max(1) as f64
    );
    let _ = writeln!(
        out,
        "| RSS with every stream open | {:.1} MiB |",
        rss_open as f64 / 1024.0
    );
    let _ = writeln!(out, "| peak RSS | {:.1} MiB |", peak as f64 / 1024.0);
    if uris != total || lines != uris {
        return Err(format!("the feed was not exactly once:\n{out}"));
    }
    Ok(out)
}
