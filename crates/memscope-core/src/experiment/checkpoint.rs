//! Checkpoint files: safetensors with PyTorch parameter names and layouts
//! (Linear weights `[out, in]`, BatchNorm `weight`/`bias`), so any tool can read them.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use burn::module::Module;
use burn::prelude::*;
use burn::store::{ApplyError, BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use sha2::{Digest, Sha256};

use crate::model::{ModelConfig, Network};
use crate::util::fsx::{read_regular, write_atomic};

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The checkpoint bytes of `model`.
pub fn encode(model: &Network) -> Result<Vec<u8>> {
    let mut store = SafetensorsStore::from_bytes(None)
        .with_to_adapter(BurnToPyTorchAdapter)
        .skip_enum_variants(true)
        .metadata("producer", "memscope");
    model.save_into(&mut store).map_err(|e| anyhow::anyhow!("cannot encode checkpoint: {e}"))?;
    let bytes = store.get_bytes().map_err(|e| anyhow::anyhow!("cannot encode checkpoint: {e}"))?;
    canonical_header(bytes)
}

/// The same safetensors bytes with the header's keys in sorted order: burn writes its
/// metadata from a hash map, so the same weights would otherwise give files (and sha256s)
/// that differ from one process to the next. Only the header's order changes: its length,
/// the offsets and the data stay as they were.
fn canonical_header(mut bytes: Vec<u8>) -> Result<Vec<u8>> {
    fn sorted(value: &serde_json::Value) -> String {
        match value {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<(&String, &serde_json::Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                let inner: Vec<String> = entries
                    .into_iter()
                    .map(|(k, v)| format!("{}:{}", serde_json::Value::String(k.clone()), sorted(v)))
                    .collect();
                format!("{{{}}}", inner.join(","))
            }
            other => other.to_string(),
        }
    }
    let len = bytes.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(u64::from_le_bytes);
    let Some(len) = len.and_then(|l| usize::try_from(l).ok()).filter(|&l| 8 + l <= bytes.len()) else {
        bail!("cannot encode checkpoint: burn wrote no safetensors header");
    };
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + len])
        .map_err(|e| anyhow::anyhow!("cannot encode checkpoint: unreadable header ({e})"))?;
    let mut text = sorted(&header).into_bytes();
    if text.len() > len {
        bail!("cannot encode checkpoint: the sorted header is longer than burn's");
    }
    text.resize(len, b' ');
    bytes[8..8 + len].copy_from_slice(&text);
    Ok(bytes)
}

/// Writes `model` to `path` atomically; returns the file's sha256.
pub fn save(model: &Network, path: &Path) -> Result<String> {
    let bytes = encode(model)?;
    write_atomic(path, &bytes)?;
    Ok(sha256_hex(&bytes))
}

/// The bytes of the regular file at `path` (at most `limit`; `what` names it in errors), refused
/// when `expected_sha256` is given and the file's differs: a checkpoint or module that is
/// corrupt or was replaced after experiment.ron recorded it.
pub(crate) fn read_verified(
    path: &Path,
    what: &str,
    limit: u64,
    expected_sha256: Option<&str>,
) -> Result<Vec<u8>> {
    let bytes = read_regular(path, what, limit)?;
    if let Some(expected) = expected_sha256 {
        let actual = sha256_hex(&bytes);
        if actual != expected {
            bail!(
                "{what} {} is corrupt or was replaced: its sha256 is {actual}, experiment.ron records {expected}",
                path.display()
            );
        }
    }
    Ok(bytes)
}

/// Reads the checkpoint at `path` into a network of architecture `config` on `device`.
/// When `expected_sha256` is given, a file that does not match it is refused. Only a regular
/// file of plausible size is read (never a pipe or device, never gigabytes for a small model).
pub fn load(
    config: &ModelConfig,
    path: &Path,
    expected_sha256: Option<&str>,
    device: &Device,
) -> Result<Network> {
    let model = config.init(device)?;
    // float64 weights plus headers and buffers; a file far above this is not this model's.
    let limit = model.num_params() as u64 * 8 * 2 + (16 << 20);
    let bytes = read_verified(path, "checkpoint", limit, expected_sha256)?;
    let bytes = as_float32(bytes).with_context(|| format!("checkpoint {}", path.display()))?;
    apply(model, bytes, "the model in experiment.ron")
        .with_context(|| format!("checkpoint {}", path.display()))
}

/// Decodes checkpoint bytes into a network, requiring every parameter with its exact shape.
pub fn decode(config: &ModelConfig, bytes: Vec<u8>, device: &Device) -> Result<Network> {
    apply(config.init(device)?, as_float32(bytes)?, &config.describe())
}

/// The same safetensors bytes with every float16, bfloat16 and float64 tensor cast to
/// float32 (what the network computes in), after checking that every float is finite and
/// every BatchNorm running variance non-negative. PyTorch's `num_batches_tracked` counters
/// (unused in evaluation) are dropped; any other non-float dtype is refused by name.
pub(crate) fn as_float32(bytes: Vec<u8>) -> Result<Vec<u8>> {
    let file =
        SafeTensors::deserialize(&bytes).map_err(|e| anyhow!("not a readable safetensors file ({e})"))?;
    let mut needs_cast = false;
    for (name, view) in file.iter() {
        match view.dtype() {
            Dtype::F32 | Dtype::F64 | Dtype::F16 | Dtype::BF16 => {}
            _ if name.ends_with("num_batches_tracked") => {
                needs_cast = true;
                continue;
            }
            other => bail!(
                "tensor '{name}' has dtype {other:?}; memscope reads float32, float16, bfloat16 and float64 weights"
            ),
        }
        needs_cast |= view.dtype() != Dtype::F32;
        let values = floats(&view);
        if let Some(v) = values.iter().find(|v| !v.is_finite()) {
            bail!("tensor '{name}' holds a non-finite value ({v}): the model cannot be evaluated");
        }
        if name.ends_with("running_var")
            && let Some(v) = values.iter().find(|v| **v < 0.0)
        {
            bail!("tensor '{name}' holds a negative BatchNorm running variance ({v})");
        }
    }
    if !needs_cast {
        return Ok(bytes);
    }
    let converted: Vec<super::foreign::OwnedTensor> = file
        .iter()
        .filter(|(name, _)| !name.ends_with("num_batches_tracked"))
        .map(|(name, view)| match view.dtype() {
            Dtype::F64 | Dtype::F16 | Dtype::BF16 => {
                let le = floats(&view).iter().flat_map(|v| v.to_le_bytes()).collect();
                (name.to_string(), Dtype::F32, view.shape().to_vec(), le)
            }
            dtype => (name.to_string(), dtype, view.shape().to_vec(), view.data().to_vec()),
        })
        .collect();
    let metadata = SafeTensors::read_metadata(&bytes).ok().and_then(|(_, m)| m.metadata().clone());
    super::foreign::serialize(&converted, metadata).context("cannot cast the checkpoint to float32")
}

/// The values of a float tensor as f32 (little-endian storage, as safetensors has it).
fn floats(view: &TensorView<'_>) -> Vec<f32> {
    let data = view.data();
    match view.dtype() {
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        Dtype::F16 => data.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        Dtype::BF16 => {
            data.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect()
        }
        _ => data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
    }
}

/// Loads float32 safetensors bytes into `model`, requiring every parameter with its exact
/// shape. Shapes are named in the file's (PyTorch) layout.
fn apply(mut model: Network, bytes: Vec<u8>, what_model: &str) -> Result<Network> {
    let mut store = SafetensorsStore::from_bytes(Some(bytes))
        .with_from_adapter(PyTorchToBurnAdapter)
        .skip_enum_variants(true)
        .validate(false)
        .allow_partial(true);
    let result = model.load_from(&mut store).map_err(|e| anyhow!("not a readable safetensors file ({e})"))?;
    if !result.errors.is_empty() {
        let mut hint = String::new();
        let described: Vec<String> = result
            .errors
            .iter()
            .map(|error| match error {
                ApplyError::ShapeMismatch { path, expected, found } => {
                    // burn stores a Linear weight [in, out]; the file and the user think [out, in].
                    let linear = |shape: &[usize]| {
                        let mut shape = shape.to_vec();
                        if shape.len() == 2 && path.ends_with("weight") {
                            shape.reverse();
                        }
                        shape
                    };
                    let (found, expected) = (linear(found), linear(expected));
                    // A classifier whose output count differs: the most common mistake.
                    if hint.is_empty()
                        && found.len() == 2
                        && found[1] == expected[1]
                        && found[0] != expected[0]
                    {
                        hint = format!(": a {}-class head? pass --classes {}", found[0], found[0]);
                    }
                    let path = torch_name(path);
                    format!("'{path}' {expected:?} expected, {found:?} found")
                }
                other => other.to_string(),
            })
            .collect();
        let n = described.len();
        let shown = described.iter().take(3).cloned().collect::<Vec<_>>().join("; ");
        let more = if n > 3 { format!("; {} more", n - 3) } else { String::new() };
        let architecture = if n > 3 && hint.is_empty() { ": another architecture?" } else { "" };
        bail!("does not fit {what_model}: shapes differ: {shown}{more}{hint}{architecture}");
    }
    if !result.missing.is_empty() {
        let missing: Vec<String> = result.missing.iter().map(|(name, _)| torch_name(name)).collect();
        let has = |names: &[String], name: &str| names.iter().any(|n| n == name);
        let hint = if has(&missing, "fc.weight") && has(&result.unused, "fc.0.weight") {
            ": the file has the authors' Linear+Softmax head (`fc.0`): pass --head softmax"
        } else if has(&missing, "fc.0.weight") && has(&result.unused, "fc.weight") {
            ": the file has a plain `fc` head: pass --head linear"
        } else if has(&missing, "head.weight") && has(&result.unused, "head.0.weight") {
            ": the file has the authors' Linear+Softmax head (`head.0`): pass --head softmax"
        } else if has(&missing, "head.0.weight") && has(&result.unused, "head.weight") {
            ": the file has a plain `head`: pass --head linear"
        } else {
            ": another architecture?"
        };
        let shown = missing.iter().take(3).map(|m| format!("'{m}'")).collect::<Vec<_>>().join(", ");
        bail!(
            "does not fit {what_model}: {shown} missing ({} missing in all; the file holds {} tensors where the \
             model has {}){hint}",
            missing.len(),
            result.applied.len() + result.unused.len(),
            result.applied.len() + result.missing.len()
        );
    }
    if !result.unused.is_empty() {
        let shown = result.unused.iter().take(3).map(|m| format!("'{m}'")).collect::<Vec<_>>().join(", ");
        bail!(
            "does not fit {what_model}: it holds {shown} ({} in all), which the model has no place for",
            result.unused.len()
        );
    }
    Ok(model)
}

/// A parameter's name as PyTorch says it (burn's BatchNorm `gamma`/`beta` are `weight`/`bias`).
fn torch_name(path: &str) -> String {
    match path.rsplit_once('.') {
        Some((stem, "gamma")) => format!("{stem}.weight"),
        Some((stem, "beta")) => format!("{stem}.bias"),
        _ => path.to_string(),
    }
}
