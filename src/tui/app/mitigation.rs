//! The Mitigation view's changes to the explorer: starting a run from the current epoch,
//! comparing a finished one, and reloading the explorer on it.

use super::{App, Effect, View};
use crate::tui::status::Status;
use crate::tui::worker::Job;
use memscope_core::data::GroupedDataset;
use memscope_core::experiment::Experiment;
use memscope_core::model::LayerInfo;

impl App {
    /// Enter in the Mitigation view: a run from the current experiment at its current epoch.
    pub(super) fn start_mitigation(&mut self) -> Vec<Effect> {
        if self.mitigation.busy() {
            self.status =
                Status::Note("a mitigation run is in progress: wait for it, or Esc cancels it".into());
            return Vec::new();
        }
        let request = self.mitigation.start(&self.experiment, self.epoch_number());
        vec![Effect::Submit(Job::Mitigate(Box::new(request)))]
    }

    /// A run finished: say where it is and compare it with its parent and the earlier runs.
    pub(super) fn mitigated(&mut self, experiment: &Experiment) -> Vec<Effect> {
        let dirs = self.mitigation.on_finished(experiment);
        self.status = Status::Note(format!("wrote {} · o opens it", experiment.dir.display()));
        vec![Effect::Submit(Job::Compare(dirs))]
    }

    /// `o` in the Mitigation view: reload the explorer on the last finished run.
    pub(super) fn open_run(&mut self) -> Vec<Effect> {
        if self.view != View::Mitigation {
            return Vec::new();
        }
        if self.mitigation.busy() {
            self.status = Status::Note("a run is in progress: o opens it once it has finished".into());
            return Vec::new();
        }
        match self.mitigation.finished_run() {
            Some(dir) => vec![Effect::Open(dir.to_path_buf())],
            None => {
                self.status = Status::Note("no finished run to open yet: Enter starts one".into());
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
        next.follow_layer();
        next.status = Status::Note(format!(
            "opened {}: its {} epochs are on the left",
            experiment.dir.display(),
            experiment.manifest.checkpoints.len()
        ));
        *self = next;
    }
}
