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
    /// Firehose processes sharing the instances through a nats-server of
    /// the bench's own (`--coordinate`, each publishing to its JetStream
    /// with `--sink`); 1: one process writing lines.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
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

/// What both modes start from: the `mastostream` binary, a runtime holding
/// the simulated instances, and a directory with their list.
struct Setup {
    binary: std::path::PathBuf,
    runtime: tokio::runtime::Runtime,
    servers: Vec<TestServer>,
    dir: std::path::PathBuf,
    list: std::path::PathBuf,
}

fn setup(args: &FirehoseArgs, name: &str) -> Result<Setup, String> {
    measure::raise_fd_limit();
    let binary = measure::mastostream_binary()?;
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
    let dir = std::env::temp_dir().join(format!("mastostream-bench-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let list = dir.join("instances.txt");
    let mut text = String::new();
    for server in &servers {
        text.push_str(&format!("{} $FIREHOSE_BENCH_TOKEN\n", server.url()));
    }
    std::fs::write(&list, text).map_err(|e| e.to_string())?;
    Ok(Setup {
        binary,
        runtime,
        servers,
        dir,
        list,
    })
}

/// Publishes `args.rate` statuses a second for `args.seconds`, every 10 ms
/// a batch, round-robin over the instances, a share of them also on the
/// next instance; returns the statuses, the copies and the seconds taken.
fn publish(servers: &[TestServer], args: &FirehoseArgs) -> (u64, u64, f64) {
    let started = Instant::now();
    let total = (args.rate * args.seconds).round() as u64;
    let mut published = 0u64;
    let mut copies = 0u64;
    let mut shared_budget = 0.0;
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
        std::thread::sleep(Duration::from_millis(10));
    }
    (total, copies, started.elapsed().as_secs_f64())
}

pub fn run(args: &FirehoseArgs) -> Result<String, String> {
    if args.workers > 1 {
        return run_coordinated(args);
    }
    let Setup {
        binary,
        runtime,
        servers,
        dir,
        list,
    } = setup(args, "firehose")?;
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
    let (total, copies, publish_secs) = publish(&servers, args);
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

/// A worker's figures from its `--status` file.
#[derive(Debug, Default, Clone)]
struct WorkerFigures {
    streaming: u64,
    written: u64,
    published: u64,
    duplicates: u64,
}

fn read_figures(path: &std::path::Path) -> WorkerFigures {
    let Ok(text) = std::fs::read_to_string(path) else {
        return WorkerFigures::default();
    };
    let Ok(table) = serde_json::from_str::<serde_json::Value>(&text) else {
        return WorkerFigures::default();
    };
    let streaming = table["instances"].as_array().map_or(0, |all| {
        all.iter().filter(|i| i["state"] == "streaming").count() as u64
    });
    WorkerFigures {
        streaming,
        written: table["written"].as_u64().unwrap_or(0),
        published: table["nats"]["published"].as_u64().unwrap_or(0),
        duplicates: table["nats"]["duplicates"].as_u64().unwrap_or(0),
    }
}

/// The farthest a figure is from the mean of all, as a fraction of it.
fn spread(values: &[u64]) -> f64 {
    let mean = values.iter().sum::<u64>() as f64 / values.len().max(1) as f64;
    values
        .iter()
        .map(|v| (*v as f64 - mean).abs() / mean.max(1.0))
        .fold(0.0, f64::max)
}

/// `--workers N`: N coordinated firehose processes, each publishing to the
/// same JetStream; measures their CPU and memory, how evenly they share
/// instances and statuses, and that JetStream stored each status once.
fn run_coordinated(args: &FirehoseArgs) -> Result<String, String> {
    let nats = mastostream_testkit::nats::NatsServer::start();
    let Setup {
        binary,
        runtime: _runtime,
        servers,
        dir,
        list,
    } = setup(args, "coordinated")?;
    let mut children = Vec::new();
    let mut status_files = Vec::new();
    for worker in 0..args.workers {
        let status_file = dir.join(format!("worker{worker}.json"));
        let child = Command::new(&binary)
            .args(["firehose", "--summary-every", "1", "--instances"])
            .arg(&list)
            .args(["--coordinate", &nats.url(), "--sink", &nats.url()])
            .args(["--lease", "10", "--worker", &format!("worker{worker}")])
            .arg("--status")
            .arg(&status_file)
            .env("FIREHOSE_BENCH_TOKEN", TOKEN)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        children.push(child);
        status_files.push(status_file);
    }
    let stop = |children: &mut Vec<std::process::Child>| {
        for child in children.iter_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    };
    // Open: every instance streamed by one worker, and the split settled
    // (each worker at its share or one under).
    let share = args.instances.div_ceil(args.workers) as u64;
    let opening = Instant::now();
    let settled = loop {
        let figures: Vec<WorkerFigures> = status_files.iter().map(|f| read_figures(f)).collect();
        let streaming: u64 = figures.iter().map(|f| f.streaming).sum();
        if streaming == args.instances as u64 && figures.iter().all(|f| f.streaming + 1 >= share) {
            break true;
        }
        if opening.elapsed() > Duration::from_secs(300) {
            break false;
        }
        // The status files are rewritten every second.
        std::thread::sleep(Duration::from_millis(200));
    };
    let open_secs = opening.elapsed().as_secs_f64();
    if !settled {
        stop(&mut children);
        return Err("the workers did not settle on a split within 5 minutes".into());
    }
    let pids: Vec<u32> = children.iter().map(|c| c.id()).collect();
    let cpu_before: Vec<Duration> = pids.iter().map(|p| cpu_of(*p)).collect();
    let started = Instant::now();
    let (total, copies, publish_secs) = publish(&servers, args);
    // Until JetStream has stored every status (the files say so; at most 60 s).
    let deadline = Instant::now() + Duration::from_secs(60);
    let figures = loop {
        let figures: Vec<WorkerFigures> = status_files.iter().map(|f| read_figures(f)).collect();
        let stored: u64 = figures.iter().map(|f| f.published).sum();
        if stored >= total || Instant::now() > deadline {
            break figures;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let wall = started.elapsed().as_secs_f64();
    let cpu: Vec<f64> = pids
        .iter()
        .zip(&cpu_before)
        .map(|(pid, before)| cpu_of(*pid).saturating_sub(*before).as_secs_f64())
        .collect();
    let peaks: Vec<u64> = pids
        .iter()
        .map(|pid| measure::proc_status_kib(&pid.to_string(), "VmHWM"))
        .collect();
    stop(&mut children);
    drop(nats);
    let _ = std::fs::remove_dir_all(&dir);
    let stored: u64 = figures.iter().map(|f| f.published).sum();
    let dropped: u64 = figures.iter().map(|f| f.duplicates).sum();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} instances (test servers in the bench process), {} `mastostream firehose --coordinate --sink` \
         workers on one nats-server; {} statuses in {publish_secs:.1} s ({:.0}/s), {copies} copies \
         published ({:.0}% on two instances)\n",
        args.instances,
        args.workers,
        total,
        total as f64 / publish_secs,
        args.shared * 100.0
    );
    let _ = writeln!(
        out,
        "| worker | instances streamed | statuses passed to JetStream | CPU (cores) | peak RSS |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    for (i, f) in figures.iter().enumerate() {
        let _ = writeln!(
            out,
            "| worker{i} | {} | {} | {:.2} | {:.1} MiB |",
            f.streaming,
            f.written,
            cpu[i] / wall,
            peaks[i] as f64 / 1024.0
        );
    }
    let streamed: Vec<u64> = figures.iter().map(|f| f.streaming).collect();
    let written: Vec<u64> = figures.iter().map(|f| f.written).collect();
    let _ = writeln!(out);
    let _ = writeln!(out, "| what | figure |\n|---|---:|");
    let _ = writeln!(out, "| split settled after | {open_secs:.1} s |");
    let _ = writeln!(
        out,
        "| farthest from the mean: instances | {:.1}% |",
        spread(&streamed) * 100.0
    );
    let _ = writeln!(
        out,
        "| farthest from the mean: statuses | {:.1}% |",
        spread(&written) * 100.0
    );
    let _ = writeln!(out, "| statuses JetStream stored | {stored} of {total} |");
    let _ = writeln!(
        out,
        "| duplicates JetStream dropped (`Nats-Msg-Id`) | {dropped} |"
    );
    let _ = writeln!(
        out,
        "| CPU of all workers while publishing | {:.2} cores |",
        cpu.iter().sum::<f64>() / wall
    );
    if stored != total {
        return Err(format!("JetStream did not store every status once:\n{out}"));
    }
    if spread(&written) > 0.2 || spread(&streamed) > 0.2 {
        return Err(format!("the workers did not share within ±20%:\n{out}"));
    }
    Ok(out)
}
