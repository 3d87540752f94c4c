//! `ModelCheckpoint`: saves the model every epoch, or only when it improves.

use std::path::PathBuf;

use tensor::Element;

use crate::callbacks::monitor::{Mode, improves, monitored, resolve};
use crate::error::{Error, Result};
use crate::model::{CONTINUE, Callback, Flow, Logs, Sequential};

/// Saves the model (or its weights) during training, as Keras's `ModelCheckpoint`: after every
/// epoch, or only when a monitored quantity improved. Every save is atomic, so a crash
/// leaves the previous checkpoint whole.
///
/// The path may hold `{epoch}` (numbered from 1, as Keras's; `{epoch:03}` pads with zeros)
/// and log keys (`{val_loss}`, `{val_loss:.4}` for 4 decimals).
///
/// A full checkpoint (the default) holds the weights, the optimizer's state and the epochs
/// completed: [`Sequential::load`] it and fit with `initial_epoch:
/// model.completed_epochs()` to resume exactly where it was.
#[derive(Clone, Debug)]
pub struct ModelCheckpoint {
    filepath: String,
    monitor: String,
    mode: Mode,
    save_best_only: bool,
    save_weights_only: bool,
    pieces: Vec<Piece>,
    best: Option<f64>,
    saved: Vec<PathBuf>,
}

impl ModelCheckpoint {
    /// Saves the whole model to `filepath` after every epoch.
    pub fn new(filepath: impl Into<String>) -> Self {
        ModelCheckpoint {
            filepath: filepath.into(),
            monitor: "val_loss".into(),
            mode: Mode::Auto,
            save_best_only: false,
            save_weights_only: false,
            pieces: Vec::new(),
            best: None,
            saved: Vec::new(),
        }
    }

    /// The quantity that `save_best_only` compares (default `val_loss`).
    pub fn monitor(mut self, monitor: impl Into<String>) -> Self {
        self.monitor = monitor.into();
        self
    }

    /// Whether larger or smaller is better for `monitor`.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Save only when `monitor` is the best so far.
    pub fn save_best_only(mut self, yes: bool) -> Self {
        self.save_best_only = yes;
        self
    }

    /// Save only the weights (`save_weights`), not the optimizer state and config.
    pub fn save_weights_only(mut self, yes: bool) -> Self {
        self.save_weights_only = yes;
        self
    }

    /// The files written so far, in order.
    pub fn saved(&self) -> &[PathBuf] {
        &self.saved
    }
}

/// One piece of a checkpoint path template.
#[derive(Clone, Debug, PartialEq)]
enum Piece {
    Text(String),
    /// `{epoch}` or `{epoch:03}`: the 1-based epoch, zero-padded to `width`.
    Epoch {
        width: usize,
    },
    /// `{key}` or `{key:.4}`: a log value, with `digits` decimals if given.
    Key {
        key: String,
        digits: Option<usize>,
    },
}

/// Splits a path template into text and placeholders, or explains what is wrong with it.
fn parse_template(template: &str) -> Result<Vec<Piece>> {
    let bad = |what: String| {
        Error::config(
            "ModelCheckpoint",
            format!(
                "filepath '{template}': {what}; use {{epoch}}, {{epoch:03}}, {{key}} or {{key:.4}}"
            ),
        )
    };
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            pieces.push(Piece::Text(rest[..open].to_string()));
        }
        let close = rest[open..]
            .find('}')
            .map(|c| open + c)
            .ok_or_else(|| bad("a '{' is not closed".into()))?;
        let field = &rest[open + 1..close];
        let (key, spec) = field.split_once(':').unwrap_or((field, ""));
        if key.is_empty() {
            return Err(bad(format!("'{{{field}}}' names nothing")));
        }
        let number = |s: &str| {
            s.parse::<usize>()
                .map_err(|_| bad(format!("'{{{field}}}' has an unknown format")))
        };
        pieces.push(if key == "epoch" {
            Piece::Epoch {
                width: if spec.is_empty() {
                    0
                } else {
                    number(spec.trim_end_matches('d'))?
                },
            }
        } else {
            Piece::Key {
                key: key.to_string(),
                digits: match spec {
                    "" => None,
                    s => Some(number(
                        s.strip_prefix('.').unwrap_or("x").trim_end_matches('f'),
                    )?),
                },
            }
        });
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_string()));
    }
    Ok(pieces)
}

/// The path for `epoch` with these logs.
fn fill(pieces: &[Piece], epoch: usize, logs: &Logs) -> Result<String> {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Epoch { width } => out.push_str(&format!("{:0width$}", epoch + 1)),
            Piece::Key { key, digits } => {
                let value = monitored("ModelCheckpoint", key, logs)?;
                match digits {
                    Some(d) => out.push_str(&format!("{value:.d$}")),
                    None => out.push_str(&value.to_string()),
                }
            }
        }
    }
    Ok(out)
}

impl<T: Element> Callback<T> for ModelCheckpoint {
    fn name(&self) -> &str {
        "ModelCheckpoint"
    }

    /// It writes a file: with ranks, rank 0's alone.
    fn chief_only(&self) -> bool {
        true
    }
    fn on_train_begin(&mut self, _model: &mut Sequential<T>) -> Result<()> {
        // A bad template is an error before the first epoch's work, not after it.
        self.pieces = parse_template(&self.filepath)?;
        self.best = None;
        Ok(())
    }
    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &mut Logs,
        model: &mut Sequential<T>,
    ) -> Result<Flow> {
        if self.save_best_only {
            let current = monitored("ModelCheckpoint", &self.monitor, logs)?;
            let mode = resolve("ModelCheckpoint", self.mode, &self.monitor, model)?;
            if self
                .best
                .is_some_and(|best| !improves(mode, current, best, 0.0))
            {
                return Ok(CONTINUE);
            }
            self.best = Some(current);
        }
        let path = PathBuf::from(fill(&self.pieces, epoch, logs)?);
        if self.save_weights_only {
            model.save_weights(&path)?;
        } else {
            model.save(&path)?;
        }
        self.saved.push(path);
        Ok(CONTINUE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_paths_fill_epochs_and_log_values() {
        let mut l = Logs::default();
        l.insert("val_loss", 0.123456);
        l.insert("loss", 2.0);
        let pieces = parse_template("ckpt-{epoch:03}-{val_loss:.2}-{loss}.safetensors").unwrap();
        assert_eq!(fill(&pieces, 4, &l).unwrap(), "ckpt-005-0.12-2.safetensors");
        assert_eq!(
            fill(&parse_template("e{epoch}").unwrap(), 9, &l).unwrap(),
            "e10"
        );
        for bad in ["ckpt-{epoch", "ckpt-{}", "ckpt-{epoch:x}", "ckpt-{loss:4}"] {
            let e = parse_template(bad).unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("{epoch:03}"), "{e}");
        }
        let e = fill(&parse_template("{val_acc}").unwrap(), 0, &l)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'val_acc'") && e.contains("loss, val_loss"),
            "{e}"
        );
    }
}
