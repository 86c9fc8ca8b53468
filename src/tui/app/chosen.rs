//! Neurons chosen by hand: pinned from the Neurons view (`space` on the row at the cursor)
//! or typed at the `#` prompt (ids as the outputs write them, or bare indices in the
//! selected layer). While some are chosen the form changes them instead of the ranking's top.

use super::{App, Effect, View};
use crate::tui::app::Action;
use crate::tui::status::Status;
use memscope_core::neurons::{CandidateFilter, NeuronSpace};

impl App {
    /// The Neurons view's cursor: the row its scroll has reached, when the shown result has
    /// neurons.
    pub fn neuron_cursor(&self) -> Option<usize> {
        let n = self.bars.result.as_ref().map_or(0, |r| r.neurons.len());
        (n > 0).then(|| self.scroll.min(n - 1))
    }

    /// `space` in the Neurons view: the neuron at the cursor chosen by hand, or dropped.
    pub(super) fn pin_neuron(&mut self) -> Vec<Effect> {
        let (Some(at), Some(result), View::Neurons) = (self.neuron_cursor(), &self.bars.result, self.view)
        else {
            let run = self.keys.label(Action::Run);
            self.status = Status::Note(format!(
                "no neurons to pin: run an intervention ({run}), then pin in the Neurons view"
            ));
            return Vec::new();
        };
        let neuron = result.neurons[at].id.clone();
        let granularity = result.spec.query.granularity;
        let pinned = self.form.toggle(neuron.clone(), granularity);
        self.status = Status::Note(if pinned {
            format!(
                "{neuron} chosen by hand ({} chosen; {} runs them)",
                self.form.chosen.len(),
                self.keys.label(Action::Run)
            )
        } else {
            format!("{neuron} dropped ({} chosen by hand)", self.form.chosen.len())
        });
        Vec::new()
    }

    /// The `#` prompt accepted: the ids typed (a bare index is one in the selected layer)
    /// become the neurons chosen by hand; nothing typed goes back to the ranking.
    pub(super) fn type_neurons(&mut self, text: &str) -> Vec<Effect> {
        let layer = self.layer_name();
        let ids: Vec<String> = text
            .split(',')
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(|id| if id.contains(':') { id.to_string() } else { format!("{layer}:{id}") })
            .collect();
        if ids.is_empty() {
            self.form.chosen.clear();
            self.status = Status::Note("no neurons chosen by hand: the ranking's top again".into());
            return Vec::new();
        }
        let space = NeuronSpace::new(&self.layers, &CandidateFilter::default(), self.form.granularity);
        match space.and_then(|s| s.named(&ids)) {
            Ok(chosen) => {
                self.form.chosen = chosen;
                let run = self.keys.label(Action::Run);
                self.status =
                    Status::Note(format!("{} chosen by hand; {run} runs them", self.form.chosen_text()));
            }
            Err(e) => self.status = Status::Error(format!("{e:#}")),
        }
        Vec::new()
    }
}
