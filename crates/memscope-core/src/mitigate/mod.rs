//! Stage 2: mitigation, and the baselines it is measured against. Each method starts from
//! a parent experiment's checkpoint and writes a NEW experiment (epoch 0 = the start), whose
//! manifest records the parent, the method with every setting, the seed, and which group
//! labels the method read ([`Lineage`]). [`compare`] puts several such experiments side by
//! side.
//!
//! A method is one module implementing [`method::Mitigation`] (an objective and a sampler run
//! by the one training loop, `crate::train::fit`, or DFR's last-layer refit), listed in
//! [`method::METHODS`].

pub mod compare;
pub(crate) mod dfr;
pub(crate) mod erm;
pub mod group_dro;
pub mod jtt;
pub mod logistic;
pub mod method;
pub mod ntxent;
pub mod prune;
pub mod silent_majority;

use std::path::Path;

use anyhow::{Result, bail, ensure};
use burn::prelude::*;

pub use method::{METHODS, MethodInfo, Mitigation, Preset, default_methods, presets};

use crate::data::augment::Augment;
use crate::data::{DatasetSpec, GroupedDataset};
use crate::experiment::lineage::{Lineage, Method};
use crate::experiment::{
    CrossEntropyOn, Experiment, ExperimentWriter, FORMAT, Manifest, OptimizerKind, Schedule,
    TORCH_ADAM_EPSILON, TrainSettings,
};
use crate::jobs::{Progress, Within};
use crate::train::EpochReport;
use crate::util::rng::DEFAULT_SEED;
use method::{Recorder, Start};

/// What to run: the method (its settings as requested; what the run finds, such as JTT's
/// error count or DFR's chosen C, is filled in the record), the parent's checkpoint to start
/// from (default: its last), and the fine-tuning settings (ignored by DFR).
#[derive(Clone, Debug, PartialEq)]
pub struct MitigationPlan {
    pub method: Method,
    pub start_epoch: Option<usize>,
    pub training: TrainSettings,
    /// The new experiment's name (default: parent-method-seedN).
    pub name: Option<String>,
    /// Evaluate the train split at every epoch (as the release does); off, a run records
    /// val only and takes less time.
    pub eval_train: bool,
}

impl MitigationPlan {
    /// `method` from the parent's last checkpoint with the released fine-tuning on `dataset`
    /// (the parent's), seeded by `seed`.
    pub fn released(method: Method, dataset: &DatasetSpec, seed: u64) -> Self {
        let training = released_training(dataset, seed);
        MitigationPlan { method, start_epoch: None, training, name: None, eval_train: true }
    }
}

impl Default for MitigationPlan {
    /// The first method's default (the released silent-majority), fine-tuned as released, on
    /// the bundled digits.
    fn default() -> Self {
        MitigationPlan::released(METHODS[0].defaults(), &DatasetSpec::default(), DEFAULT_SEED)
    }
}

/// The released mitigation's fine-tuning (`SpuriousCorrelationFinetuningPruning.py`): Adam
/// (PyTorch's ε, 1e-8), lr 2e-4, no weight decay, batch 100, 21 epochs, learning rate halved
/// when the epoch's loss has not improved for more than one epoch, cross-entropy on the
/// softmax output (the release's head ends in a softmax), and the data set's augmentation
/// policy ([`Augment::released_for`]: the release's crop and flip, crop only on the digits).
/// Every training method uses it unless told otherwise, so that only the objective differs.
pub fn released_training(dataset: &DatasetSpec, seed: u64) -> TrainSettings {
    TrainSettings {
        optimizer: OptimizerKind::Adam,
        learning_rate: 2e-4,
        momentum: 0.0,
        weight_decay: 0.0,
        batch_size: 100,
        epochs: 21,
        seed,
        schedule: Schedule::Plateau { factor: 0.5, patience: 1 },
        augment: Augment::released_for(dataset),
        adam_epsilon: TORCH_ADAM_EPSILON,
        ce_on: CrossEntropyOn::Softmax,
    }
}

/// True when `a` and `b` are the same folder or `b` lies inside `a`.
fn contains(a: &Path, b: &Path) -> bool {
    match (resolve(a), resolve(b)) {
        (Some(a), Some(b)) => b.starts_with(a),
        _ => false,
    }
}

/// The absolute path of `p` with links resolved, for a path that may not exist yet.
fn resolve(p: &Path) -> Option<std::path::PathBuf> {
    if let Ok(real) = p.canonicalize() {
        return Some(real);
    }
    let absolute = std::path::absolute(p).ok()?;
    let parent = absolute.parent()?.canonicalize().ok()?;
    Some(parent.join(absolute.file_name()?))
}

/// Refuses `out` when it is the parent experiment or a folder that holds it (replacing it
/// would lose the parent).
pub fn check_destination(parent: &Experiment, out: &Path) -> Result<()> {
    if let crate::model::ModelConfig::TorchScript(_) = parent.manifest.model {
        bail!(
            "a TorchScript model cannot be mitigated (memscope does not train it, and DFR needs penultimate \
             features it cannot give): intervene, scores, ranks, sensitivity, control, sweeps and figures work on it"
        );
    }
    if let crate::model::ModelConfig::ViT(c) = &parent.manifest.model
        && c.distilled
    {
        bail!(
            "a distilled DeiT cannot be mitigated (its two heads read two tokens: there is no one penultimate \
             representation for DFR or the paper variant): intervene, scores, ranks, sensitivity, control, \
             sweeps and figures work on it"
        );
    }
    if let crate::model::ModelConfig::Custom(c) = &parent.manifest.model {
        match c.features {
            false => bail!("{}", crate::model::custom::NO_FEATURES),
            true => bail!(
                "a custom burn model cannot be mitigated by memscope yet (mitigation writes memscope's own \
                 checkpoints, not your type's burn records): intervene, scores, ranks, sensitivity, control, \
                 sweeps and figures work on it"
            ),
        }
    }
    if contains(out, &parent.dir) {
        bail!(
            "writing to {} would replace the parent experiment {}: write the mitigated experiment elsewhere",
            out.display(),
            parent.dir.display()
        );
    }
    Ok(())
}

/// Everything a run needs.
pub struct MitigationRun<'a> {
    pub parent: &'a Experiment,
    pub dataset: &'a GroupedDataset,
    pub plan: &'a MitigationPlan,
    /// The new experiment's folder: not the parent or a folder holding it.
    pub out: &'a Path,
    /// Replace an experiment already at `out`.
    pub overwrite: bool,
    pub device: &'a Device,
    /// Hears of every recorded epoch.
    pub on_epoch: &'a mut dyn FnMut(&EpochReport),
    /// Hears of every batch and can cancel (nothing is left behind then).
    pub progress: &'a mut dyn Progress,
}

/// Runs the plan from the parent and writes the new experiment (staged, locked, installed
/// when complete, as `train`).
pub fn mitigate(run: MitigationRun<'_>) -> Result<Experiment> {
    let MitigationRun { parent, dataset, plan, out, overwrite, device, on_epoch, progress } = run;
    check_destination(parent, out)?;
    let training = &plan.training;
    training.validate()?;
    let epoch = plan.start_epoch.unwrap_or_else(|| parent.last_epoch());
    let start_sha256 = parent.checkpoint(epoch)?.sha256.clone();
    ensure!(!dataset.train.is_empty(), "the training split is empty");
    crate::device::seed(device, training.seed);
    let model = parent.load_network(epoch, device)?;
    let autodiff = device.clone().autodiff();
    let start = Start { parent, dataset, epoch, model, training, device, autodiff };

    let method = plan.method.mitigation();
    let writer = ExperimentWriter::create(out, manifest(&start, plan, start_sha256), overwrite)?;
    let epochs = plan.method.epochs(training);
    let mut recorder = Recorder { writer, dataset, device, epochs, eval_train: plan.eval_train, on_epoch };
    // Before the first batch: the evaluation only asks whether to go on.
    recorder.epoch(0, (None, None), &start.model, &mut Within::new(progress, 0, 0))?;
    let record = method.run(&start, &mut recorder, progress)?;
    // What the run found (JTT's error count, DFR's C) goes in the lineage.
    recorder.writer.update_manifest(|m| {
        if let Some(lineage) = m.lineage.as_mut() {
            lineage.method = record;
        }
    })?;
    recorder.writer.finish()
}

/// The new experiment's manifest: the parent's model and data, the plan's training (none for
/// DFR, which does not train) and the lineage.
fn manifest(start: &Start<'_>, plan: &MitigationPlan, start_sha256: String) -> Manifest {
    let (parent, method, seed) = (start.parent, &plan.method, start.seed());
    let lineage = Lineage {
        parent: std::path::absolute(&parent.dir).unwrap_or_else(|_| parent.dir.clone()).display().to_string(),
        parent_name: parent.manifest.name.clone(),
        start_epoch: start.epoch,
        start_sha256,
        labels: method.labels(),
        method: method.clone(),
        seed,
        data_changes: start.dataset.changes.lines(),
    };
    Manifest {
        format: FORMAT,
        name: plan
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-{}-seed{seed}", parent.manifest.name, method.slug())),
        model: parent.manifest.model.clone(),
        dataset: parent.manifest.dataset.clone(),
        classes: parent.manifest.classes.clone(),
        groups: parent.manifest.groups.clone(),
        training: method.mitigation().fine_tunes().then(|| plan.training.clone()),
        import: None,
        lineage: Some(lineage),
        checkpoints: Vec::new(),
    }
}
