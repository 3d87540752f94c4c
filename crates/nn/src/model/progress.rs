//! The per-epoch progress display of `fit`, in Keras's format:
//!
//! ```text
//! Epoch 1/5
//! 63/63 ━━━━━━━━━━━━━━━━━━━━ 1s 14ms/step - accuracy: 0.5160 - loss: 0.6907
//! ```
//!
//! With `verbose` 1 and a terminal, the line redraws in place at most every 50 ms (with
//! Keras's bold and green); when the output is not a terminal only the finished line of each
//! epoch is written, so logs stay readable. `verbose` 2 writes one plain line per epoch.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::model::logs::{Logs, format_metric};

const BAR_WIDTH: usize = 20;
const REDRAW_INTERVAL: Duration = Duration::from_millis(50);

pub(crate) struct Progress {
    verbose: u8,
    live: bool,
    target: usize,
    start: Instant,
    after_first_step: Option<Instant>,
    last_draw: Option<Instant>,
    last_width: usize,
}

impl Progress {
    /// Starts an epoch's display (printing `Epoch i/N` when there are several epochs).
    pub fn new(verbose: u8, epoch: usize, epochs: usize, steps: usize) -> Self {
        let live = verbose == 1 && std::io::stdout().is_terminal();
        if verbose > 0 && epochs > 1 {
            println!("Epoch {}/{}", epoch + 1, epochs);
        }
        Progress {
            verbose,
            live,
            target: steps,
            start: Instant::now(),
            after_first_step: None,
            last_draw: None,
            last_width: 0,
        }
    }

    /// Seconds per step so far (excluding the first step, which includes warm-up).
    fn time_per_step(&self, current: usize) -> f64 {
        match self.after_first_step {
            Some(t) if current > 1 => t.elapsed().as_secs_f64() / (current - 1) as f64,
            _ => self.start.elapsed().as_secs_f64() / current.max(1) as f64,
        }
    }

    /// Records that `current` steps are done, redrawing if it is time to; `logs` is called
    /// only then.
    pub fn update(&mut self, current: usize, logs: impl FnOnce() -> Logs) {
        if current == 1 {
            self.after_first_step = Some(Instant::now());
        }
        if !self.live
            || self
                .last_draw
                .is_some_and(|t| t.elapsed() < REDRAW_INTERVAL)
        {
            return;
        }
        self.last_draw = Some(Instant::now());
        let eta = self.time_per_step(current) * (self.target - current.min(self.target)) as f64;
        let line = self.line(current, &format_duration(eta), &logs(), true);
        self.draw(&line, false);
    }

    /// Writes the epoch's final line with its complete logs.
    pub fn finish(&mut self, logs: &Logs) {
        match self.verbose {
            0 => {}
            1 => {
                let elapsed = format!("{:.0}s", self.start.elapsed().as_secs_f64());
                let line = self.line(self.target, &elapsed, logs, self.live);
                self.draw(&line, true);
            }
            _ => {
                let n = digits(self.target);
                let mut line = format!(
                    "{:>n$}/{} - {:.0}s - {}",
                    self.target,
                    self.target,
                    self.start.elapsed().as_secs_f64(),
                    format_step_time(self.time_per_step(self.target))
                );
                for (k, v) in logs.sorted() {
                    line.push_str(&format!(" - {k}: {}", format_metric(v)));
                }
                println!("{line}");
            }
        }
    }

    /// `current/target bar time per-step - metrics`, styled when `ansi`.
    fn line(&self, current: usize, time: &str, logs: &Logs, ansi: bool) -> String {
        let (bold, green, grey, reset) = if ansi {
            ("\x1b[1m", "\x1b[32m", "\x1b[37m", "\x1b[0m")
        } else {
            ("", "", "", "")
        };
        let n = digits(self.target);
        let done = BAR_WIDTH * current / self.target.max(1);
        let mut line = format!("{bold}{current:>n$}/{}{reset} ", self.target);
        if done > 0 {
            line.push_str(&format!("{green}{}{reset}", "━".repeat(done)));
        }
        line.push_str(&format!("{grey}{}{reset}", "━".repeat(BAR_WIDTH - done)));
        line.push_str(&format!(
            " {bold}{time}{reset} {}",
            format_step_time(self.time_per_step(current))
        ));
        for (k, v) in logs.sorted() {
            line.push_str(&format!(" - {k}: {}", format_metric(v)));
        }
        line
    }

    fn draw(&mut self, line: &str, end: bool) {
        let mut out = std::io::stdout().lock();
        let width = visible_width(line);
        let pad = self.last_width.saturating_sub(width);
        let prefix = if self.live { "\r" } else { "" };
        // Progress output is best effort: a closed stdout must not stop training.
        let _ = write!(out, "{prefix}{line}{}", " ".repeat(pad));
        if end {
            let _ = writeln!(out);
        }
        let _ = out.flush();
        self.last_width = width;
    }
}

fn digits(n: usize) -> usize {
    n.max(1).to_string().len()
}

fn visible_width(s: &str) -> usize {
    let mut width = 0;
    let mut in_escape = false;
    for c in s.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => width += 1,
        }
    }
    width
}

/// Keras's ETA format: `12s`, `1:05`, `1:01:05`.
fn format_duration(seconds: f64) -> String {
    let s = seconds as u64;
    if seconds > 3600.0 {
        format!("{}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
    } else if seconds > 60.0 {
        format!("{}:{:02}", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Keras's time per step: `2s/step`, `14ms/step`, `350us/step`.
fn format_step_time(t: f64) -> String {
    if t >= 1.0 || t == 0.0 {
        format!("{t:.0}s/step")
    } else if t >= 1e-3 {
        format!("{:.0}ms/step", t * 1e3)
    } else {
        format!("{:.0}us/step", t * 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formats_follow_keras() {
        assert_eq!(format_step_time(0.014), "14ms/step");
        assert_eq!(format_step_time(2.2), "2s/step");
        assert_eq!(format_step_time(0.00035), "350us/step");
        assert_eq!(format_duration(30.4), "30s");
        assert_eq!(format_duration(65.0), "1:05");
        assert_eq!(format_duration(3665.0), "1:01:05");
    }

    #[test]
    fn the_final_line_has_keras_layout() {
        let mut logs = Logs::default();
        logs.insert("loss", 0.6907);
        logs.insert("accuracy", 0.516);
        let p = Progress::new(0, 0, 1, 63);
        let line = p.line(63, "1s", &logs, false);
        assert!(line.starts_with("63/63 ━━━━━━━━━━━━━━━━━━━━ 1s "), "{line}");
        assert!(
            line.ends_with("/step - accuracy: 0.5160 - loss: 0.6907"),
            "{line}"
        );
        let half = p.line(7, "3s", &logs, false);
        assert!(half.starts_with(" 7/63 ━━━━━━━━━━━━━━━━━━━━ 3s "), "{half}");
        assert_eq!(
            visible_width(&p.line(63, "1s", &logs, true)),
            visible_width(&line)
        );
    }
}
