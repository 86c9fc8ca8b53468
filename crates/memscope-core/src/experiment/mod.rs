//! An experiment: a folder with `experiment.ron` (what was trained, on what, how, and
//! the list of checkpoints) and one checkpoint file per epoch.

pub mod checkpoint;
pub mod custom;
pub mod demo;
pub mod detect;
pub mod export;
pub mod foreign;
pub mod import;
pub mod lineage;
pub(crate) mod manifest;
pub mod torchscript;
pub(crate) mod writer;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::*;

pub use manifest::{
    BURN_ADAM_EPSILON, CheckpointEntry, CrossEntropyOn, Diagnostics, FORMAT, ImportedFile, MANIFEST,
    Manifest, OptimizerKind, SGD_MOMENTUM, Schedule, TORCH_ADAM_EPSILON, TrainSettings,
};
pub use manifest::{ImportSource, LearningRate};
pub use writer::ExperimentWriter;

use crate::model::Network;
use crate::util::fsx::{LINK_LOOP, clip, is_link_loop, read_regular, write_atomic};

/// `experiment.ron` lists settings and one line per checkpoint: far below this.
const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// An experiment folder and its manifest.
#[derive(Clone, Debug)]
pub struct Experiment {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl Experiment {
    /// Reads `dir/experiment.ron` and checks that it describes a usable experiment.
    pub fn open(dir: &Path) -> Result<Experiment> {
        let path = dir.join(MANIFEST);
        match std::fs::metadata(dir) {
            Err(e) if is_link_loop(&e) => bail!("experiment folder {} {LINK_LOOP}", dir.display()),
            Err(_) => bail!("experiment folder {} does not exist", dir.display()),
            Ok(meta) if !meta.is_dir() => {
                bail!(
                    "{} is a file, not an experiment folder (pass the folder that holds {MANIFEST})",
                    dir.display()
                )
            }
            Ok(_) => {}
        }
        // A link that leads nowhere is there: reading it says why it cannot be followed.
        if std::fs::symlink_metadata(&path).is_err() {
            bail!("{} has no {MANIFEST}: it is not an experiment folder", dir.display());
        }
        let bytes = read_regular(&path, "experiment file", MAX_MANIFEST_BYTES)?;
        let text =
            String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8 text", path.display()))?;
        // `training: (...)` as written before it became optional reads as `Some(...)`.
        let manifest: Manifest = ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
            .from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}:{}", path.display(), clip(&e.to_string(), 300)))?;
        manifest.check().with_context(|| path.display().to_string())?;
        Ok(Experiment { dir: dir.to_path_buf(), manifest })
    }

    /// Writes the manifest atomically.
    pub fn save(&self) -> Result<()> {
        let text = ron::ser::to_string_pretty(&self.manifest, ron::ser::PrettyConfig::default())
            .context("cannot serialise experiment.ron")?;
        write_atomic(&self.dir.join(MANIFEST), text.as_bytes())
    }

    pub fn epochs(&self) -> impl Iterator<Item = usize> + '_ {
        self.manifest.checkpoints.iter().map(|c| c.epoch)
    }

    pub fn last_epoch(&self) -> usize {
        self.epochs().max().unwrap_or(0)
    }

    /// The checkpoint of `epoch`, or an error listing the epochs there are.
    pub fn checkpoint(&self, epoch: usize) -> Result<&CheckpointEntry> {
        self.manifest.checkpoints.iter().find(|c| c.epoch == epoch).with_context(|| {
            format!(
                "epoch {epoch} is not in {} (valid: {})",
                self.dir.join(MANIFEST).display(),
                epoch_ranges(self.epochs())
            )
        })
    }

    /// Loads the network of `epoch` onto `device`.
    pub fn load_network(&self, epoch: usize, device: &Device) -> Result<Network> {
        let entry = self.checkpoint(epoch)?;
        if let crate::model::ModelConfig::TorchScript(config) = &self.manifest.model {
            return torchscript::load(self, config, entry, device);
        }
        if let crate::model::ModelConfig::Custom(config) = &self.manifest.model {
            return custom::load(self, config, entry, device);
        }
        if entry.imported.is_some() {
            return import::load(self, entry, device);
        }
        checkpoint::load(&self.manifest.model, &self.dir.join(&entry.file), Some(&entry.sha256), device)
    }

    /// The path of the checkpoint of `epoch` (inside the experiment folder unless imported).
    pub fn checkpoint_path(&self, epoch: usize) -> Result<PathBuf> {
        Ok(self.dir.join(&self.checkpoint(epoch)?.file))
    }
}

/// "0..=40" for a contiguous run, "0, 5, 10" otherwise.
pub fn epoch_ranges(epochs: impl Iterator<Item = usize>) -> String {
    let mut epochs: Vec<usize> = epochs.collect();
    epochs.sort_unstable();
    match (epochs.first(), epochs.last()) {
        (Some(&first), Some(&last)) if last - first + 1 == epochs.len() && epochs.len() > 2 => {
            format!("{first}..={last}")
        }
        _ => epochs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", "),
    }
}

/// File name of the checkpoint of `epoch`.
pub(crate) fn checkpoint_file(epoch: usize) -> String {
    format!("epoch-{epoch:03}.safetensors")
}
