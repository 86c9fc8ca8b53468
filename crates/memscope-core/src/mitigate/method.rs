//! The seam of a mitigation method: what the front ends show of it and offer ([`MethodInfo`]
//! with its [`Preset`]s, in the table [`METHODS`]), and how it trains from the start
//! checkpoint ([`Mitigation`]: an objective and a sampler through `fine_tune`, or a refit).
//!
//! A new method is its settings (a variant of [`Method`], the record `experiment.ron` keeps),
//! one module beside this one implementing [`Mitigation`] with its `INFO`, and one line each
//! in [`METHODS`] and [`Method::mitigation`]. The command line's `--method` and the
//! explorer's form read the table.

use anyhow::Result;
use burn::module::Module;
use burn::prelude::*;

use super::{dfr, erm, group_dro, jtt, silent_majority};
use crate::data::GroupedDataset;
use crate::experiment::lineage::{LabelUse, Method};
use crate::experiment::{Diagnostics, Experiment, ExperimentWriter, TrainSettings};
use crate::jobs::Progress;
use crate::model::Network;
use crate::train::{EpochEnd, EpochReport, Objective, Sampler, fit, record_epoch};

/// A method as the front ends name and offer it.
#[derive(Debug)]
pub struct MethodInfo {
    /// The name on the command line and in `experiment.ron` (`--method jtt`, `jtt((...))`).
    pub name: &'static str,
    /// What it is and what it reads, in a few words (for `--help`).
    pub about: &'static str,
    /// The group labels it reads.
    pub labels: LabelUse,
    /// Its settings as offered, the default first (each module says which source they follow).
    pub presets: &'static [Preset],
}

impl MethodInfo {
    /// The method's default settings: its first preset's (every method has one).
    pub fn defaults(&self) -> Method {
        (self.presets[0].settings)()
    }
}

/// A method with its settings, as the explorer offers it.
#[derive(Clone, Copy, Debug)]
pub struct Preset {
    /// As the form shows it.
    pub name: &'static str,
    /// In run folder names.
    pub slug: &'static str,
    /// In the comparison table's narrow first column.
    pub short: &'static str,
    pub settings: fn() -> Method,
}

/// Every method, in the order the command line lists them and the explorer offers them.
pub const METHODS: [&MethodInfo; 5] =
    [&silent_majority::INFO, &erm::INFO, &jtt::INFO, &group_dro::INFO, &dfr::INFO];

/// How a method trains. Implemented by its settings.
pub trait Mitigation {
    fn info(&self) -> &'static MethodInfo;

    /// The name with what distinguishes its settings ("silent-majority (code, probs)").
    fn label(&self) -> String {
        self.info().name.to_string()
    }

    /// The name in a run's default experiment name (`<parent>-<slug>-seed<N>`): the name,
    /// with the variant where a method has several, so that no two presets share one.
    fn slug(&self) -> String {
        self.info().name.to_string()
    }

    /// Whether it fine-tunes with the plan's training settings (recorded with the run); DFR
    /// refits the head once instead, recorded as one epoch.
    fn fine_tunes(&self) -> bool {
        true
    }

    /// What a finished run found, in words, when it finds something (JTT's error set, DFR's C).
    fn found(&self) -> Option<String> {
        None
    }

    /// Trains from `start`, recording every epoch after it through `recorder`. Returns the
    /// record of the run: these settings with what it found (JTT's error count, DFR's C).
    fn run(
        &self,
        start: &Start<'_>,
        recorder: &mut Recorder<'_>,
        progress: &mut dyn Progress,
    ) -> Result<Method>;
}

impl Method {
    /// The method's training and names.
    pub fn mitigation(&self) -> &dyn Mitigation {
        match self {
            Method::SilentMajority(settings) => settings,
            Method::Erm => &erm::MoreErm,
            Method::Jtt(settings) => settings,
            Method::GroupDro(settings) => settings,
            Method::Dfr(settings) => settings,
        }
    }

    /// The method's name on the command line.
    pub fn name(&self) -> &'static str {
        self.mitigation().info().name
    }

    /// The name with what distinguishes its variants ("silent-majority (code, probs)").
    pub fn label(&self) -> String {
        self.mitigation().label()
    }

    /// The name in a run's default experiment name ("silent-majority-code").
    pub fn slug(&self) -> String {
        self.mitigation().slug()
    }

    /// The group labels the method reads.
    pub fn labels(&self) -> LabelUse {
        self.mitigation().info().labels
    }

    /// Epochs a run records after its start with `training`.
    pub fn epochs(&self, training: &TrainSettings) -> usize {
        if self.mitigation().fine_tunes() { training.epochs } else { 1 }
    }
}

/// The method named `name` on the command line.
pub fn find(name: &str) -> Option<&'static MethodInfo> {
    METHODS.into_iter().find(|m| m.name == name)
}

/// Every preset of every method, in [`METHODS`] order.
pub fn presets() -> impl Iterator<Item = &'static Preset> {
    METHODS.into_iter().flat_map(|m| m.presets)
}

/// Every preset's settings: the released code's, the slides', the reference implementations'.
/// `memscope mitigate` uses these when given no setting; the explorer offers them.
pub fn default_methods() -> Vec<Method> {
    presets().map(|p| (p.settings)()).collect()
}

/// Where a run starts: the parent's checkpoint, its data, the fine-tuning settings.
pub struct Start<'a> {
    pub parent: &'a Experiment,
    pub dataset: &'a GroupedDataset,
    /// The parent's epoch started from (the new experiment's epoch 0).
    pub epoch: usize,
    /// That checkpoint's network, on `device`.
    pub model: Network,
    pub training: &'a TrainSettings,
    pub device: &'a Device,
    /// `device` with autodiff, for training.
    pub autodiff: Device,
}

impl Start<'_> {
    /// The run's seed (batch order, augmentation, sampling, DFR's subsets).
    pub fn seed(&self) -> u64 {
        self.training.seed
    }
}

/// Records each epoch of a run in the new experiment: its checkpoint, train and val accuracy.
pub struct Recorder<'a> {
    pub(super) writer: ExperimentWriter,
    pub(super) dataset: &'a GroupedDataset,
    pub(super) device: &'a Device,
    /// The run's last epoch.
    pub(super) epochs: usize,
    /// Evaluate the train split at every epoch too.
    pub(super) eval_train: bool,
    pub(super) on_epoch: &'a mut dyn FnMut(&EpochReport),
}

impl Recorder<'_> {
    /// Evaluates `model` (on a plain device; `progress` hears of each batch), saves it as
    /// `epoch` with its loss and the objective's diagnostics, and tells the listener.
    pub fn epoch(
        &mut self,
        epoch: usize,
        (train_loss, diagnostics): (Option<f64>, Option<Diagnostics>),
        model: &Network,
        progress: &mut dyn Progress,
    ) -> Result<()> {
        let at =
            EpochEnd { epoch, epochs: self.epochs, train_loss, diagnostics, eval_train: self.eval_train };
        record_epoch(&mut self.writer, model, self.dataset, self.device, at, self.on_epoch, progress)
    }
}

/// Fine-tunes every parameter of the start network through [`fit`] with `objective` (built
/// on `start.autodiff`) and `sampler`, recording each epoch: every method's training but
/// DFR's.
pub(crate) fn fine_tune(
    start: &Start<'_>,
    objective: &mut dyn Objective,
    sampler: &Sampler,
    recorder: &mut Recorder<'_>,
    progress: &mut dyn Progress,
) -> Result<()> {
    let model = start.model.clone().fork(&start.autodiff).train();
    fit(
        model,
        objective,
        sampler,
        start.dataset,
        start.training,
        &start.autodiff,
        &mut |epoch, loss, diagnostics, model, progress| {
            recorder.epoch(epoch, (Some(loss), diagnostics), &model.valid(), progress)
        },
        progress,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_recorded_under_its_method_name() {
        for info in METHODS {
            for preset in info.presets {
                let method = (preset.settings)();
                assert_eq!(method.name(), info.name, "{}", preset.name);
                assert_eq!(method.labels(), info.labels, "{}", preset.name);
                // The record's tag in experiment.ron is the name (r#-quoted when it has a dash).
                let ron = ron::to_string(&method).unwrap();
                assert!(ron.trim_start_matches("r#").starts_with(info.name), "{ron}");
                assert_eq!(find(info.name).map(|m| m.name), Some(info.name));
            }
        }
        for info in METHODS {
            assert!(!info.presets.is_empty(), "{} has default settings", info.name);
        }
        let slugs: Vec<&str> = presets().map(|p| p.slug).collect();
        let mut unique = slugs.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), slugs.len(), "one run folder name per preset");
        // The experiment's default name takes the same slug: `compare` tells the variants apart.
        for preset in presets() {
            assert_eq!((preset.settings)().slug(), preset.slug, "{}", preset.name);
        }
    }
}
