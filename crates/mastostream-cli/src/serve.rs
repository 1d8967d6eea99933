//! `mastostream serve`: the test server as a process.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use mastostream_testkit::{Flavour, LOOPBACK_NAMES, TestServer, TlsIdentity, replay};

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
            Flavor::Mastodon41 => Flavour::Mastodon41,
            Flavor::GlitchSoc => Flavour::GlitchSoc,
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
    if let Some(identity) = identity(args)? {
        builder = builder.tls(identity);
    }
    Ok(builder)
}

/// The certificate `--tls` makes or `--tls-cert` / `--tls-key` name.
fn identity(args: &ServeArgs) -> Result<Option<TlsIdentity>, String> {
    if let (Some(certificate), Some(key)) = (&args.tls_cert, &args.tls_key) {
        return TlsIdentity::from_pem_files(certificate, key)
            .map(Some)
            .map_err(|e| e.to_string());
    }
    if !args.tls {
        return Ok(None);
    }
    let ip = args.addr.ip();
    let own = ip.to_string();
    let mut names: Vec<&str> = LOOPBACK_NAMES.to_vec();
    if !ip.is_loopback() && !ip.is_unspecified() {
        names.push(&own);
    }
    TlsIdentity::self_signed(&names)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Writes the made CA certificate to a file of its own under the temporary
/// directory; its path.
fn write_ca(pem: &str) -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("mastostream-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("ca.pem");
    std::fs::write(&path, pem)?;
    Ok(path)
}

pub fn run(args: &ServeArgs) -> ExitCode {
    let builder = match build(args) {
        Ok(builder) => builder,
        Err(message) => {
            note!("mastostream: {message}");
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
                note!("mastostream: cannot serve on {}: {error}", args.addr);
                return ExitCode::FAILURE;
            }
        };
        let ca_file = match server.ca_pem().map(write_ca).transpose() {
            Ok(path) => path,
            Err(error) => {
                note!("mastostream: cannot write the CA certificate: {error}");
                server.shutdown().await;
                return ExitCode::FAILURE;
            }
        };
        // The handlers are in place before the first line says the server
        // is up: a SIGTERM sent right after reading it must not find the
        // default action (death by signal) still there.
        let stop = StopSignals::install();
        let mut stdout = std::io::stdout();
        let _ = match &ca_file {
            Some(path) => writeln!(
                stdout,
                "listening on {}; CA certificate: {}",
                server.url(),
                path.display()
            ),
            None => writeln!(stdout, "listening on {}", server.url()),
        };
        let _ = stdout.flush();
        stop.wait().await;
        server.shutdown().await;
        if let Some(path) = ca_file {
            let _ = std::fs::remove_file(&path);
            if let Some(dir) = path.parent() {
                let _ = std::fs::remove_dir(dir);
            }
        }
        ExitCode::SUCCESS
    })
}

/// Ctrl-C, or SIGTERM on Unix, listened for from the moment it is made.
struct StopSignals {
    #[cfg(unix)]
    unix: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl StopSignals {
    fn install() -> StopSignals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let unix = signal(SignalKind::interrupt())
                .and_then(|interrupt| Ok((interrupt, signal(SignalKind::terminate())?)))
                .ok();
            StopSignals { unix }
        }
        #[cfg(not(unix))]
        StopSignals {}
    }

    async fn wait(self) {
        #[cfg(unix)]
        if let Some((mut interrupt, mut term)) = self.unix {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
