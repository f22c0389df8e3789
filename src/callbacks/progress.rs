//! The fit's display as a callback (Keras's ProgbarLogger, which fit appends after the user's
//! callbacks): nothing (verbose 0), a progress bar over the epochs on a terminal (1), or one line
//! per epoch (2, and 1 when stderr is not a terminal). It also shows the messages other
//! callbacks print through [`TrainContext::print`], after the epoch's line.

use std::io::IsTerminal;
use std::time::Instant;

use super::{Callback, Logs, TrainContext};
use crate::error::Result;

pub(crate) struct ProgbarLogger {
    level: u8,
    bar: Option<indicatif::ProgressBar>,
    epochs: usize,
    started: Option<Instant>,
}

impl ProgbarLogger {
    /// `verbose` as `Fit::verbose` takes it (None: 1 on a terminal, 2 otherwise).
    pub fn new(verbose: Option<u8>, epochs: usize) -> ProgbarLogger {
        let terminal = std::io::stderr().is_terminal();
        let level = match verbose {
            Some(0) => 0,
            Some(1) if terminal => 1,
            Some(_) => 2,
            None if terminal => 1,
            None => 2,
        };
        let bar = (level == 1).then(|| {
            let bar = indicatif::ProgressBar::new(epochs as u64);
            let style = indicatif::ProgressStyle::with_template("Epoch {pos}/{len} [{bar:20}] ETA {eta} - {wide_msg}")
                .map(|s| s.progress_chars("=> "))
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        ProgbarLogger { level, bar, epochs, started: None }
    }

    /// The verbosity in effect (terminal detection applied).
    pub fn level(&self) -> u8 {
        self.level
    }

    /// Shows (and empties) the messages the callbacks printed.
    fn show_messages(&self, ctx: &mut TrainContext) {
        for msg in ctx.messages.drain(..) {
            match &self.bar {
                Some(bar) => bar.println(msg),
                None if self.level > 0 => eprintln!("{msg}"),
                None => {}
            }
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.abandon();
            if !bar.is_hidden() {
                // The bar's last line stays; what is printed next goes below it.
                eprintln!();
            }
        }
    }
}

impl Callback for ProgbarLogger {
    fn on_train_begin(&mut self, ctx: &mut TrainContext) -> Result<()> {
        self.show_messages(ctx);
        Ok(())
    }

    fn on_epoch_begin(&mut self, _epoch: usize, ctx: &mut TrainContext) -> Result<()> {
        self.show_messages(ctx);
        self.started = Some(Instant::now());
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, ctx: &mut TrainContext) -> Result<()> {
        if self.level > 0 {
            let ms = self.started.map_or(0.0, |t| t.elapsed().as_secs_f64() * 1e3);
            let values: Vec<String> = logs.iter().map(|(k, v)| format!("{k}: {v:.4}")).collect();
            match &self.bar {
                Some(bar) => {
                    bar.set_message(format!("{ms:.0}ms/epoch - {}", values.join(" - ")));
                    bar.set_position(epoch as u64 + 1);
                }
                None => eprintln!("Epoch {}/{} - {ms:.0}ms - {}", epoch + 1, self.epochs, values.join(" - ")),
            }
        }
        self.show_messages(ctx);
        Ok(())
    }

    fn on_train_end(&mut self, _logs: &Logs, ctx: &mut TrainContext) -> Result<()> {
        self.show_messages(ctx);
        self.finish();
        Ok(())
    }
}

impl Drop for ProgbarLogger {
    /// A fit ended by an error leaves no half-drawn bar.
    fn drop(&mut self) {
        self.finish();
    }
}
