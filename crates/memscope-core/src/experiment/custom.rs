//! A burn user's own run as an experiment: the per-epoch burn records of a
//! [`BurnClassifier`](crate::model::BurnClassifier) (what `Module::save_file` writes), kept in
//! the experiment folder with the name the type is registered under
//! ([`crate::model::custom::register`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, ensure};
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;

use super::manifest::FORMAT;
use super::{CheckpointEntry, Experiment, ExperimentWriter, Manifest, checkpoint};
use crate::data::{DatasetSpec, GroupedDataset, Split};
use crate::eval::evaluate;
use crate::jobs::{Progress, Within};
use crate::model::custom::{self, CustomConfig};
use crate::model::{ModelConfig, Network};
use crate::util::fsx::{read_regular, write_atomic};

/// A burn record is its weights and a header: far below this.
const MAX_RECORD_BYTES: u64 = 8 << 30;

/// A run of a user's burn model to record as an experiment.
#[derive(Clone, Debug)]
pub struct CustomRun {
    /// The experiment's name.
    pub name: String,
    /// The name the model's type is registered under in this program.
    pub model: String,
    /// The data set the run was trained on (as `memscope` opens it).
    pub dataset: DatasetSpec,
    /// Each epoch's burn record (`Module::save_file`), epoch 0 the initialisation.
    pub epochs: Vec<(usize, PathBuf)>,
}

/// Records `run` as a new experiment at `out`: copies each epoch's record into it (with its
/// sha256), checks that it loads into the registered type, and measures per-group accuracy
/// on the train and val splits, as `memscope train` records its own epochs.
pub fn create(
    run: &CustomRun,
    dataset: &GroupedDataset,
    out: &Path,
    overwrite: bool,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<Experiment> {
    ensure!(!run.epochs.is_empty(), "the run has no epochs to record");
    let fresh = Network::Custom(custom::init(&run.model, device)?);
    let layers = fresh.layers();
    let config = CustomConfig {
        name: run.model.clone(),
        in_channels: dataset.image_shape[0],
        num_classes: dataset.class_names.len(),
        features: fresh.has_features(),
        layers,
    };
    let manifest = Manifest {
        format: FORMAT,
        name: run.name.clone(),
        model: ModelConfig::Custom(config.clone()),
        dataset: run.dataset.clone(),
        classes: dataset.class_names.clone(),
        groups: dataset.group_names.clone(),
        training: None,
        import: None,
        lineage: None,
        checkpoints: Vec::new(),
    };
    let mut writer = ExperimentWriter::create(out, manifest, overwrite)?;
    let total = run.epochs.len();
    for (done, (epoch, path)) in run.epochs.iter().enumerate() {
        let bytes = read_regular(path, "burn record", MAX_RECORD_BYTES)?;
        let file = format!("epoch-{epoch:03}.bpk");
        write_atomic(&writer.experiment().dir.join(&file), &bytes)?;
        let entry = CheckpointEntry {
            epoch: *epoch,
            file,
            sha256: checkpoint::sha256_hex(&bytes),
            imported: None,
            train_loss: None,
            train_accuracy: Vec::new(),
            val_accuracy: Vec::new(),
            diagnostics: None,
        };
        let network = load(writer.experiment(), &config, &entry, device)
            .with_context(|| format!("epoch {epoch} ({})", path.display()))?;
        let mut accuracy = |split: Split| -> Result<Vec<Option<f64>>> {
            if dataset.split(split).is_empty() {
                return Ok(Vec::new());
            }
            let report = evaluate(&network, dataset, split, device, &mut Within::new(progress, done, total))?;
            Ok(report.groups.iter().map(|g| g.accuracy).collect())
        };
        let train_accuracy = accuracy(Split::Train)?;
        let val_accuracy = accuracy(Split::Val)?;
        writer.record_external(CheckpointEntry { train_accuracy, val_accuracy, ..entry })?;
        progress.report(done + 1, total)?;
    }
    writer.finish()
}

/// The network of `epoch` of a custom experiment: the registered type with the epoch's burn
/// record, after checking the file against its recorded sha256.
pub(crate) fn load(
    experiment: &Experiment,
    config: &CustomConfig,
    entry: &CheckpointEntry,
    device: &Device,
) -> Result<Network> {
    let path = experiment.dir.join(&entry.file);
    let bytes = checkpoint::read_verified(&path, "checkpoint", MAX_RECORD_BYTES, Some(&entry.sha256))?;
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| anyhow!("checkpoint {} is not a burn record: {e}", path.display()))?;
    let network = custom::init(&config.name, device)?.with_record(record).with_context(|| {
        format!("checkpoint {} does not fit the burn model '{}'", path.display(), config.name)
    })?;
    Ok(Network::Custom(network))
}
