//! The results table: one row per client or limit, with ratios against
//! mastostream's SSE client.

use std::fmt;

use crate::measure::Usage;

/// One measured client: its usage and event count, or why it has none.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was measured.
    pub label: String,
    /// The usage, if every event was counted.
    pub result: Result<Usage, String>,
}

impl Row {
    /// A row; a run that counted other than `expected` events is void.
    pub fn new(label: &str, expected: u64, run: Result<(Usage, u64), String>) -> Row {
        let result = run.and_then(|(usage, events)| {
            if events == expected {
                Ok(usage)
            } else {
                Err(format!("void: counted {events} events, not {expected}"))
            }
        });
        Row {
            label: label.to_owned(),
            result,
        }
    }
}

/// Every row of one run.
#[derive(Debug, Clone)]
pub struct Table {
    /// Events each client received.
    pub events: u64,
    /// Mean framed SSE bytes per event.
    pub bytes_per_event: f64,
    /// The stream drained.
    pub stream: String,
    /// The rows, in the order measured.
    pub rows: Vec<Row>,
}

/// The row every ratio is taken against.
pub const REFERENCE: &str = "mastostream SSE, multi-thread runtime";

impl Table {
    /// An empty table.
    pub fn new(events: u64, bytes_per_event: f64, stream: &str) -> Table {
        Table {
            events,
            bytes_per_event,
            stream: stream.to_owned(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    /// Events per CPU-second of a row, if it has a result.
    pub fn per_cpu_second(&self, label: &str) -> Option<f64> {
        let row = self.rows.iter().find(|r| r.label == label)?;
        let usage = row.result.as_ref().ok()?;
        Some(self.events as f64 / usage.cpu.as_secs_f64().max(1e-9))
    }

    /// Whether every row has a result.
    pub fn all_counted(&self) -> bool {
        self.rows.iter().all(|r| r.result.is_ok())
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} events of `{}` per client ({:.0} bytes per event framed)\n",
            self.events, self.stream, self.bytes_per_event
        )?;
        writeln!(
            f,
            "| client | wall s | events/s | CPU s | events per CPU-s | peak RSS MiB | {REFERENCE} ÷ this (per CPU-s) |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|---:|")?;
        let reference = self.per_cpu_second(REFERENCE);
        for row in &self.rows {
            match &row.result {
                Ok(usage) => {
                    let wall = usage.wall.as_secs_f64();
                    let cpu = usage.cpu.as_secs_f64();
                    let per_cpu = self.events as f64 / cpu.max(1e-9);
                    let rss = if usage.max_rss_kib == 0 {
                        "–".to_owned()
                    } else {
                        format!("{:.1}", usage.max_rss_kib as f64 / 1024.0)
                    };
                    let ratio =
                        reference.map_or("–".to_owned(), |r| format!("{:.2}×", r / per_cpu));
                    writeln!(
                        f,
                        "| {} | {wall:.3} | {:.0} | {cpu:.3} | {per_cpu:.0} | {rss} | {ratio} |",
                        row.label,
                        self.events as f64 / wall.max(1e-9),
                    )?;
                }
                Err(reason) => writeln!(f, "| {} | {reason} | | | | | |", row.label)?,
            }
        }
        Ok(())
    }
}
