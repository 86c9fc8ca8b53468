//! Progress on standard error for long commands: a bar when stderr is a terminal, nothing
//! when it is redirected (scripts and logs stay clean).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use memscope_core::jobs::{Cancelled, Progress};

/// A [`Progress`] drawn as `label [=====>    ] done/total elapsed`.
pub struct Bar {
    bar: Option<ProgressBar>,
}

impl Bar {
    pub fn new(label: &str) -> Bar {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_message(label.to_string());
            bar
        });
        Bar { bar }
    }
}

impl Progress for Bar {
    fn report(&mut self, done: usize, total: usize) -> Result<(), Cancelled> {
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
        Ok(())
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
