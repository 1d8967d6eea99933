//! The `mastostream` command.
//!
//! Arguments are parsed into [`cli::Command`]; each subcommand lives in its own
//! module and returns the process's exit code.

/// A line to stderr that never panics: `eprintln!` does when stderr is
/// closed or full (`2>&1 | head -1`, `2>/dev/full`), ending the run with
/// 101 over a message; here the message is lost, not the run.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod cli;
mod decode;
mod demo;
mod firehose;
mod health;
mod log;
mod network;
mod output;
mod pretty;
mod screen;
mod serve;
mod status;
mod stop;
mod stream;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = match cli::Args::try_parse() {
        Ok(args) => args,
        Err(error) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let code = if error.use_stderr() { 2 } else { 0 };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    log::init(args.verbose);
    match args.command {
        cli::Command::Decode(options) => decode::run(&options),
        cli::Command::Serve(options) => serve::run(&options),
        cli::Command::Stream(options) => stream::run(&options),
        cli::Command::Health(options) => health::run(&options),
        cli::Command::Demo(options) => demo::run(&options),
        cli::Command::Firehose(options) => firehose::run(&options),
    }
}
