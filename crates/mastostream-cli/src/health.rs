//! `mastostream health`: is the streaming server up?

use std::io::Write as _;
use std::process::ExitCode;

use mastostream::Client;

use crate::cli::HealthArgs;

pub fn run(args: &HealthArgs) -> ExitCode {
    let builder = match crate::network::apply(&args.network, Client::builder(&args.server)) {
        Ok(builder) => builder,
        Err(message) => {
            note!("mastostream: {message}");
            return ExitCode::from(crate::stream::EXIT_USAGE);
        }
    };
    let client = match builder.build() {
        Ok(client) => client,
        Err(error) => {
            note!("mastostream: {error}");
            return ExitCode::from(crate::stream::EXIT_USAGE);
        }
    };
    let runtime = match crate::output::runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(client.health()) {
        Ok(()) => {
            // Healthy is the exit code; a closed stdout loses only the word.
            let _ = writeln!(std::io::stdout(), "OK");
            ExitCode::SUCCESS
        }
        Err(error) => {
            note!("mastostream: the streaming server is not healthy: {error}");
            ExitCode::FAILURE
        }
    }
}
