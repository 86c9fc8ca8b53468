//! ERM training that keeps a checkpoint for every epoch, epoch 0 being the initialisation.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail, ensure};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::data::{DatasetSpec, GroupedDataset, Split, batch};
use crate::eval::{AccuracyReport, evaluate};
use crate::experiment::{
    CheckpointEntry, Experiment, FORMAT, MANIFEST, Manifest, checkpoint, checkpoint_file,
};
use crate::model::{ModelConfig, Network};
use crate::util::rng::seeded;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Adam,
    Sgd,
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
}

impl Default for TrainSettings {
    fn default() -> Self {
        TrainSettings {
            optimizer: OptimizerKind::Adam,
            learning_rate: 1e-3,
            momentum: 0.9,
            weight_decay: 0.0,
            batch_size: 64,
            epochs: 40,
            seed: 0,
        }
    }
}

impl TrainSettings {
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
        ensure!(self.batch_size >= 1, "batch_size must be at least 1");
        ensure!((1..=1000).contains(&self.epochs), "epochs {} out of range 1..=1000", self.epochs);
        Ok(())
    }

    fn optimizer(&self) -> ModuleOptimizer {
        let decay = (self.weight_decay > 0.0).then(|| WeightDecayConfig::new(self.weight_decay as f32));
        match self.optimizer {
            OptimizerKind::Adam => AdamConfig::new().with_weight_decay(decay).init(),
            OptimizerKind::Sgd => SgdConfig::new()
                .with_weight_decay(decay)
                .with_momentum(
                    (self.momentum > 0.0).then(|| MomentumConfig::new().with_momentum(self.momentum)),
                )
                .init(),
        }
    }
}

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

/// Reported while training runs.
#[derive(Clone, Debug)]
pub enum Progress {
    Batch { epoch: usize, batch: usize, batches: usize },
    Epoch { epoch: usize, epochs: usize, train_loss: Option<f64>, val: AccuracyReport },
}

/// Trains `plan` on `dataset` and writes the experiment to `out`. The experiment is built
/// in a sibling staging folder and moved into place only when complete; an existing
/// experiment at `out` is replaced only when `overwrite` is set.
pub fn train(
    plan: &TrainPlan,
    dataset: &GroupedDataset,
    out: &Path,
    overwrite: bool,
    device: &Device,
    on_progress: &mut dyn FnMut(&Progress),
) -> Result<Experiment> {
    plan.training.validate()?;
    plan.model.check_fits(dataset.image_shape, dataset.class_names.len())?;
    check_destination(out, overwrite)?;
    ensure!(!dataset.train.is_empty(), "the training split is empty");

    let staging = sibling(out, "partial")?;
    if staging.exists() {
        std::fs::remove_dir_all(&staging).with_context(|| format!("cannot clear {}", staging.display()))?;
    }
    std::fs::create_dir_all(&staging).with_context(|| format!("cannot create {}", staging.display()))?;

    let settings = &plan.training;
    let name = if plan.name.is_empty() { dataset.name.clone() } else { plan.name.clone() };
    let mut experiment = Experiment {
        dir: staging.clone(),
        manifest: Manifest {
            format: FORMAT,
            name,
            model: plan.model.clone(),
            dataset: plan.dataset.clone(),
            classes: dataset.class_names.clone(),
            groups: dataset.group_names.clone(),
            training: settings.clone(),
            checkpoints: Vec::new(),
        },
    };

    crate::device::seed(device, settings.seed);
    let train_device = device.clone().autodiff();
    let mut model: Network = plan.model.init(&train_device)?;
    let mut optim = settings.optimizer();
    let loss_fn = CrossEntropyLossConfig::new().init(&train_device);
    let mut order_rng = seeded(settings.seed, 2);
    let train = &dataset.train;
    let batches = train.len().div_ceil(settings.batch_size);
    let image_len = dataset.image_len();

    record_epoch(&mut experiment, &model.valid(), dataset, device, 0, None, on_progress, settings.epochs)?;
    for epoch in 1..=settings.epochs {
        let mut order: Vec<usize> = (0..train.len()).collect();
        order.shuffle(&mut order_rng);
        let mut loss_sum = 0.0;
        for (b, chunk) in order.chunks(settings.batch_size).enumerate() {
            let subset = train.subset(chunk, image_len);
            let x = batch::images(&subset, dataset.image_shape, 0..chunk.len(), &train_device);
            let y = batch::labels(subset.labels.iter().copied(), &train_device);
            let loss = loss_fn.forward(model.forward_train(x), y);
            loss_sum += f64::from(loss.clone().into_scalar::<f32>()) * chunk.len() as f64;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(settings.learning_rate, model, grads);
            on_progress(&Progress::Batch { epoch, batch: b + 1, batches });
        }
        let train_loss = loss_sum / train.len() as f64;
        if !train_loss.is_finite() {
            bail!("training diverged at epoch {epoch} (loss {train_loss}); try a smaller learning_rate");
        }
        record_epoch(
            &mut experiment,
            &model.valid(),
            dataset,
            device,
            epoch,
            Some(train_loss),
            on_progress,
            settings.epochs,
        )?;
    }

    install(&staging, out)?;
    experiment.dir = out.to_path_buf();
    Ok(experiment)
}

#[allow(clippy::too_many_arguments)]
fn record_epoch(
    experiment: &mut Experiment,
    model: &Network,
    dataset: &GroupedDataset,
    device: &Device,
    epoch: usize,
    train_loss: Option<f64>,
    on_progress: &mut dyn FnMut(&Progress),
    epochs: usize,
) -> Result<()> {
    let file = checkpoint_file(epoch);
    let sha256 = checkpoint::save(model, &experiment.dir.join(&file))?;
    let train_report = evaluate(model, dataset, Split::Train, device)?;
    let val_report = evaluate(model, dataset, Split::Val, device)?;
    let accuracies = |r: &AccuracyReport| r.groups.iter().map(|g| g.accuracy).collect();
    experiment.manifest.checkpoints.push(CheckpointEntry {
        epoch,
        file,
        sha256,
        train_loss,
        train_accuracy: accuracies(&train_report),
        val_accuracy: accuracies(&val_report),
    });
    experiment.save()?;
    on_progress(&Progress::Epoch { epoch, epochs, train_loss, val: val_report });
    Ok(())
}

/// Refuses to replace anything but an experiment, and an experiment unless asked.
fn check_destination(out: &Path, overwrite: bool) -> Result<()> {
    if !out.exists() {
        return Ok(());
    }
    let is_experiment = out.join(MANIFEST).is_file();
    let is_empty = out.is_dir() && out.read_dir().map(|mut d| d.next().is_none()).unwrap_or(false);
    if is_empty {
        return Ok(());
    }
    if !is_experiment {
        bail!("{} exists and is not an experiment folder; choose another --out", out.display());
    }
    if !overwrite {
        bail!("experiment {} already exists; pass --force to replace it", out.display());
    }
    Ok(())
}

fn sibling(out: &Path, tag: &str) -> Result<PathBuf> {
    let name = out
        .file_name()
        .with_context(|| format!("--out {} has no folder name", out.display()))?
        .to_string_lossy();
    Ok(out.with_file_name(format!(".{name}.{tag}")))
}

/// Moves the finished staging folder to `out`, replacing what was there only at the end.
fn install(staging: &Path, out: &Path) -> Result<()> {
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let old = sibling(out, "old")?;
    if out.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).with_context(|| format!("cannot remove {}", old.display()))?;
        }
        std::fs::rename(out, &old).with_context(|| format!("cannot move {} aside", out.display()))?;
    }
    std::fs::rename(staging, out)
        .with_context(|| format!("cannot move the new experiment to {}", out.display()))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).with_context(|| format!("cannot remove {}", old.display()))?;
    }
    Ok(())
}
