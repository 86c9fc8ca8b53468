//! Checkpoints written by other tools: PyTorch's `torch.save` files (`.pt`, `.pth`,
//! `.pth.tar`, `.bin`; zip and legacy containers; never executing pickle code), safetensors
//! files and burn's burnpack (`.bpk`, what `Module::save_file` and burn-train's checkpointer
//! write). Each is turned into safetensors bytes with PyTorch names and layouts, which
//! [`super::checkpoint::decode`] loads like memscope's own checkpoints.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use burn::store::pytorch_reader::{DType as TorchDType, PytorchReader};
use safetensors::Dtype;
use safetensors::tensor::TensorView;
use serde::{Deserialize, Serialize};

use crate::util::fsx::read_regular;

/// Dictionaries that hold a state dict inside a checkpoint, tried in this order.
pub(crate) const WRAPPERS: [&str; 3] = ["model_state_dict", "state_dict", "model"];
/// Prefixes put before every name by `nn.DataParallel` (`module.`) or a wrapping module.
pub(crate) const PREFIXES: [&str; 2] = ["module.", "model."];
/// Any checkpoint memscope reads is below this (ResNet-50 in float64 with optimizer state).
const MAX_BYTES: u64 = 8 << 30;

/// What reading a file found, for the user (and the experiment's record).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReadNotes {
    /// `pytorch`, `safetensors` or `burnpack`.
    pub format: String,
    /// The dictionary the state dict came from (`model_state_dict`, …), if any.
    pub wrapper: Option<String>,
    /// The prefix stripped from every name (`module.`), if any.
    pub stripped_prefix: Option<String>,
    /// Tensors in the file that are not part of the state dict (optimizer state, …).
    pub ignored: usize,
}

/// A checkpoint file read: its tensors as safetensors bytes with PyTorch names and layouts
/// (dtypes as stored), what reading it found, and the file's own size and sha256.
pub(crate) struct Foreign {
    pub bytes: Vec<u8>,
    pub notes: ReadNotes,
    pub size: u64,
    pub sha256: String,
}

/// The checkpoint at `path` as safetensors bytes with PyTorch names (dtypes as stored).
pub fn read(path: &Path) -> Result<(Vec<u8>, ReadNotes)> {
    read_file(path).map(|f| (f.bytes, f.notes))
}

/// The checkpoint at `path`, with the size and sha256 of the file as read.
pub(crate) fn read_file(path: &Path) -> Result<Foreign> {
    let bytes = read_regular(path, "checkpoint", MAX_BYTES)?;
    let size = bytes.len() as u64;
    let sha256 = super::checkpoint::sha256_hex(&bytes);
    let (bytes, notes) = if safetensors::SafeTensors::deserialize(&bytes).is_ok() {
        (bytes, ReadNotes { format: "safetensors".into(), ..Default::default() })
    } else if bytes.starts_with(BURNPACK_MAGIC) {
        burnpack(path, bytes)?
    } else {
        drop(bytes);
        pytorch(path)?
    };
    Ok(Foreign { bytes, notes, size, sha256 })
}

/// The first bytes of a burnpack file (`u32` 0x4255524E, little-endian).
const BURNPACK_MAGIC: &[u8] = b"NRUB";

/// A `torch.save` file through burn's pickle reader (which never runs pickle code).
fn pytorch(path: &Path) -> Result<(Vec<u8>, ReadNotes)> {
    let reader = PytorchReader::new(path).map_err(|e| {
        anyhow!("{} is neither a PyTorch checkpoint nor a safetensors file ({e})", path.display())
    })?;
    let mut notes = ReadNotes { format: "pytorch".into(), ..Default::default() };
    let all = reader.keys();
    let mut keys: Vec<(String, String)> = all.iter().map(|k| (k.clone(), k.clone())).collect();
    if let Some(wrapper) = WRAPPERS.iter().find(|w| all.iter().any(|k| k.starts_with(&format!("{w}.")))) {
        let prefix = format!("{wrapper}.");
        keys =
            all.iter().filter_map(|k| k.strip_prefix(&prefix).map(|s| (k.clone(), s.to_string()))).collect();
        notes.wrapper = Some(wrapper.to_string());
    }
    notes.ignored = all.len() - keys.len();
    if let Some(prefix) =
        PREFIXES.iter().find(|p| !keys.is_empty() && keys.iter().all(|(_, k)| k.starts_with(**p)))
    {
        for (_, name) in &mut keys {
            *name = name[prefix.len()..].to_string();
        }
        notes.stripped_prefix = Some(prefix.to_string());
    }
    if keys.is_empty() {
        bail!("{} holds no tensors", path.display());
    }
    let mut tensors: Vec<OwnedTensor> = Vec::with_capacity(keys.len());
    for (source, name) in keys {
        let Some(tensor) = reader.get(&source) else { continue };
        let dtype = match tensor.dtype() {
            TorchDType::F64 => Dtype::F64,
            TorchDType::F32 => Dtype::F32,
            TorchDType::F16 => Dtype::F16,
            TorchDType::BF16 => Dtype::BF16,
            TorchDType::I64 => Dtype::I64,
            TorchDType::I32 => Dtype::I32,
            other => bail!(
                "{}: tensor '{source}' has dtype {other:?}, not a weight memscope reads",
                path.display()
            ),
        };
        let data =
            tensor.read().with_context(|| format!("{}: cannot read tensor '{source}'", path.display()))?;
        tensors.push((name, dtype, tensor.shape().to_vec(), data));
    }
    let bytes = serialize(&tensors, None).with_context(|| path.display().to_string())?;
    Ok((bytes, notes))
}

/// A burnpack file: burn's names and layouts, turned into PyTorch's. Enum variants in names
/// are removed; BatchNorm's `gamma`/`beta` become `weight`/`bias`; a Linear weight, stored `[in,
/// out]` by burn, is transposed to PyTorch's `[out, in]`; burn's own ResNet layout
/// (`layer1.blocks.0.…`, `downsample.conv`/`downsample.bn`) becomes torchvision's.
fn burnpack(path: &Path, bytes: Vec<u8>) -> Result<(Vec<u8>, ReadNotes)> {
    use burn::store::burn_pack::Reader;
    let fail =
        |e: &dyn std::fmt::Display| anyhow!("{} is not a readable burnpack file ({e})", path.display());
    let reader = Reader::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes)).map_err(|e| fail(&e))?;
    let tensors = reader.into_tensors().map_err(|e| fail(&e))?;
    if tensors.is_empty() {
        bail!("{} holds no tensors", path.display());
    }
    let mut notes = ReadNotes { format: "burnpack".into(), ..Default::default() };
    // burn names an enum's variant as a path segment (`ResNet.conv1.weight`,
    // `layer1.0.Basic.conv1.weight`, `fc.Linear.weight`); fields are snake_case, so every
    // segment starting with a capital letter is a variant and is removed.
    let first = tensors[0].name.split('.').next().unwrap_or("").to_string();
    if first.starts_with(|c: char| c.is_ascii_uppercase())
        && tensors.iter().all(|t| t.name.starts_with(&format!("{first}.")))
    {
        notes.stripped_prefix = Some(format!("{first}."));
    }
    let mut converted: Vec<OwnedTensor> = Vec::with_capacity(tensors.len());
    for tensor in tensors {
        let mut name = tensor
            .name
            .split('.')
            .filter(|segment| !segment.starts_with(|c: char| c.is_ascii_uppercase()))
            .collect::<Vec<_>>()
            .join(".");
        name = torchvision_name(&name);
        let dtype = match tensor.dtype {
            burn::tensor::DType::F64 => Dtype::F64,
            burn::tensor::DType::F32 => Dtype::F32,
            burn::tensor::DType::F16 => Dtype::F16,
            burn::tensor::DType::BF16 => Dtype::BF16,
            burn::tensor::DType::I64 => Dtype::I64,
            burn::tensor::DType::I32 => Dtype::I32,
            other => bail!(
                "{}: tensor '{}' has dtype {other:?}, not a weight memscope reads",
                path.display(),
                tensor.name
            ),
        };
        let shape: Vec<usize> = tensor.shape.iter().copied().collect();
        let data = tensor
            .to_bytes()
            .map_err(|e| anyhow!("{}: cannot read tensor '{}' ({e})", path.display(), tensor.name))?
            .to_vec();
        if let Some(stem) = name.strip_suffix(".gamma") {
            name = format!("{stem}.weight");
        } else if let Some(stem) = name.strip_suffix(".beta") {
            name = format!("{stem}.bias");
        }
        let (shape, data) = if shape.len() == 2 && name.ends_with(".weight") {
            (vec![shape[1], shape[0]], transpose(&data, shape[0], shape[1], dtype.bitsize() / 8))
        } else {
            (shape, data)
        };
        converted.push((name, dtype, shape, data));
    }
    let bytes = serialize(&converted, None).with_context(|| path.display().to_string())?;
    Ok((bytes, notes))
}

/// burn's ResNet layout (`layer1.blocks.0.conv1`, `downsample.conv`, `downsample.bn`) in
/// torchvision's names; any other name unchanged.
fn torchvision_name(name: &str) -> String {
    let mut parts: Vec<&str> = name.split('.').collect();
    if parts.len() > 2 && parts[0].starts_with("layer") && parts[1] == "blocks" {
        parts.remove(1);
    }
    let mut name = parts.join(".");
    for (from, to) in [(".downsample.conv.", ".downsample.0."), (".downsample.bn.", ".downsample.1.")] {
        name = name.replace(from, to);
    }
    name
}

/// A row-major `[rows, cols]` matrix of `width`-byte elements as `[cols, rows]`.
fn transpose(data: &[u8], rows: usize, cols: usize, width: usize) -> Vec<u8> {
    let mut out = vec![0u8; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            let from = (r * cols + c) * width;
            let to = (c * rows + r) * width;
            out[to..to + width].copy_from_slice(&data[from..from + width]);
        }
    }
    out
}

/// The same safetensors bytes with the first-axis rows of each tensor in `names` put in
/// `order` (row i of the result is row `order[i]` of the file): a classifier head whose
/// output i stands for class `label_order[i]` becomes one in class order when `order` is
/// the inverse of `label_order`.
pub(crate) fn reorder_rows(bytes: Vec<u8>, names: &[String], order: &[usize]) -> Result<Vec<u8>> {
    let file = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow!("not a readable safetensors file ({e})"))?;
    for name in names {
        let view = file.tensor(name).map_err(|_| anyhow!("the head tensor '{name}' is missing"))?;
        anyhow::ensure!(
            view.shape().first() == Some(&order.len()),
            "the head tensor '{name}' has shape {:?}, not {} rows (one per class)",
            view.shape(),
            order.len()
        );
    }
    let tensors: Vec<OwnedTensor> = file
        .iter()
        .map(|(name, view)| {
            let data = if names.iter().any(|n| n == name) {
                let row = view.data().len() / order.len();
                order.iter().flat_map(|&i| view.data()[i * row..(i + 1) * row].iter().copied()).collect()
            } else {
                view.data().to_vec()
            };
            (name.to_string(), view.dtype(), view.shape().to_vec(), data)
        })
        .collect();
    let metadata =
        safetensors::SafeTensors::read_metadata(&bytes).ok().and_then(|(_, m)| m.metadata().clone());
    serialize(&tensors, metadata).context("cannot reorder the head")
}

/// A tensor as (name, dtype, shape, little-endian bytes).
pub(crate) type OwnedTensor = (String, Dtype, Vec<usize>, Vec<u8>);

/// `tensors` (and `metadata`) as safetensors bytes.
pub fn serialize(
    tensors: &[OwnedTensor],
    metadata: Option<std::collections::HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let views = tensors
        .iter()
        .map(|(name, dtype, shape, data)| {
            TensorView::new(*dtype, shape.clone(), data).map(|v| (name.clone(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("inconsistent tensor ({e})"))?;
    safetensors::serialize(views, metadata).map_err(|e| anyhow!("cannot write safetensors ({e})"))
}
