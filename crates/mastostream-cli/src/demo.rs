//! `mastostream demo`: the test server and the client in one process.

use std::process::ExitCode;
use std::time::Instant;

use mastostream::{Client, ReconnectPolicy};
use mastostream_proto::Channel;
use mastostream_proto::liveness::DEFAULT_STALL_TIMEOUT;
use mastostream_testkit::{TestServer, replay};

use crate::cli::{DemoArgs, Format};
use crate::screen::{StatusLine, columns, wrap};
use crate::status::{rounded_duration, thousands};
use crate::stream::{Output, silent_after, stream_to_stdout};

pub fn run(args: &DemoArgs) -> ExitCode {
    if !(args.rate > 0.0 && args.rate.is_finite()) {
        note!("mastostream: --rate must be more than 0");
        return ExitCode::from(crate::stream::EXIT_USAGE);
    }
    let runtime = match crate::output::runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let server = match TestServer::builder()
            .replay(replay::bundled(), args.rate)
            .start()
            .await
        {
            Ok(server) => server,
            Err(error) => {
                note!("mastostream: cannot start the test server: {error}");
                return ExitCode::FAILURE;
            }
        };
        // Someone who typed `demo` wants to know what they are looking at,
        // how to get out, and what to type next.
        let stop = match args.limit {
            0 => "Press Ctrl-C to stop.".to_owned(),
            n => format!(
                "It stops after {} events; Ctrl-C stops it sooner.",
                thousands(n)
            ),
        };
        let intro = format!(
            "mastostream demo: a built-in test server replays {} recorded Mastodon \
             events at {}/s, and this streams its public timeline (times in UTC). \
             {stop} To watch a real server (with an access token from its \
             Preferences > Development):\n    \
             MASTODON_TOKEN=... mastostream stream --server https://mastodon.social public:local\n",
            thousands(replay::bundled().len() as u64),
            args.rate,
        );
        note!("{}", wrap(&intro, columns(&std::io::stderr())));
        let client = match Client::builder(server.url())
            .token("demo")
            .reconnect(ReconnectPolicy::default())
            .build()
        {
            Ok(client) => client,
            Err(error) => {
                note!("mastostream: {error}");
                return ExitCode::FAILURE;
            }
        };
        let output = Output {
            format: Format::Pretty,
            limit: (args.limit > 0).then_some(args.limit),
            style: Output::pretty_style(args.links),
            status_line: StatusLine::detect(args.quiet),
            silent_after: silent_after(Some(DEFAULT_STALL_TIMEOUT)),
        };
        let started = Instant::now();
        let finished = stream_to_stdout(&client, vec![Channel::Public], &output).await;
        server.shutdown().await;
        let elapsed = started.elapsed();
        let summary = format!(
            "mastostream demo: {} event{} shown in {}.",
            thousands(finished.events),
            if finished.events == 1 { "" } else { "s" },
            // A demo stopped within seconds would read "0 s".
            if elapsed.as_secs() < 10 {
                format!("{:.1} s", elapsed.as_secs_f64())
            } else {
                rounded_duration(elapsed)
            }
        );
        note!("{}", wrap(&summary, columns(&std::io::stderr())));
        finished.code
    })
}
