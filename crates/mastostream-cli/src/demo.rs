//! `mastostream demo`: the test server and the client in one process.

use std::io::IsTerminal;
use std::process::ExitCode;

use mastostream::{Client, ReconnectPolicy};
use mastostream_proto::Channel;
use mastostream_testkit::{TestServer, replay};

use crate::cli::{DemoArgs, Format};
use crate::pretty::Style;
use crate::stream::{Output, stream_to_stdout};

pub fn run(args: &DemoArgs) -> ExitCode {
    if !(args.rate > 0.0 && args.rate.is_finite()) {
        eprintln!("mastostream: --rate must be more than 0");
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
                eprintln!("mastostream: cannot start the test server: {error}");
                return ExitCode::FAILURE;
            }
        };
        eprintln!(
            "mastostream demo: test server at {}, replaying {} events at {}/s; streaming public:",
            server.url(),
            replay::bundled().len(),
            args.rate
        );
        let client = match Client::builder(server.url())
            .token("demo")
            .reconnect(ReconnectPolicy::default())
            .build()
        {
            Ok(client) => client,
            Err(error) => {
                eprintln!("mastostream: {error}");
                return ExitCode::FAILURE;
            }
        };
        let output = Output {
            format: Format::Pretty,
            limit: (args.limit > 0).then_some(args.limit),
            style: Style {
                colour: std::io::stdout().is_terminal(),
            },
            status_line: std::io::stderr().is_terminal(),
        };
        let code = stream_to_stdout(&client, vec![Channel::Public], &output).await;
        server.shutdown().await;
        code
    })
}
