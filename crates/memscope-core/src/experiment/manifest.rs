//! The contents of `experiment.ron`: what was trained, on what, how, and every checkpoint.
//! The settings types live here, so reading an experiment needs nothing from training.

use std::fmt;
use std::str::FromStr;

use anyhow::{Result, bail, ensure};
use serde::{Deserialize, Serialize};

use crate::data::DatasetSpec;
use crate::data::augment::Augment;
use crate::model::ModelConfig;

pub const MANIFEST: &str = "experiment.ron";
pub const FORMAT: u32 = 1;

/// One saved epoch. Accuracies are per group, in group order; `None` for an empty group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointEntry {
    /// 0 is the initialisation; epoch e is the model after e passes over the training split.
    pub epoch: usize,
    /// File name inside the experiment folder; for an imported checkpoint, its path relative
    /// to the experiment folder (or absolute when no relative path exists).
    pub file: String,
    pub sha256: String,
    /// An imported checkpoint's size in bytes and how it was read (none for memscope's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported: Option<ImportedFile>,
    /// Mean training cross-entropy over the epoch's batches (none for epoch 0 and for
    /// imported runs).
    pub train_loss: Option<f64>,
    /// Empty when not measured (an import without `--evaluate`).
    pub train_accuracy: Vec<Option<f64>>,
    pub val_accuracy: Vec<Option<f64>>,
    /// The objective's terms over the epoch, where it reports them (silent-majority).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<Diagnostics>,
}

/// A silent-majority epoch's terms, means over its batches: what shows why a run goes where
/// it goes (the contrastive term against the supervised one, how far the mask moves the
/// outputs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Diagnostics {
    /// The two NT-Xent terms together (the paper variant: its one term).
    pub ntxent: f64,
    /// The supervised term before λ (cross-entropy; the paper variant's MSE).
    pub ce: f64,
    /// The L2 norm of the whole gradient (every parameter) of a step's loss.
    pub grad_norm: f64,
    /// Per example, the L2 distance between the softmax outputs of the dense and the masked
    /// passes (in [0, √2]).
    pub distance: f64,
}

/// How an imported checkpoint file was read, checked again whenever it is opened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportedFile {
    pub size: u64,
    /// `pytorch`, `safetensors` or `burnpack`.
    pub format: String,
    /// The dictionary the state dict came from (`model_state_dict`, `state_dict`, `model`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrapper: Option<String>,
    /// The prefix removed from every name (`module.`, `model.`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stripped_prefix: Option<String>,
}

/// Where an imported experiment's checkpoints came from and the conventions they follow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportSource {
    /// The run folder as given to `memscope import` (a record; each checkpoint's `file` is
    /// what is opened).
    pub run: String,
    /// The file-name pattern that gave each epoch (`{epoch}` marks the number).
    pub pattern: String,
    /// The class each output of the files' head stands for: `[0, 1]` as trained by
    /// torchvision-style code, `[1, 0]` for `--label-order reversed` (the authors' code).
    /// Rows of the head are put in the data set's class order when a file is read.
    pub label_order: Vec<usize>,
}

/// The contents of `experiment.ron`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub name: String,
    pub model: ModelConfig,
    pub dataset: DatasetSpec,
    pub classes: Vec<String>,
    pub groups: Vec<String>,
    /// How memscope trained the model; none for an imported run.
    pub training: Option<TrainSettings>,
    /// Set for an experiment made by `memscope import`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<ImportSource>,
    /// Set for an experiment made by `memscope mitigate`: its parent and method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<super::lineage::Lineage>,
    pub checkpoints: Vec<CheckpointEntry>,
}

/// The largest epoch number an experiment may list.
pub(crate) const MAX_EPOCH: usize = 100_000;

impl Manifest {
    /// Refuses a manifest no run could have written: another format, no checkpoints, an
    /// epoch listed twice or beyond `MAX_EPOCH`, a checkpoint file outside the folder,
    /// accuracies for the wrong number of groups.
    pub fn check(&self) -> Result<()> {
        ensure!(
            self.format == FORMAT,
            "format {} is not supported (this memscope reads format {FORMAT})",
            self.format
        );
        ensure!(!self.checkpoints.is_empty(), "the experiment lists no checkpoints");
        ensure!(self.classes.len() >= 2, "the experiment names {} classes (at least 2)", self.classes.len());
        ensure!(!self.groups.is_empty(), "the experiment names no groups");
        if let Some(import) = &self.import {
            let mut order = import.label_order.clone();
            order.sort_unstable();
            ensure!(
                order == (0..self.classes.len()).collect::<Vec<_>>(),
                "import: label_order {:?} is not an ordering of the {} classes",
                import.label_order,
                self.classes.len()
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for entry in &self.checkpoints {
            ensure!(
                entry.epoch <= MAX_EPOCH,
                "epoch {} is out of range (valid: 0..={MAX_EPOCH})",
                entry.epoch
            );
            ensure!(seen.insert(entry.epoch), "epoch {} is listed twice", entry.epoch);
            let plain = !entry.file.is_empty()
                && !entry.file.contains(['/', '\\'])
                && entry.file != "."
                && entry.file != "..";
            match (&entry.imported, &self.import) {
                (None, _) => ensure!(
                    plain,
                    "epoch {}: checkpoint file '{}' must be a file name inside the experiment folder",
                    entry.epoch,
                    entry.file
                ),
                (Some(_), None) => {
                    bail!("epoch {}: an imported checkpoint in an experiment with no `import`", entry.epoch)
                }
                (Some(_), Some(_)) => {
                    ensure!(!entry.file.is_empty(), "epoch {}: the checkpoint's path is empty", entry.epoch)
                }
            }
            for (what, values) in
                [("train_accuracy", &entry.train_accuracy), ("val_accuracy", &entry.val_accuracy)]
            {
                ensure!(
                    values.is_empty() || values.len() == self.groups.len(),
                    "epoch {}: {what} has {} values for {} groups",
                    entry.epoch,
                    values.len(),
                    self.groups.len()
                );
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Adam,
    Sgd,
}

impl FromStr for OptimizerKind {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "adam" => Ok(OptimizerKind::Adam),
            "sgd" => Ok(OptimizerKind::Sgd),
            other => bail!("unknown optimizer '{other}' (valid: adam, sgd)"),
        }
    }
}

/// How a model is trained. Every field has a default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainSettings {
    pub optimizer: OptimizerKind,
    pub learning_rate: f64,
    /// SGD momentum (ignored by Adam).
    pub momentum: f64,
    /// L2 penalty added to the gradient (the authors' code uses none).
    pub weight_decay: f64,
    pub batch_size: usize,
    /// 40 as in the paper and the authors' code.
    pub epochs: usize,
    /// Seeds the initialisation and the order of batches.
    pub seed: u64,
    /// How the learning rate changes between epochs (constant unless set).
    #[serde(skip_serializing_if = "is_default")]
    pub schedule: Schedule,
    /// Augmentation of every training batch (none unless set).
    #[serde(skip_serializing_if = "is_default")]
    pub augment: Augment,
    /// Adam's ε: burn's 1e-5 unless set (what `memscope train` uses, and what a record
    /// without it ran with); PyTorch's and the released mitigation's is 1e-8.
    #[serde(skip_serializing_if = "is_burn_adam_epsilon")]
    pub adam_epsilon: f64,
    /// What the supervised cross-entropy reads (logits unless set; the release's head ends
    /// in a softmax, so its cross-entropy reads probabilities).
    #[serde(skip_serializing_if = "is_default")]
    pub ce_on: CrossEntropyOn,
}

/// burn's `AdamConfig` default ε, memscope's ERM's.
pub const BURN_ADAM_EPSILON: f64 = 1e-5;
/// PyTorch's `torch.optim.Adam` default ε, the released mitigation's.
pub const TORCH_ADAM_EPSILON: f64 = 1e-8;

fn is_burn_adam_epsilon(value: &f64) -> bool {
    *value == BURN_ADAM_EPSILON
}

/// What the supervised cross-entropy is applied to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CrossEntropyOn {
    /// The logits (`CrossEntropyLoss(logits, y)`, the usual form).
    #[default]
    Logits,
    /// The softmax probabilities, as the release's `Sequential(Linear, Softmax)` head feeds
    /// `CrossEntropyLoss`: a second softmax inside the loss.
    Softmax,
}

impl fmt::Display for CrossEntropyOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CrossEntropyOn::Logits => "logits",
            CrossEntropyOn::Softmax => "softmax",
        })
    }
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// How the learning rate changes between epochs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    #[default]
    Constant,
    /// PyTorch's `ReduceLROnPlateau(mode="min", factor, patience)` with its defaults
    /// (relative threshold 1e-4, no cooldown, no minimum), stepped once per epoch on the
    /// epoch's mean training loss (the released mitigation: factor 0.5, patience 1).
    Plateau { factor: f64, patience: usize },
}

/// The state of a [`Schedule`] over a run.
#[derive(Clone, Debug)]
pub struct LearningRate {
    schedule: Schedule,
    pub current: f64,
    best: f64,
    bad_epochs: usize,
}

impl LearningRate {
    pub fn new(schedule: Schedule, initial: f64) -> LearningRate {
        LearningRate { schedule, current: initial, best: f64::INFINITY, bad_epochs: 0 }
    }

    /// Hears an epoch's loss; returns the learning rate of the next epoch.
    pub fn step(&mut self, loss: f64) -> f64 {
        if let Schedule::Plateau { factor, patience } = self.schedule {
            if loss < self.best * (1.0 - 1e-4) {
                self.best = loss;
                self.bad_epochs = 0;
            } else {
                self.bad_epochs += 1;
            }
            if self.bad_epochs > patience {
                let next = self.current * factor;
                if self.current - next > 1e-8 {
                    self.current = next;
                }
                self.bad_epochs = 0;
            }
        }
        self.current
    }
}

/// SGD's momentum when a plan names none (PyTorch's usual 0.9; GroupDRO, JTT and DFR train
/// with it).
pub const SGD_MOMENTUM: f64 = 0.9;

impl Default for TrainSettings {
    fn default() -> Self {
        TrainSettings {
            optimizer: OptimizerKind::Adam,
            learning_rate: 1e-3,
            momentum: SGD_MOMENTUM,
            weight_decay: 0.0,
            batch_size: 64,
            epochs: 40,
            seed: crate::util::rng::DEFAULT_SEED,
            schedule: Schedule::Constant,
            augment: Augment::None,
            adam_epsilon: BURN_ADAM_EPSILON,
            ce_on: CrossEntropyOn::Logits,
        }
    }
}

impl TrainSettings {
    /// What a fine-tuning read of these settings needs, in one line: the optimizer with its
    /// ε, the supervised term's input and the augmentation ("adam eps 1e-8, lr 0.0002, batch
    /// 100, cross-entropy on softmax, augment crop 0.7-1").
    pub fn summary(&self) -> String {
        let optimizer = match self.optimizer {
            OptimizerKind::Adam => format!("adam eps {:e}", self.adam_epsilon),
            OptimizerKind::Sgd => format!("sgd momentum {}", self.momentum),
        };
        format!(
            "{optimizer}, lr {}, batch {}, cross-entropy on {}, augment {}",
            self.learning_rate, self.batch_size, self.ce_on, self.augment
        )
    }

    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.learning_rate.is_finite() && self.learning_rate > 0.0,
            "learning_rate {} must be a positive number",
            self.learning_rate
        );
        ensure!(
            self.weight_decay.is_finite() && self.weight_decay >= 0.0,
            "weight_decay {} must be a number >= 0",
            self.weight_decay
        );
        ensure!(
            self.momentum.is_finite() && (0.0..1.0).contains(&self.momentum),
            "momentum {} must be in [0, 1)",
            self.momentum
        );
        ensure!(
            self.adam_epsilon.is_finite() && self.adam_epsilon > 0.0,
            "adam_epsilon {} must be a positive number",
            self.adam_epsilon
        );
        ensure!(self.batch_size >= 1, "batch_size must be at least 1");
        ensure!((1..=1000).contains(&self.epochs), "epochs {} out of range 1..=1000", self.epochs);
        if let Schedule::Plateau { factor, .. } = self.schedule {
            ensure!(factor > 0.0 && factor < 1.0, "schedule factor {factor} must be in (0, 1)");
        }
        if let Augment::CropFlip { scale, ratio, .. } = self.augment {
            ensure!(
                0.0 < scale.0 && scale.0 <= scale.1 && scale.1 <= 1.0,
                "augment scale ({}, {}) must satisfy 0 < min <= max <= 1",
                scale.0,
                scale.1
            );
            ensure!(
                0.0 < ratio.0 && ratio.0 <= ratio.1 && ratio.1.is_finite(),
                "augment ratio ({}, {}) must satisfy 0 < min <= max",
                ratio.0,
                ratio.1
            );
        }
        Ok(())
    }
}
