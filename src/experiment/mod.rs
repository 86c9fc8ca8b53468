//! An experiment: a folder with `experiment.ron` (what was trained, on what, how, and
//! the list of checkpoints) and one checkpoint file per epoch.

pub mod checkpoint;
pub mod demo;
pub mod export;
pub mod manifest;
pub mod writer;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::*;

pub use manifest::{CheckpointEntry, FORMAT, MANIFEST, Manifest, OptimizerKind, TrainSettings};
pub use writer::ExperimentWriter;

use crate::model::Network;
use crate::util::fsx::write_atomic;

/// An experiment folder and its manifest.
#[derive(Clone, Debug)]
pub struct Experiment {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl Experiment {
    /// Reads `dir/experiment.ron`.
    pub fn open(dir: &Path) -> Result<Experiment> {
        let path = dir.join(MANIFEST);
        if !dir.is_dir() {
            bail!("experiment folder {} does not exist", dir.display());
        }
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!("cannot read {} (is {} an experiment folder?)", path.display(), dir.display())
        })?;
        let manifest: Manifest =
            ron::from_str(&text).map_err(|e| anyhow::anyhow!("{}:{e}", path.display()))?;
        if manifest.format != FORMAT {
            bail!(
                "{}: format {} is not supported (this memscope reads format {FORMAT})",
                path.display(),
                manifest.format
            );
        }
        if manifest.checkpoints.is_empty() {
            bail!("{}: the experiment lists no checkpoints", path.display());
        }
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
        checkpoint::load(&self.manifest.model, &self.dir.join(&entry.file), Some(&entry.sha256), device)
    }
}

/// "0..=40" for a contiguous run, "0, 5, 10" otherwise.
fn epoch_ranges(epochs: impl Iterator<Item = usize>) -> String {
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
pub fn checkpoint_file(epoch: usize) -> String {
    format!("epoch-{epoch:03}.safetensors")
}
