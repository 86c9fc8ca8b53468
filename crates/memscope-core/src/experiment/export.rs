//! Writing an experiment where any other tool can check memscope's numbers: checkpoints as
//! safetensors with PyTorch names and layouts, and each split's images, labels and groups
//! as safetensors too, with a JSON index.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use safetensors::{Dtype, tensor::TensorView};
use serde::{Deserialize, Serialize};

use super::Experiment;
use super::checkpoint::sha256_hex;
use crate::data::{GroupedDataset, Split};
use crate::jobs::Progress;
use crate::model::ModelConfig;
use crate::util::fsx::{Scratch, read_regular, write_atomic};

/// The index file of an export.
pub(crate) const EXPORT_INDEX: &str = "export.json";
/// A checkpoint memscope reads whole; ResNet-50 in float64 is about 200 MB.
const MAX_CHECKPOINT_BYTES: u64 = 4 << 30;

/// `export.json`: what was written and what it means.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportIndex {
    pub name: String,
    pub model: ModelConfig,
    pub classes: Vec<String>,
    pub groups: Vec<String>,
    /// Weights of the conventional mean accuracy.
    pub train_proportions: Vec<f64>,
    /// Checkpoint files by epoch: PyTorch state-dict names, `Linear.weight` as `[out, in]`.
    pub checkpoints: Vec<(usize, String)>,
    /// Data files by split: `images` f32 `[n, c, h, w]` in [0, 1], `labels`, `groups` and
    /// `sources` (row in the source file) int64 `[n]`.
    pub data: Vec<(Split, String)>,
}

fn view(dtype: Dtype, shape: Vec<usize>, bytes: &[u8]) -> Result<TensorView<'_>> {
    TensorView::new(dtype, shape, bytes).map_err(|e| anyhow!("cannot build a tensor view: {e}"))
}

fn bytes_of<T: Copy, const N: usize>(values: &[T], to_le: fn(T) -> [u8; N]) -> Vec<u8> {
    values.iter().flat_map(|&v| to_le(v)).collect()
}

/// The safetensors bytes of one split.
pub fn encode_split(dataset: &GroupedDataset, split: Split) -> Result<Vec<u8>> {
    let data = dataset.split(split);
    let n = data.len();
    let [c, h, w] = dataset.image_shape;
    let all: Vec<usize> = (0..n).collect();
    let images = bytes_of(&dataset.images(split, &all)?, f32::to_le_bytes);
    let as_i64 = |v: &[usize]| v.iter().map(|&x| x as i64).collect::<Vec<_>>();
    let labels = bytes_of(&as_i64(&data.labels), i64::to_le_bytes);
    let groups = bytes_of(&as_i64(&data.groups), i64::to_le_bytes);
    let sources = bytes_of(&as_i64(&data.sources), i64::to_le_bytes);
    let tensors = vec![
        ("images", view(Dtype::F32, vec![n, c, h, w], &images)?),
        ("labels", view(Dtype::I64, vec![n], &labels)?),
        ("groups", view(Dtype::I64, vec![n], &groups)?),
        ("sources", view(Dtype::I64, vec![n], &sources)?),
    ];
    let metadata = HashMap::from([
        ("split".to_string(), split.to_string()),
        ("groups".to_string(), serde_json::to_string(&dataset.group_names)?),
        ("classes".to_string(), serde_json::to_string(&dataset.class_names)?),
    ]);
    safetensors::serialize(tensors, Some(metadata))
        .map_err(|e| anyhow!("cannot encode the {split} split: {e}"))
}

/// Writes the checkpoints of `epochs` and the data of `splits` to `out`. Everything is
/// checked and written into a hidden staging folder inside `out` first and moved into place
/// only when all of it is there: a refused request or an error (or a cancellation through
/// `progress`, one unit per file) leaves `out` as it was.
pub fn export(
    experiment: &Experiment,
    dataset: &GroupedDataset,
    epochs: &[usize],
    splits: &[Split],
    out: &Path,
    progress: &mut dyn Progress,
) -> Result<ExportIndex> {
    if out.join(super::MANIFEST).exists() {
        bail!("{} holds an experiment; export to another folder", out.display());
    }
    if let Ok(meta) = std::fs::metadata(out)
        && !meta.is_dir()
    {
        bail!("--out {} exists and is not a folder", out.display());
    }
    for &epoch in epochs {
        experiment.checkpoint(epoch)?;
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let staging = Scratch::create(out, true)
        .with_context(|| format!("cannot create a staging folder in {}", out.display()))?;
    let mut index = ExportIndex {
        name: experiment.manifest.name.clone(),
        model: experiment.manifest.model.clone(),
        classes: dataset.class_names.clone(),
        groups: dataset.group_names.clone(),
        train_proportions: dataset.train_proportions(),
        checkpoints: Vec::new(),
        data: Vec::new(),
    };
    let total = epochs.len() + splits.len();
    for &epoch in epochs {
        let entry = experiment.checkpoint(epoch)?;
        let (file, bytes) = if entry.imported.is_some() {
            // An imported file is written as memscope's own: safetensors, PyTorch names, head
            // rows in class order.
            let device = crate::device::DeviceSpec::Cpu.device()?;
            (
                super::checkpoint_file(epoch),
                super::checkpoint::encode(&experiment.load_network(epoch, &device)?)?,
            )
        } else {
            let source = experiment.checkpoint_path(epoch)?;
            let bytes = read_regular(&source, "checkpoint", MAX_CHECKPOINT_BYTES)?;
            if sha256_hex(&bytes) != entry.sha256 {
                bail!(
                    "checkpoint {} is corrupt or was replaced: its sha256 differs from experiment.ron",
                    source.display()
                );
            }
            (entry.file.clone(), bytes)
        };
        write_atomic(&staging.path.as_path().join(&file), &bytes)?;
        index.checkpoints.push((epoch, file));
        progress.report(index.checkpoints.len(), total)?;
    }
    for &split in splits {
        let file = format!("data-{split}.safetensors");
        write_atomic(&staging.path.as_path().join(&file), &encode_split(dataset, split)?)?;
        index.data.push((split, file));
        progress.report(index.checkpoints.len() + index.data.len(), total)?;
    }
    let json = serde_json::to_string_pretty(&index).context("cannot serialise export.json")?;
    write_atomic(&staging.path.as_path().join(EXPORT_INDEX), json.as_bytes())?;
    let files = index.checkpoints.iter().map(|c| &c.1).chain(index.data.iter().map(|d| &d.1));
    let _publishing = crate::util::interrupt::publishing();
    for file in files.chain(std::iter::once(&EXPORT_INDEX.to_string())) {
        std::fs::rename(staging.path.as_path().join(file), out.join(file))
            .with_context(|| format!("cannot move {file} into {}", out.display()))?;
    }
    Ok(index)
}
