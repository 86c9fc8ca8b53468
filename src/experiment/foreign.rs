//! Checkpoints written by other tools: PyTorch's `torch.save` files (`.pt`, `.pth`,
//! `.pth.tar`, `.bin`; zip and legacy containers; never executing pickle code) and
//! safetensors files. Each is turned into float32-ready safetensors bytes with PyTorch
//! names, which [`super::checkpoint::decode`] loads like memscope's own checkpoints.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use burn::store::pytorch_reader::{DType as TorchDType, PytorchReader};
use safetensors::Dtype;
use safetensors::tensor::TensorView;
use serde::{Deserialize, Serialize};

use crate::util::fsx::read_regular;

/// Dictionaries that hold a state dict inside a checkpoint, tried in this order.
pub const WRAPPERS: [&str; 3] = ["model_state_dict", "state_dict", "model"];
/// Prefixes put before every name by `nn.DataParallel` (`module.`) or a wrapping module.
pub const PREFIXES: [&str; 2] = ["module.", "model."];
/// Any checkpoint memscope reads is below this (ResNet-50 in float64 with optimizer state).
const MAX_BYTES: u64 = 8 << 30;

/// What reading a file found, for the user (and the experiment's record).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReadNotes {
    /// `pytorch` or `safetensors`.
    pub format: String,
    /// The dictionary the state dict came from (`model_state_dict`, …), if any.
    pub wrapper: Option<String>,
    /// The prefix stripped from every name (`module.`), if any.
    pub stripped_prefix: Option<String>,
    /// Tensors in the file that are not part of the state dict (optimizer state, …).
    pub ignored: usize,
}

/// The checkpoint at `path` as safetensors bytes with PyTorch names (dtypes as stored).
pub fn read(path: &Path) -> Result<(Vec<u8>, ReadNotes)> {
    let bytes = read_regular(path, "checkpoint", MAX_BYTES)?;
    if safetensors::SafeTensors::deserialize(&bytes).is_ok() {
        return Ok((bytes, ReadNotes { format: "safetensors".into(), ..Default::default() }));
    }
    drop(bytes);
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
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::with_capacity(keys.len());
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
    let views = tensors
        .iter()
        .map(|(name, dtype, shape, data)| {
            TensorView::new(*dtype, shape.clone(), data).map(|v| (name.clone(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let bytes = safetensors::serialize(views, None).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok((bytes, notes))
}
