//! `mastostream firehose`: many instances' local posts as one feed.

use std::process::ExitCode;
use std::time::Duration;

use mastostream_firehose::{Config, Instance, health_for, parse_list};

use crate::cli::FirehoseArgs;
use crate::stream::EXIT_USAGE;

fn usage(message: impl std::fmt::Display) -> ExitCode {
    note!("mastostream: {message}");
    ExitCode::from(EXIT_USAGE)
}

fn seconds(value: f64, name: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value).map_err(|_| format!("--{name} must be 0 or more seconds"))
}

/// The instances named on the command line and in `--instances`.
fn instances(args: &FirehoseArgs) -> Result<Vec<Instance>, String> {
    let mut instances = Vec::new();
    for host in &args.hosts {
        instances.push(Instance::parse(host)?);
    }
    if let Some(path) = &args.instances {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let listed = parse_list(
            &text,
            |name| std::env::var(name).ok(),
            |file| std::fs::read_to_string(file).map_err(|e| e.to_string()),
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
        instances.extend(listed);
    }
    // An instance named twice is followed once.
    let mut seen = std::collections::HashSet::new();
    instances.retain(|i| seen.insert(i.host.clone()));
    if instances.is_empty() {
        return Err("no instances: name hosts, or a file with --instances".into());
    }
    Ok(instances)
}

pub fn run(args: &FirehoseArgs) -> ExitCode {
    let instances = match instances(args) {
        Ok(instances) => instances,
        Err(message) => return usage(message),
    };
    let mut config = Config::new(instances);
    config.contact = args.contact.clone();
    config.include_noindex = args.include_noindex;
    config.dedup_window = args.dedup_window;
    config.poll_interval = match seconds(args.poll_interval, "poll-interval") {
        Ok(interval) => interval,
        Err(message) => return usage(message),
    };
    config.summary_every = match seconds(args.summary_every, "summary-every") {
        Ok(every) if every.is_zero() => None,
        Ok(every) => Some(every),
        Err(message) => return usage(message),
    };
    config.status_file = args.status.clone();
    if let Some(url) = &args.sink {
        if !url.starts_with("nats://") {
            return usage(format!(
                "--sink takes a nats:// URL, not {}://… (the URL is not repeated: it may hold a password)",
                url.split("://").next().unwrap_or_default()
            ));
        }
        let mut sink = mastostream_firehose::SinkConfig::new(url.clone());
        sink.stream = args.sink_stream.clone();
        sink.subject_prefix = args.sink_subject.clone();
        sink.buffer = args.sink_buffer;
        config.sink = Some(sink);
    }
    if let Some(url) = &args.coordinate {
        if !url.starts_with("nats://") {
            return usage(format!(
                "--coordinate takes a nats:// URL, not {}://… (the URL is not repeated: it may hold a password)",
                url.split("://").next().unwrap_or_default()
            ));
        }
        let mut coordinate = mastostream_firehose::CoordinateConfig::new(url.clone());
        coordinate.bucket = args.coordinate_bucket.clone();
        coordinate.lease = match seconds(args.lease, "lease") {
            Ok(lease) if lease >= Duration::from_secs(1) => lease,
            Ok(_) => return usage("--lease must be at least 1 second"),
            Err(message) => return usage(message),
        };
        if let Some(worker) = &args.worker {
            coordinate.worker = worker.clone();
        }
        config.coordinate = Some(coordinate);
    }
    config.limit = (args.limit > 0).then_some(args.limit);
    let runtime = match crate::output::runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let health = health_for(&config);
    let result = runtime.block_on(async {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let mut summary = std::io::stderr();
        // Ctrl-C or SIGTERM end the feed as its limit does: a sink's queue
        // is published, the last summary and status file written.
        // (Dropping the run lost them.)
        let stopped = crate::stop::requested();
        mastostream_firehose::run_until(config, health, &mut out, &mut summary, stopped).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => crate::output::exit_code_for_write_error(&error),
    }
}
