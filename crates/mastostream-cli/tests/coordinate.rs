//! `mastostream firehose --coordinate`: three workers share six instances
//! through JetStream key-value buckets on Debian's nats-server (started
//! here on a loopback port of its own); one is killed with SIGKILL, its
//! instances are streamed again by the others within the lease and a
//! reconnect, and the JetStream stream holds every status published
//! (before, during and after the kill) exactly once, the statuses of an
//! instance that had been quiet until the kill included.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::mastostream;
use futures_util::StreamExt;
use mastostream_testkit::nats::NatsServer;
use mastostream_testkit::{BlockingTestServer, Publish, TestServer};

const INSTANCES: usize = 6;
const WORKERS: usize = 3;
const LEASE: Duration = Duration::from_secs(3);
const PATIENCE: Duration = Duration::from_secs(30);

/// A local public status whose content names it (the server gives it an
/// id, and a URI that ends with the id).
fn status(instance: usize, n: usize) -> serde_json::Value {
    let mut status = common::status_without_id();
    status["uri"] = format!("https://instance{instance}.example/statuses/0").into();
    status["content"] = marker(instance, n).into();
    status["account"]["acct"] = "alice".into();
    status["visibility"] = "public".into();
    status
}

fn marker(instance: usize, n: usize) -> String {
    format!("<p>status {n} of instance {instance}</p>")
}

struct Worker {
    name: String,
    child: Child,
    status_file: PathBuf,
    log: PathBuf,
}

impl Worker {
    fn start(dir: &Path, list: &Path, nats: &NatsServer, index: usize) -> Worker {
        let name = format!("worker{index}");
        let status_file = dir.join(format!("{name}.json"));
        let log = dir.join(format!("{name}.log"));
        let child = mastostream(&[
            "firehose",
            "--instances",
            list.to_str().unwrap(),
            "--coordinate",
            &nats.url(),
            "--lease",
            &LEASE.as_secs_f64().to_string(),
            "--worker",
            &name,
            "--sink",
            &nats.url(),
            "--summary-every",
            "0.2",
            "--status",
            status_file.to_str().unwrap(),
        ])
        .env("FIREHOSE_TOKEN", "t")
        .env("RUST_LOG", "mastostream_firehose=info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
        Worker {
            name,
            child,
            status_file,
            log,
        }
    }

    /// The instances its status file says it streams.
    fn streaming(&self) -> HashSet<String> {
        let Ok(text) = std::fs::read_to_string(&self.status_file) else {
            return HashSet::new();
        };
        let Ok(table) = serde_json::from_str::<serde_json::Value>(&text) else {
            return HashSet::new();
        };
        table["instances"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["state"] == "streaming")
            .filter_map(|i| i["instance"].as_str().map(str::to_owned))
            .collect()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Worker {
    /// A failing test leaves no worker behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Which worker streams which instance, from their status files.
fn holders(workers: &[Worker]) -> HashMap<String, Vec<String>> {
    let mut holders: HashMap<String, Vec<String>> = HashMap::new();
    for worker in workers {
        for host in worker.streaming() {
            holders.entry(host).or_default().push(worker.name.clone());
        }
    }
    holders
}

/// Polls the workers' status files (written every 0.2 s) until `done`
/// holds; panics with the logs after [`PATIENCE`].
fn wait_for(workers: &[Worker], what: &str, done: impl Fn(&HashMap<String, Vec<String>>) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let now = holders(workers);
        if done(&now) {
            return;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = workers.iter().map(Worker::log).collect();
            panic!("{what}: never; holders {now:?}\n{}", logs.join("\n---\n"));
        }
        // The files are rewritten every 0.2 s: there is no signal to wait on.
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every status the JetStream stream holds (by its content), with how often.
fn stored(nats: &NatsServer) -> HashMap<String, usize> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(nats.url()).await.unwrap();
        let jetstream = async_nats::jetstream::new(client);
        let stream = jetstream.get_stream("MASTOSTREAM").await.unwrap();
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::Config::default())
            .await
            .unwrap();
        let count = stream.get_info().await.unwrap().state.messages as usize;
        let mut uris: HashMap<String, usize> = HashMap::new();
        if count == 0 {
            return uris;
        }
        let mut messages = consumer
            .fetch()
            .max_messages(count)
            .messages()
            .await
            .unwrap();
        while let Some(message) = messages.next().await {
            let message = message.unwrap();
            let status: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
            *uris
                .entry(status["content"].as_str().unwrap_or_default().to_owned())
                .or_default() += 1;
        }
        uris
    })
}

/// How many instances have a position recorded in the bucket.
fn positions_recorded(nats: &NatsServer) -> usize {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(nats.url()).await.unwrap();
        let jetstream = async_nats::jetstream::new(client);
        let Ok(store) = jetstream
            .get_key_value("mastostream-firehose-positions")
            .await
        else {
            return 0;
        };
        match store.keys().await {
            Ok(keys) => keys.filter(|k| std::future::ready(k.is_ok())).count().await,
            Err(_) => 0,
        }
    })
}

/// Waits until the stream holds every one of `published`.
fn wait_stored(
    nats: &NatsServer,
    published: &HashSet<String>,
    workers: &[Worker],
) -> HashMap<String, usize> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let uris = stored(nats);
        if published.iter().all(|uri| uris.contains_key(uri)) {
            return uris;
        }
        if Instant::now() > deadline {
            let missing: Vec<&String> = published
                .iter()
                .filter(|u| !uris.contains_key(*u))
                .collect();
            let logs: Vec<String> = workers.iter().map(Worker::log).collect();
            panic!("never stored: {missing:?}\n{}", logs.join("\n---\n"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn publish_round(servers: &[BlockingTestServer], round: usize, published: &mut HashSet<String>) {
    for (i, server) in servers.iter().enumerate() {
        let status = status(i, round);
        published.insert(marker(i, round));
        server.publish(Publish::new("update", status));
    }
}

#[test]
fn three_workers_share_the_instances_and_survive_a_killed_one() {
    let nats = NatsServer::start();
    let servers: Vec<BlockingTestServer> = (0..INSTANCES)
        .map(|_| TestServer::builder().start_blocking().unwrap())
        .collect();
    let dir = std::env::temp_dir().join(format!("mastostream-coordinate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let list = dir.join("instances.txt");
    let lines: Vec<String> = servers
        .iter()
        .map(|s| format!("{} $FIREHOSE_TOKEN", s.url()))
        .collect();
    std::fs::write(&list, lines.join("\n")).unwrap();

    let mut workers: Vec<Worker> = (0..WORKERS)
        .map(|i| Worker::start(&dir, &list, &nats, i))
        .collect();
    // Each instance streamed by one worker, each worker streaming its
    // share (two).
    wait_for(&workers, "an even share, each instance once", |holders| {
        holders.len() == INSTANCES
            && holders.values().all(|h| h.len() == 1)
            && workers
                .iter()
                .all(|w| holders.values().filter(|h| h[0] == w.name).count() == 2)
    });
    for server in &servers {
        assert!(server.wait_for_subscriptions(1, PATIENCE));
    }

    // The worker to be killed, and one of its instances that stays quiet
    // until then: it has delivered nothing when its lease moves.
    let orphans: Vec<String> = workers[0].streaming().into_iter().collect();
    let quiet = servers
        .iter()
        .position(|s| s.url().ends_with(orphans[0].as_str()))
        .unwrap_or_else(|| panic!("no server for {orphans:?}"));
    let mut published = HashSet::new();
    for round in 0..3 {
        for (i, server) in servers.iter().enumerate().filter(|(i, _)| *i != quiet) {
            published.insert(marker(i, round));
            server.publish(Publish::new("update", status(i, round)));
        }
    }
    wait_stored(&nats, &published, &workers);
    // …and the workers have recorded where each instance got to (every
    // third of the lease), the quiet one too (where its timeline stood
    // when it was taken): what the new owner of a killed worker's
    // instances resumes after.
    let deadline = Instant::now() + PATIENCE;
    while positions_recorded(&nats) < INSTANCES {
        assert!(
            Instant::now() < deadline,
            "positions recorded for {} of {INSTANCES} instances",
            positions_recorded(&nats)
        );
        // The workers write them on their own tick: nothing to wait on.
        std::thread::sleep(Duration::from_millis(100));
    }

    // Kill the first worker.
    let victim = workers.remove(0);
    let mut victim = victim;
    victim.child.kill().unwrap();
    victim.child.wait().unwrap();
    let killed = Instant::now();
    // Statuses keep coming while the orphans have no owner.
    for round in 3..6 {
        publish_round(&servers, round, &mut published);
    }
    wait_for(&workers, "every instance streamed again", |holders| {
        holders.len() == INSTANCES && holders.values().all(|h| h.len() == 1)
    });
    let handover = killed.elapsed();
    eprintln!(
        "the killed worker's {} instances streamed again after {:.2} s (lease {} s)",
        orphans.len(),
        handover.as_secs_f64(),
        LEASE.as_secs()
    );
    // The lease, a renewal tick, and a reconnect with its catch-up.
    assert!(handover < LEASE * 3, "{handover:?}");
    for round in 6..8 {
        publish_round(&servers, round, &mut published);
    }
    let uris = wait_stored(&nats, &published, &workers);
    let twice: Vec<(&String, &usize)> = uris.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
    let strangers: Vec<&String> = uris.keys().filter(|u| !published.contains(*u)).collect();
    assert!(
        strangers.is_empty(),
        "stored but never published: {strangers:?}"
    );
    assert_eq!(uris.len(), published.len());
    drop(workers);
    let _ = std::fs::remove_dir_all(&dir);
}
