//! `mastostream serve`: the test server as a process.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use mastostream_testkit::{Flavour, TestServer, replay};

use crate::cli::{Flavor, ServeArgs};

/// A duration from a command-line number of seconds.
pub fn seconds(value: f64, flag: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("--{flag} must be a positive number of seconds, not {value}"))
}

fn build(args: &ServeArgs) -> Result<mastostream_testkit::TestServerBuilder, String> {
    let mut builder = TestServer::builder()
        .addr(args.addr)
        .heartbeat(seconds(args.heartbeat_secs, "heartbeat-secs")?)
        .ping_interval(seconds(args.ping_secs, "ping-secs")?)
        .flavour(match args.flavor {
            Flavor::Mastodon => Flavour::Mastodon,
            Flavor::Pleroma => Flavour::Pleroma,
            Flavor::Akkoma => Flavour::Akkoma,
            Flavor::GoToSocial => Flavour::GoToSocial,
            Flavor::Iceshrimp => Flavour::Iceshrimp,
        });
    for token in &args.tokens {
        builder = builder.token(token);
    }
    if let Some(url) = &args.streaming_url {
        builder = builder.streaming_url(url);
    }
    if let Some(path) = &args.replay {
        if !(args.rate >= 0.0 && args.rate.is_finite()) {
            return Err(format!("--rate must be 0 or more, not {}", args.rate));
        }
        builder = builder.replay(replay::load(path)?, args.rate);
    }
    Ok(builder)
}

pub fn run(args: &ServeArgs) -> ExitCode {
    let builder = match build(args) {
        Ok(builder) => builder,
        Err(message) => {
            eprintln!("mastostream: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match crate::output::runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let server = match builder.start().await {
            Ok(server) => server,
            Err(error) => {
                eprintln!("mastostream: cannot listen on {}: {error}", args.addr);
                return ExitCode::FAILURE;
            }
        };
        let mut stdout = std::io::stdout();
        let _ = writeln!(stdout, "listening on {}", server.url());
        let _ = stdout.flush();
        wait_for_stop_signal().await;
        server.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// Ctrl-C, or SIGTERM on Unix.
async fn wait_for_stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
