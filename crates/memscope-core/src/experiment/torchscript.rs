//! `memscope import --torchscript MODEL.pt`: a TorchScript classifier and its run's per-epoch
//! state dicts as an experiment. Unlike a plain import, the experiment keeps copies: the
//! module as `model.pt` and each epoch's tensors (float32, PyTorch names) as
//! `epoch-NNN.safetensors`, so it opens wherever it is moved.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail, ensure};
use burn::prelude::*;
use safetensors::SafeTensors;

use super::import::{Discovery, ImportPlan, OnFile, absolute_folder, manifest, relative_to};
use super::manifest::{CheckpointEntry, ImportedFile};
use super::{Experiment, ExperimentWriter, checkpoint, checkpoint_file, foreign};
use crate::data::{GroupedDataset, Split, batch};
use crate::eval::{AccuracyReport, evaluate};
use crate::jobs::{Progress, Within};
use crate::model::scripted::{StateTensor, candidate_layers, module_tensors};
use crate::model::{ModelConfig, Network, Scripted, TorchScriptConfig};
use crate::util::fsx::read_regular;

/// The module's file inside an experiment folder.
pub const MODULE_FILE: &str = "model.pt";

/// A scripted module far above this is not an image classifier memscope can run.
const MAX_MODULE_BYTES: u64 = 8 << 30;

/// The TorchScript model at `module` for a data set of `classes` classes: its candidate
/// layers and its head (`head`, else the last rank-2 weight with `classes` rows).
pub fn config(module: &Path, classes: usize, head: Option<&str>) -> Result<TorchScriptConfig> {
    let bytes = read_regular(module, "TorchScript module", MAX_MODULE_BYTES)?;
    let tensors = module_tensors(module)?;
    let weights: Vec<(String, Vec<usize>)> =
        tensors.into_iter().filter(|(_, _, buffer)| !buffer).map(|(name, shape, _)| (name, shape)).collect();
    let layers = candidate_layers(&weights, classes, head).with_context(|| module.display().to_string())?;
    let head = layers.iter().find(|l| l.head).map(|l| l.name.clone()).unwrap_or_default();
    Ok(TorchScriptConfig {
        file: MODULE_FILE.into(),
        sha256: checkpoint::sha256_hex(&bytes),
        num_classes: classes,
        head,
        layers,
    })
}

/// The float32 tensors of safetensors `bytes` as (name, shape, values).
fn tensors_of(bytes: &[u8]) -> Result<Vec<StateTensor>> {
    let file =
        SafeTensors::deserialize(bytes).map_err(|e| anyhow!("not a readable safetensors file ({e})"))?;
    let mut out: Vec<_> = file
        .iter()
        .map(|(name, view)| {
            let values =
                view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            (name.to_string(), view.shape().to_vec(), values)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The network of `epoch` of a TorchScript experiment: its module with the epoch's tensors,
/// after checking both files against their recorded sha256.
pub(crate) fn load(
    experiment: &Experiment,
    config: &TorchScriptConfig,
    entry: &CheckpointEntry,
    device: &Device,
) -> Result<Network> {
    let module = experiment.dir.join(&config.file);
    checkpoint::read_verified(&module, "the TorchScript module", MAX_MODULE_BYTES, Some(&config.sha256))?;
    let path = experiment.dir.join(&entry.file);
    let bytes = checkpoint::read_verified(&path, "checkpoint", MAX_MODULE_BYTES, Some(&entry.sha256))?;
    let tensors = tensors_of(&bytes).with_context(|| format!("checkpoint {}", path.display()))?;
    let scripted = Scripted::new(&module, &config.layers, tensors, device)
        .with_context(|| format!("checkpoint {}", path.display()))?;
    Ok(Network::Scripted(scripted))
}

/// One run file as float32 safetensors bytes with PyTorch names, the head's rows in class
/// order, and what the file is.
fn read_epoch(plan: &ImportPlan, path: &Path) -> Result<(Vec<u8>, ImportedFile)> {
    let file = foreign::read_file(path)?;
    let mut bytes = file.bytes;
    if plan.label_order.iter().enumerate().any(|(i, &c)| i != c) {
        let mut inverse = vec![0; plan.label_order.len()];
        for (output, &class) in plan.label_order.iter().enumerate() {
            inverse[class] = output;
        }
        let head = plan.model.head_params();
        // A head without a bias has only its weight reordered.
        let present: Vec<String> = head
            .into_iter()
            .filter(|n| SafeTensors::deserialize(&bytes).is_ok_and(|f| f.tensor(n).is_ok()))
            .collect();
        bytes = foreign::reorder_rows(bytes, &present, &inverse)
            .with_context(|| format!("checkpoint {}", path.display()))?;
    }
    let bytes = checkpoint::as_float32(bytes).with_context(|| format!("checkpoint {}", path.display()))?;
    let imported = ImportedFile {
        size: file.size,
        format: file.notes.format,
        wrapper: file.notes.wrapper,
        stripped_prefix: file.notes.stripped_prefix,
    };
    Ok((bytes, imported))
}

/// Runs the module once on the data set's first image: it must give `[1, classes]` logits.
fn probe(network: &Network, dataset: &GroupedDataset, device: &Device) -> Result<()> {
    let Some(scripted) = network.scripted() else { return Ok(()) };
    let split = [Split::Train, Split::Val, Split::Test].into_iter().find(|&s| !dataset.split(s).is_empty());
    let Some(split) = split else { return Ok(()) };
    let logits = scripted.try_forward(batch::images(dataset, split, &[0], device)?)?;
    let classes = dataset.class_names.len();
    ensure!(
        logits.dims() == [1, classes],
        "the TorchScript module gives logits of shape {:?} for one image, not [1, {classes}] (one per class)",
        logits.dims()
    );
    Ok(())
}

/// Imports the TorchScript module `module` and the state dicts `discovery` found into a new
/// experiment at `out`, as [`super::import::import`] does for memscope's own architectures.
#[allow(clippy::too_many_arguments)]
pub(crate) fn import(
    plan: &ImportPlan,
    module: &Path,
    discovery: &Discovery,
    dataset: &GroupedDataset,
    out: &Path,
    overwrite: bool,
    device: &Device,
    on_file: &mut OnFile<'_>,
    progress: &mut dyn Progress,
) -> Result<Experiment> {
    let ModelConfig::TorchScript(config) = &plan.model else {
        bail!("a TorchScript import needs a TorchScript model");
    };
    let base = absolute_folder(out)?;
    let manifest = manifest(plan, discovery, dataset);
    let mut writer = ExperimentWriter::create(out, manifest, overwrite)?;
    let staged = writer.experiment().dir.clone();
    std::fs::copy(module, staged.join(&config.file))
        .with_context(|| format!("cannot copy {} into the experiment", module.display()))?;
    let total = discovery.files.len();
    for (done, found) in discovery.files.iter().enumerate() {
        let (bytes, imported) = read_epoch(plan, &found.path)?;
        let file = checkpoint_file(found.epoch);
        crate::util::fsx::write_atomic(&staged.join(&file), &bytes)?;
        let entry = CheckpointEntry {
            epoch: found.epoch,
            file,
            sha256: checkpoint::sha256_hex(&bytes),
            imported: None,
            train_loss: None,
            train_accuracy: Vec::new(),
            val_accuracy: Vec::new(),
            diagnostics: None,
        };
        let network = load(writer.experiment(), config, &entry, device).with_context(|| {
            format!("{} (from {})", found.path.display(), relative_to(&base, &found.path))
        })?;
        if done == 0 {
            probe(&network, dataset, device)?;
        }
        let reports = measure(plan, &network, dataset, device, (done, total), progress)?;
        let accuracies = |split: Split| -> Vec<Option<f64>> {
            let report = reports.iter().find(|(s, _)| *s == split);
            report.map(|(_, r)| r.groups.iter().map(|g| g.accuracy).collect()).unwrap_or_default()
        };
        on_file(found, &imported, &reports);
        writer.record_external(CheckpointEntry {
            train_accuracy: accuracies(Split::Train),
            val_accuracy: accuracies(Split::Val),
            ..entry
        })?;
        progress.report(done + 1, total)?;
    }
    writer.finish()
}

/// The per-group accuracy of `network` on each split the plan measures.
fn measure(
    plan: &ImportPlan,
    network: &Network,
    dataset: &GroupedDataset,
    device: &Device,
    (done, total): (usize, usize),
    progress: &mut dyn Progress,
) -> Result<Vec<(Split, AccuracyReport)>> {
    let mut reports = Vec::new();
    for &split in &plan.evaluate {
        reports.push((
            split,
            evaluate(network, dataset, split, device, &mut Within::new(progress, done, total))?,
        ));
    }
    Ok(reports)
}
