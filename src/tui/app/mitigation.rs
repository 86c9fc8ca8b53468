//! The Mitigation view's changes to the explorer: starting a run from the current epoch,
//! comparing a finished one, and reloading the explorer on it.

use super::{Action, App, Effect, View};
use crate::tui::runs::Entry;
use crate::tui::status::Status;
use crate::tui::worker::Job;
use memscope_core::data::GroupedDataset;
use memscope_core::experiment::Experiment;
use memscope_core::model::LayerInfo;

impl App {
    /// Run (Enter) in the Mitigation view: a run from the current experiment at its current epoch.
    pub(super) fn start_mitigation(&mut self) -> Vec<Effect> {
        if self.mitigation.busy() {
            let cancel = self.keys.label(Action::Cancel);
            self.status =
                Status::Note(format!("a mitigation run is in progress: wait for it, or {cancel} cancels it"));
            return Vec::new();
        }
        let request = self.mitigation.start(&self.experiment, self.epoch_number());
        vec![Effect::Submit(Job::Mitigate(Box::new(request)))]
    }

    /// A run finished: say where it is and compare it with its parent and the earlier runs.
    pub(super) fn mitigated(&mut self, experiment: &Experiment) -> Vec<Effect> {
        let dirs = self.mitigation.on_finished(experiment);
        let open = self.keys.label(Action::Open);
        self.status = Status::Note(format!("wrote {} · {open} opens it", experiment.dir.display()));
        vec![Effect::Submit(Job::Compare(dirs))]
    }

    /// Open (`o`) in the Mitigation view: reload the explorer on the last finished run.
    pub(super) fn open_run(&mut self) -> Vec<Effect> {
        if self.view != View::Mitigation {
            return Vec::new();
        }
        if self.mitigation.busy() {
            let open = self.keys.label(Action::Open);
            self.status = Status::Note(format!("a run is in progress: {open} opens it once it has finished"));
            return Vec::new();
        }
        match self.mitigation.finished_run() {
            Some(dir) => vec![Effect::Open(dir.to_path_buf())],
            None if matches!(self.mitigation.picked_entry(), Some(Entry::Comparison(_))) => {
                let pick = self.keys.pair(Action::Up, Action::Down);
                self.status =
                    Status::Note(format!("a compare result is no experiment to open: {pick} picks a run"));
                Vec::new()
            }
            None => {
                let run = self.keys.label(Action::Run);
                self.status = Status::Note(format!("no finished run to open yet: {run} starts one"));
                Vec::new()
            }
        }
    }

    /// The explorer on `experiment` (its timeline, last epoch, groups), keeping the view,
    /// the forms and the Mitigation view's runs; results of the previous experiment go.
    pub fn reopen(&mut self, experiment: &Experiment, dataset: &GroupedDataset, layers: Vec<LayerInfo>) {
        let mut next = App::new(experiment, dataset, layers);
        std::mem::swap(&mut next.mitigation, &mut self.mitigation);
        next.form = self.form.clone();
        next.view = self.view;
        next.focus = self.focus;
        next.export_dir = self.export_dir.clone();
        next.device = self.device.clone();
        next.keys = self.keys.clone();
        next.visited = std::mem::take(&mut self.visited);
        next.visited.retain(|d| *d != self.experiment.dir);
        next.visited.push(self.experiment.dir.clone());
        next.follow_layer();
        next.status = Status::Note(format!(
            "opened {}: its {} epochs are on the left",
            experiment.dir.display(),
            experiment.manifest.checkpoints.len()
        ));
        *self = next;
    }
}
