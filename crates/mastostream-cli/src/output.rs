//! Writing to stdout: a closed pipe (`| head`) ends the program quietly.

use std::io;
use std::process::ExitCode;

/// The exit code after a failed write: a broken pipe is a normal end (0);
/// any other write error is reported and exits 1.
pub fn exit_code_for_write_error(error: &io::Error) -> ExitCode {
    if error.kind() == io::ErrorKind::BrokenPipe {
        return ExitCode::SUCCESS;
    }
    note!("mastostream: cannot write output: {error}");
    ExitCode::FAILURE
}

/// A tokio runtime for a command, or the exit code after saying why not.
pub fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Runtime::new().map_err(|error| {
        note!("mastostream: cannot start the runtime: {error}");
        ExitCode::FAILURE
    })
}
