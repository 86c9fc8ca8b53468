//! Checkpoint files: safetensors with PyTorch parameter names and layouts
//! (Linear weights `[out, in]`, BatchNorm `weight`/`bias`), so any tool can read them.

use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use burn::store::{ApplyError, BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use sha2::{Digest, Sha256};

use crate::model::{ModelConfig, Network};
use crate::util::fsx::write_atomic;

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
    store.get_bytes().map_err(|e| anyhow::anyhow!("cannot encode checkpoint: {e}"))
}

/// Writes `model` to `path` atomically; returns the file's sha256.
pub fn save(model: &Network, path: &Path) -> Result<String> {
    let bytes = encode(model)?;
    write_atomic(path, &bytes)?;
    Ok(sha256_hex(&bytes))
}

/// Reads the checkpoint at `path` into a network of architecture `config` on `device`.
/// When `expected_sha256` is given, a file that does not match it is refused.
pub fn load(
    config: &ModelConfig,
    path: &Path,
    expected_sha256: Option<&str>,
    device: &Device,
) -> Result<Network> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read checkpoint {}", path.display()))?;
    if let Some(expected) = expected_sha256 {
        let actual = sha256_hex(&bytes);
        if actual != expected {
            bail!(
                "checkpoint {} is corrupt or was replaced: its sha256 is {actual}, experiment.ron records {expected}",
                path.display()
            );
        }
    }
    decode(config, bytes, device).with_context(|| format!("checkpoint {}", path.display()))
}

/// Decodes checkpoint bytes into a network, requiring every parameter with its exact shape.
pub fn decode(config: &ModelConfig, bytes: Vec<u8>, device: &Device) -> Result<Network> {
    let mut model = config.init(device)?;
    let mut store = SafetensorsStore::from_bytes(Some(bytes))
        .with_from_adapter(PyTorchToBurnAdapter)
        .skip_enum_variants(true)
        .validate(false)
        .allow_partial(true);
    let result =
        model.load_from(&mut store).map_err(|e| anyhow::anyhow!("not a readable safetensors file ({e})"))?;
    if let Some(error) = result.errors.first() {
        let what = match error {
            ApplyError::ShapeMismatch { path, expected, found } => format!(
                "parameter '{path}' has shape {:?} but the model needs {:?}",
                found.to_vec(),
                expected.to_vec()
            ),
            other => other.to_string(),
        };
        bail!(
            "does not fit the model in experiment.ron: {what} ({} mismatched parameter(s) in all)",
            result.errors.len()
        );
    }
    if let Some((missing, _)) = result.missing.first() {
        bail!(
            "does not fit the model in experiment.ron: parameter '{missing}' is missing ({} missing in all)",
            result.missing.len()
        );
    }
    if let Some(unused) = result.unused.first() {
        bail!(
            "does not fit the model in experiment.ron: it holds '{unused}', which the model has no place for"
        );
    }
    Ok(model)
}
