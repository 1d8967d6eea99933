//! `mastostream decode`: raw SSE bytes on stdin → one JSON line per event on stdout.

use std::io::{self, Read, Write};
use std::process::ExitCode;

use mastostream_proto::{EventDecoder, StreamItem};

use crate::cli::DecodeArgs;
use crate::output::exit_code_for_write_error;

pub fn run(args: &DecodeArgs) -> ExitCode {
    match decode(args, &mut io::stdin().lock(), &mut io::stdout().lock()) {
        Ok(code) => code,
        Err(error) => exit_code_for_write_error(&error),
    }
}

/// Reads `input` as it arrives and writes each event as soon as it is whole,
/// flushing after every read so that a live pipe sees events without delay.
fn decode(args: &DecodeArgs, input: &mut impl Read, out: &mut impl Write) -> io::Result<ExitCode> {
    let mut decoder = EventDecoder::with_max_event_size(args.max_event_size);
    let mut out = io::BufWriter::with_capacity(64 * 1024, out);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                note!("mastostream: cannot read input: {e}");
                return Ok(ExitCode::FAILURE);
            }
        };
        decoder.feed(&buf[..n]);
        while let Some(item) = decoder.poll() {
            match item {
                Ok(StreamItem::Event(event)) => {
                    event.write_json(&mut out)?;
                    out.write_all(b"\n")?;
                }
                Ok(StreamItem::Heartbeat) if args.heartbeats => {
                    out.write_all(b"{\"heartbeat\":true}\n")?;
                }
                Ok(_) => {}
                Err(error) => {
                    note!("mastostream: skipped {error}");
                    if args.strict {
                        out.flush()?;
                        return Ok(ExitCode::FAILURE);
                    }
                }
            }
        }
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}
