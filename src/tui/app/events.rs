//! The worker's messages: progress for the status line, and each finished job's result to
//! the view that shows it.

use std::time::{Duration, Instant};

use super::{App, Effect, Running};
use crate::tui::mitigation::RunState;
use crate::tui::status::Status;
use crate::tui::text::short;
use crate::tui::worker::{Event, Output};

impl App {
    /// Applies a message from the worker; returns what follows from it (a finished run is
    /// compared).
    pub fn on_event(&mut self, event: Event) -> Vec<Effect> {
        match event {
            Event::Started { id, label } => {
                self.running = Some(Running { id, label, started: Instant::now(), done: 0, total: 0 });
            }
            Event::Progress { id, done, total } => {
                if let Some(r) = self.running.as_mut().filter(|r| r.id == id) {
                    r.done = done;
                    r.total = total;
                }
            }
            Event::Mitigation { id, update } => self.mitigation.on_update(id, update),
            Event::Finished { id, output, elapsed } => {
                self.finish(id);
                return self.finished(output, elapsed);
            }
            Event::Cancelled { id } => {
                self.finish(id);
                self.status = if self.mitigation.on_stopped(id, RunState::Cancelled) {
                    Status::Note("mitigation cancelled; nothing was written".into())
                } else {
                    Status::Cancelled
                };
            }
            Event::Failed { id, message } => {
                self.finish(id);
                self.mitigation.on_stopped(id, RunState::Failed(message.clone()));
                self.status = Status::Error(message);
            }
        }
        Vec::new()
    }

    /// A job's result, to its view; the status line says what finished.
    fn finished(&mut self, output: Output, elapsed: Duration) -> Vec<Effect> {
        let what = match output {
            Output::Baseline { epoch, split, report } => {
                self.baseline = Some((epoch, split, report));
                return Vec::new();
            }
            Output::Prepared => return Vec::new(),
            Output::Mitigated(experiment) => return self.mitigated(&experiment),
            Output::Intervention(result) => {
                let what = short(&result);
                self.bars.finished(*result);
                self.scroll = 0;
                what
            }
            Output::Ranks(study) => {
                self.ranks.study = Some(*study);
                "rank histograms".into()
            }
            Output::Sensitivity(study) => {
                self.sensitivity.finished(*study);
                "sensitive layers".into()
            }
            Output::Epochs(series) => {
                self.scroll = 0;
                format!("series of {} epochs", self.series.series.insert(*series).points.len())
            }
            Output::Flips(flips) => {
                self.scroll = 0;
                let f = self.images.flips.insert(*flips);
                format!(
                    "G{}: {} broken, {} fixed of {}",
                    f.spec.group,
                    f.broken(),
                    f.fixed(),
                    f.examples.len()
                )
            }
            Output::Sweep(sweep) => {
                self.scroll = 0;
                format!("sweep of {} layers", self.sweep.sweep.insert(*sweep).rows.len())
            }
            Output::Report(report) => return vec![Effect::SaveReport(report)],
            Output::Comparison(comparison) => {
                self.mitigation.on_comparison(*comparison);
                "comparison".into()
            }
        };
        self.status = Status::Done { what, elapsed };
        Vec::new()
    }

    fn finish(&mut self, id: u64) {
        if self.running.as_ref().is_some_and(|r| r.id == id) {
            self.running = None;
        }
    }
}
