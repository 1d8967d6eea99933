//! `mastostream health`: is the streaming server up?

use std::process::ExitCode;

use mastostream::Client;

use crate::cli::HealthArgs;

pub fn run(args: &HealthArgs) -> ExitCode {
    let builder = match crate::network::apply(&args.network, Client::builder(&args.server)) {
        Ok(builder) => builder,
        Err(message) => {
            eprintln!("mastostream: {message}");
            return ExitCode::from(crate::stream::EXIT_USAGE);
        }
    };
    let client = match builder.build() {
        Ok(client) => client,
        Err(error) => {
            eprintln!("mastostream: {error}");
            return ExitCode::from(crate::stream::EXIT_USAGE);
        }
    };
    let runtime = match crate::output::runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(client.health()) {
        Ok(()) => {
            println!("OK");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("mastostream: the streaming server is not healthy: {error}");
            ExitCode::FAILURE
        }
    }
}
