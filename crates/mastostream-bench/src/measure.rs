//! What a run cost: wall time, CPU time and peak memory, of a child process
//! (from `wait4`'s resource usage) or of this process's own threads.

use std::io::{self, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The cost of one measured run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// From start to the last event.
    pub wall: Duration,
    /// User plus system CPU time.
    pub cpu: Duration,
    /// Peak resident set, in KiB (0 when not known).
    pub max_rss_kib: u64,
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000)
}

/// Waits for a child and returns its exit success, CPU time and `ru_maxrss`.
fn wait_with_usage(child: &Child) -> io::Result<(bool, Duration, u64)> {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `usage` are valid, writable locals; `pid` is our child.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == pid {
            break;
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
    let success = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    let cpu = timeval(usage.ru_utime) + timeval(usage.ru_stime);
    Ok((success, cpu, usage.ru_maxrss as u64))
}

/// Runs a command to its end; returns its usage and standard output.
///
/// The peak memory from `wait4` is not used: Linux counts in it the memory
/// of this (large) process, from which the child was started. Children
/// report their own peak (`VmHWM`) instead.
/// A failed exit is an error carrying its standard error.
pub fn run_to_end(command: &mut Command) -> Result<(Usage, String), String> {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", command.get_program()))?;
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_in_background(child.stderr.take());
    let (success, cpu, _) = wait_with_usage(&child).map_err(|e| e.to_string())?;
    let wall = started.elapsed();
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if !success {
        let tail: String = stderr.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
        return Err(format!("exited with an error: {tail}"));
    }
    let usage = Usage {
        wall,
        cpu,
        max_rss_kib: 0,
    };
    Ok((usage, stdout))
}

/// Runs a command whose standard output is an SSE body that never ends,
/// counts the events in it until `count`, then stops the command.
/// Returns the usage and the number of events seen.
pub fn drain_events(command: &mut Command, count: u64) -> Result<(Usage, u64), String> {
    let mut counter = EventCounter::default();
    drain_counting(command, count, |bytes| {
        counter.feed(bytes);
        counter.events
    })
}

/// The `mastostream` command built beside this bench binary.
pub fn mastostream_binary() -> Result<std::path::PathBuf, String> {
    let binary = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .with_file_name("mastostream");
    if !binary.is_file() {
        return Err(format!(
            "{} is missing: build it first (cargo build --release -p mastostream-cli)",
            binary.display()
        ));
    }
    Ok(binary)
}

/// Runs `command` and counts the lines it writes until `count`, as
/// [`drain_events`] counts SSE events.
pub fn drain_lines(command: &mut Command, count: u64) -> Result<(Usage, u64), String> {
    let mut lines = 0u64;
    drain_counting(command, count, |bytes| {
        lines += memchr::memchr_iter(b'\n', bytes).count() as u64;
        lines
    })
}

/// Reads `command`'s output until `counted` (fed each read, returning the
/// total so far) reaches `count`, then kills it; its usage and the count.
fn drain_counting(
    command: &mut Command,
    count: u64,
    mut counted: impl FnMut(&[u8]) -> u64,
) -> Result<(Usage, u64), String> {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", command.get_program()))?;
    let mut stdout = child.stdout.take().ok_or("no standard output")?;
    let mut seen = 0u64;
    let mut buffer = vec![0; 256 * 1024];
    while seen < count {
        match stdout.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => seen = counted(&buffer[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    let wall = started.elapsed();
    let peak = proc_status_kib(&child.id().to_string(), "VmHWM");
    let _ = child.kill();
    drop(stdout);
    let (_, cpu, _) = wait_with_usage(&child).map_err(|e| e.to_string())?;
    let usage = Usage {
        wall,
        cpu,
        max_rss_kib: peak,
    };
    // The last read may carry events past the `count`-th; they are not asked for.
    Ok((usage, seen.min(count)))
}

fn read_in_background(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

/// Counts complete SSE events (field lines, then a blank line) in an
/// LF-separated byte stream, across chunk boundaries. Comment lines
/// (heartbeats) are not events.
#[derive(Debug)]
pub struct EventCounter {
    /// Complete events seen.
    pub events: u64,
    /// Whether the next byte begins a line.
    at_line_start: bool,
    /// Whether a field line was seen since the last event ended.
    event_open: bool,
}

impl Default for EventCounter {
    fn default() -> Self {
        EventCounter {
            events: 0,
            at_line_start: true,
            event_open: false,
        }
    }
}

impl EventCounter {
    /// Takes the next chunk.
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while let Some(&first) = rest.first() {
            if self.at_line_start {
                if first == b'\n' {
                    // A blank line ends the event, if one is open.
                    self.events += self.event_open as u64;
                    self.event_open = false;
                    rest = &rest[1..];
                    continue;
                }
                self.event_open |= first != b':';
            }
            match memchr::memchr(b'\n', rest) {
                Some(end) => {
                    self.at_line_start = true;
                    rest = &rest[end + 1..];
                }
                None => {
                    self.at_line_start = false;
                    rest = &[];
                }
            }
        }
    }
}

/// CPU time this thread has used so far.
pub fn thread_cpu() -> Duration {
    // SAFETY: an all-zero timespec is valid; clock_gettime writes into it.
    let mut time: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a valid clock id and a valid pointer to a local.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut time) };
    Duration::new(time.tv_sec as u64, time.tv_nsec as u32)
}

/// CPU time this whole process has used so far.
pub fn process_cpu() -> Duration {
    // SAFETY: an all-zero rusage is valid; getrusage writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer to a local.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    timeval(usage.ru_utime) + timeval(usage.ru_stime)
}

/// A `kB` line of `/proc/PID/status` (`self` for this process), in KiB.
pub fn proc_status_kib(pid: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// This process's resident set now, in KiB.
pub fn rss_kib() -> u64 {
    proc_status_kib("self", "VmRSS")
}

/// This process's peak resident set, in KiB. Unlike `ru_maxrss`, it does
/// not count the memory of the process that started this one.
pub fn peak_rss_kib() -> u64 {
    proc_status_kib("self", "VmHWM")
}

/// Raises the open-file limit to its hard maximum; returns the new soft limit.
pub fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
    limit.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_counts_complete_events_across_any_split() {
        let body = b":)\nevent: update\ndata: {\"a\":1}\n\n:thump\n\nevent: delete\ndata: 7\n\nevent: delete\n";
        for split in 0..body.len() {
            let mut counter = EventCounter::default();
            counter.feed(&body[..split]);
            counter.feed(&body[split..]);
            assert_eq!(counter.events, 2, "split at {split}");
        }
    }
}
