//! Training that keeps a checkpoint for every epoch, epoch 0 being the initialisation:
//! the plan (what to train), the loop (`fit`), the objective (`objective`: ERM today),
//! and the experiment folder's life ([`ExperimentWriter`]) are separate pieces.

pub mod adam;
pub mod fit;
pub(crate) mod objective;
pub(crate) mod sampler;

use std::path::Path;

use anyhow::{Context, Result, anyhow, ensure};
use burn::module::Module;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

pub use fit::fit;
pub use objective::{Erm, Objective, TrainBatch, ce_input};
pub use sampler::Sampler;

use crate::data::{DatasetSpec, GroupedDataset, Split};
use crate::eval::{AccuracyReport, evaluate};
use crate::experiment::{
    CheckpointEntry, Diagnostics, Experiment, ExperimentWriter, FORMAT, Manifest, TrainSettings,
};
use crate::jobs::{Progress, Within};
use crate::model::{ModelConfig, Network};

/// What to train: the contents of a `train --config` file. Every field has a default
/// (the bundled demo's setup).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainPlan {
    pub name: String,
    pub model: ModelConfig,
    pub dataset: DatasetSpec,
    pub training: TrainSettings,
}

impl TrainPlan {
    /// Reads a plan from a RON file.
    pub fn read(path: &Path) -> Result<TrainPlan> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        ron::from_str(&text).map_err(|e| anyhow!("{}:{e}", path.display()))
    }
}

/// What an epoch's end reports.
#[derive(Clone, Debug)]
pub struct EpochReport {
    pub epoch: usize,
    pub epochs: usize,
    /// Mean training loss over the epoch's batches (none for epoch 0, the initialisation).
    pub train_loss: Option<f64>,
    pub val: AccuracyReport,
    /// The objective's terms over the epoch, where it keeps them (silent-majority).
    pub diagnostics: Option<Diagnostics>,
}

/// A recorded epoch: where it stands in the run and what its training found.
pub(crate) struct EpochEnd {
    pub epoch: usize,
    /// The run's last epoch.
    pub epochs: usize,
    /// This epoch's mean loss (none for epoch 0).
    pub train_loss: Option<f64>,
    pub diagnostics: Option<Diagnostics>,
    /// Whether the train split is evaluated too (its accuracies are left empty otherwise).
    pub eval_train: bool,
}

/// Trains `plan` on `dataset` by ERM and writes the experiment to `out` (see
/// [`ExperimentWriter`]: staged, locked, moved into place when complete; an existing
/// experiment is replaced only when `overwrite` is set). `on_epoch` hears of each recorded
/// epoch; `progress` of each batch, and it can cancel (nothing is left behind then).
pub fn train(
    plan: &TrainPlan,
    dataset: &GroupedDataset,
    out: &Path,
    overwrite: bool,
    device: &Device,
    on_epoch: &mut dyn FnMut(&EpochReport),
    progress: &mut dyn Progress,
) -> Result<Experiment> {
    let settings = &plan.training;
    settings.validate()?;
    plan.model.check_fits(dataset.image_shape, dataset.class_names.len())?;
    ensure!(!dataset.train.is_empty(), "the training split is empty");
    let name = if plan.name.is_empty() { dataset.name.clone() } else { plan.name.clone() };
    let manifest = Manifest {
        format: FORMAT,
        name,
        model: plan.model.clone(),
        dataset: plan.dataset.clone(),
        classes: dataset.class_names.clone(),
        groups: dataset.group_names.clone(),
        training: Some(settings.clone()),
        import: None,
        lineage: None,
        checkpoints: Vec::new(),
    };
    let mut writer = ExperimentWriter::create(out, manifest, overwrite)?;

    crate::device::seed(device, settings.seed);
    let train_device = device.clone().autodiff();
    let model = plan.model.init(&train_device)?;
    let epochs = settings.epochs;
    let mut record = |epoch: usize, loss: Option<f64>, model: &Network, progress: &mut dyn Progress| {
        let at = EpochEnd { epoch, epochs, train_loss: loss, diagnostics: None, eval_train: true };
        record_epoch(&mut writer, &model.valid(), dataset, device, at, on_epoch, progress)
    };
    // Before the first batch: the evaluation only asks whether to go on.
    record(0, None, &model, &mut Within::new(progress, 0, 0))?;
    let mut objective = Erm::new(&train_device, settings.ce_on);
    fit(
        model,
        &mut objective,
        &Sampler::Shuffle,
        dataset,
        settings,
        &train_device,
        &mut |epoch, loss, _, model, progress| record(epoch, Some(loss), model, progress),
        progress,
    )?;
    writer.finish()
}

/// Evaluates `model` (on a plain device) on val and, when `at.eval_train`, on train, each
/// batch reported to `progress`, saves it as the checkpoint of `at.epoch` with those
/// accuracies and diagnostics, and tells `on_epoch`.
pub(crate) fn record_epoch(
    writer: &mut ExperimentWriter,
    model: &Network,
    dataset: &GroupedDataset,
    device: &Device,
    at: EpochEnd,
    on_epoch: &mut dyn FnMut(&EpochReport),
    progress: &mut dyn Progress,
) -> Result<()> {
    let EpochEnd { epoch, epochs, train_loss, diagnostics, eval_train } = at;
    let accuracies = |r: &AccuracyReport| r.groups.iter().map(|g| g.accuracy).collect();
    let train_accuracy = match eval_train {
        true => accuracies(&evaluate(model, dataset, Split::Train, device, progress)?),
        false => Vec::new(),
    };
    let val = evaluate(model, dataset, Split::Val, device, progress)?;
    let entry = CheckpointEntry {
        epoch,
        file: String::new(),
        sha256: String::new(),
        imported: None,
        train_loss,
        train_accuracy,
        val_accuracy: accuracies(&val),
        diagnostics,
    };
    writer.record(model, entry)?;
    on_epoch(&EpochReport { epoch, epochs, train_loss, val, diagnostics });
    Ok(())
}
