//! What the explorer asks the worker for: the intervention the form describes (built with
//! the engine's constructor and rules), the studies the views need, and the baseline.

use super::App;
use crate::tui::app::View;
use crate::tui::worker::Job;
use memscope_core::edit::Intervention;
use memscope_core::eval::AccuracyReport;
use memscope_core::neurons::scores::Criterion;
use memscope_core::neurons::select::{Scope, Selection};
use memscope_core::neurons::{CandidateFilter, NeuronSpace};
use memscope_core::report::ReportSpec;
use memscope_core::studies::epochs::EpochSeriesSpec;
use memscope_core::studies::flips::FlipsSpec;
use memscope_core::studies::intervention::{self, InterventionSpec};
use memscope_core::studies::ranks::RankSpec;
use memscope_core::studies::sensitivity::SensitivitySpec;
use memscope_core::studies::sweep::SweepSpec;
use memscope_core::util::rng::DEFAULT_SEED;

impl App {
    /// The job that fills the groups panel for the current epoch and split.
    pub fn baseline_job(&self) -> Job {
        Job::Baseline { epoch: self.epoch_number(), split: self.form.split() }
    }

    /// The gradient scores the form's next intervention needs, computed while idle.
    pub fn prepare_job(&self) -> Job {
        Job::Prepare { epoch: self.epoch_number(), criterion: self.gradient() }
    }

    /// The current baseline, if it belongs to the current epoch and split.
    pub fn current_baseline(&self) -> Option<&AccuracyReport> {
        match &self.baseline {
            Some((e, s, r)) if *e == self.epoch_number() && *s == self.form.split() => Some(r),
            _ => None,
        }
    }

    pub(super) fn gradient(&self) -> Criterion {
        intervention::gradient(Some(self.group), DEFAULT_SEED)
    }

    /// The intervention the form describes.
    pub fn spec(&self) -> InterventionSpec {
        let spec = self.top_spec();
        if self.form.random_control() {
            // The random control; a scope without neurons leaves the top selection, and the
            // engine says what is wrong when it runs.
            return spec.clone().random_control(&self.layers).unwrap_or(spec);
        }
        spec
    }

    /// Whether the result shown was run with other settings than the form's now.
    pub fn result_stale(&self) -> bool {
        self.bars.stale(&self.spec())
    }

    /// The form's intervention with its top selection (before any random control).
    fn top_spec(&self) -> InterventionSpec {
        let epoch = self.epoch_number();
        if let Intervention::RewindLayer { layer, epochs_back } = self.form.intervention(self.layer_name()) {
            return InterventionSpec::rewind_layer(epoch, layer, epochs_back)
                .on(self.form.split())
                .repeats(self.form.repeats);
        }
        if self.form.by_hand() {
            return InterventionSpec::neurons(epoch)
                .change(self.form.intervention(self.layer_name()))
                .criterion(self.form.criterion(self.group))
                .granularity(self.form.granularity)
                .on(self.form.split())
                .repeats(self.form.repeats)
                .select(Selection::ByHand(self.form.chosen.clone()));
        }
        let scope = if self.form.within_layer() {
            Scope::Layer(self.form.scope_layer(self.layer_name()))
        } else {
            Scope::Global
        };
        InterventionSpec::neurons(epoch)
            .change(self.form.intervention(self.layer_name()))
            .criterion(self.form.criterion(self.group))
            .scope(scope)
            .normalize_layers(self.form.normalize_layers())
            .candidates(if self.form.within_layer() {
                CandidateFilter::default()
            } else {
                self.form.candidates.clone()
            })
            .granularity(self.form.granularity)
            .on(self.form.split())
            .repeats(self.form.repeats)
            .select(self.form.count.clone())
    }

    /// The form's intervention swept over every layer.
    pub fn sweep_spec(&self) -> SweepSpec {
        // Neurons chosen by hand are swept over the layers that hold them.
        SweepSpec {
            random_control: self.form.random_control(),
            ..SweepSpec::every_layer(self.top_spec(), &self.layers)
        }
    }

    /// Whether the sweep shown was run with other settings than the form's now (the layer
    /// selected on the left does not matter to a sweep).
    pub fn sweep_stale(&self) -> bool {
        self.sweep.stale(&self.sweep_spec())
    }

    /// The form's intervention at every epoch where it applies (a rewind needs that many
    /// earlier epochs).
    pub fn epoch_series_spec(&self) -> EpochSeriesSpec {
        let base = self.spec();
        let epochs =
            self.epochs.iter().map(|e| e.epoch).filter(|&e| base.intervention.validate(e).is_ok()).collect();
        EpochSeriesSpec { base, epochs }
    }

    /// Whether the series shown was run with other settings than the form's now (the epoch
    /// selected on the left does not matter to a series).
    pub fn epoch_series_stale(&self) -> bool {
        self.series.stale(&self.epoch_series_spec())
    }

    /// The form's intervention's flips among the selected group's examples.
    pub fn flips_spec(&self) -> FlipsSpec {
        FlipsSpec { intervention: self.spec(), group: self.group }
    }

    pub fn flips_stale(&self) -> bool {
        self.images.stale(&self.flips_spec())
    }

    /// The rank histograms of the form's granularity, candidates and count: a top fraction
    /// as it is, a top k as k of the candidates.
    /// `memscope report`'s studies at this epoch, on the form's split, with the report's own
    /// seed and repeats.
    pub fn report_spec(&self) -> ReportSpec {
        ReportSpec { epoch: Some(self.epoch_number()), split: self.form.split(), ..ReportSpec::default() }
    }

    pub fn rank_spec(&self) -> RankSpec {
        let granularity = self.form.granularity;
        let candidates = self.form.candidates.clone();
        // The form's count as a fraction of the candidates (the study's default fraction when
        // there are none to count).
        let k = match &self.form.count {
            Selection::TopFraction(q) => Err(*q),
            Selection::TopK(k) | Selection::Random { count: k, .. } => Ok(*k),
            Selection::ByHand(ids) => Ok(ids.len()),
        };
        let fraction = match k {
            Err(q) => q,
            Ok(k) => {
                let total =
                    NeuronSpace::new(&self.layers, &candidates, granularity).map(|s| s.total()).unwrap_or(0);
                if total > 0 { (k as f64 / total as f64).min(1.0) } else { RankSpec::default().fraction }
            }
        };
        RankSpec { fraction, granularity, candidates, ..RankSpec::at(self.epoch_number()) }
    }

    pub(super) fn rank_job(&self) -> Job {
        Job::Ranks(self.rank_spec())
    }

    /// Whether the histograms shown were made with other settings than the form's now.
    pub fn ranks_stale(&self) -> bool {
        self.ranks.stale(&self.rank_spec())
    }

    pub(super) fn sensitivity_job(&self) -> Job {
        let epoch = self.epoch_number();
        Job::Sensitivity(SensitivitySpec::at(epoch).on(self.form.split()).reachable())
    }

    pub(super) fn ranks_current(&self) -> bool {
        self.ranks.current(&self.rank_spec())
    }

    /// Whether the sensitive layers shown are of the current epoch and split.
    pub fn sensitivity_current(&self) -> bool {
        self.sensitivity
            .study
            .as_ref()
            .is_some_and(|s| s.spec.epoch == self.epoch_number() && s.spec.split == self.form.split())
    }

    /// The study jobs the current view needs, if its data is missing or stale.
    pub(super) fn view_job(&self) -> Option<Job> {
        match self.view {
            View::Ranks if !self.ranks_current() => Some(self.rank_job()),
            View::Sensitivity if !self.sensitivity_current() && self.epoch_number() >= 5 => {
                Some(self.sensitivity_job())
            }
            _ => None,
        }
    }
}
