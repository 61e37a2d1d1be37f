//! Progress of loads and reloads: an indicatif bar on a terminal, plain lines otherwise (one
//! every few seconds, so logs stay readable).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// A progress display for one load.
pub struct Progress {
    label: String,
    bar: Option<ProgressBar>,
    last_line: Option<Instant>,
    every: Duration,
}

impl Progress {
    /// A bar when stderr is a terminal, plain lines otherwise.
    pub fn new(label: &str) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>12} [{bar:40.cyan/blue}] {pos}/{len} rows  {per_sec}  eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(label.to_owned());
            bar
        });
        Progress {
            label: label.to_owned(),
            bar,
            last_line: None,
            every: Duration::from_secs(2),
        }
    }

    /// Shows `done` of `total` rows.
    pub fn update(&mut self, done: u64, total: Option<u64>) {
        if let Some(bar) = &self.bar {
            if let Some(total) = total {
                bar.set_length(total);
            }
            bar.set_position(done);
            return;
        }
        if self.last_line.is_some_and(|t| t.elapsed() < self.every) {
            return;
        }
        self.last_line = Some(Instant::now());
        eprintln!("{}", line(&self.label, done, total));
    }

    /// Ends the display with a summary line.
    pub fn finish(self, summary: &str) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
        eprintln!("{}: {summary}", self.label);
    }
}

/// A plain progress line (pure).
pub fn line(label: &str, done: u64, total: Option<u64>) -> String {
    match total {
        Some(total) if total > 0 => format!(
            "{label}: {done}/{total} rows ({:.0}%)",
            done as f64 * 100.0 / total as f64
        ),
        _ => format!("{label}: {done} rows"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_show_rows_and_percent() {
        assert_eq!(line("Account", 50, Some(200)), "Account: 50/200 rows (25%)");
        assert_eq!(line("Account", 50, None), "Account: 50 rows");
    }
}
