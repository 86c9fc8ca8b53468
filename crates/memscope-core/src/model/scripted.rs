//! Any PyTorch classifier through TorchScript: a module saved by `torch.jit.save` after
//! `torch.jit.script` or `torch.jit.trace`, run on the same libtorch as burn-tch.
//!
//! One loaded module serves every epoch of an experiment: a network holds its epoch's
//! tensors (parameters and buffers, by state-dict name) and, before each forward pass, points
//! the module's own tensors at them (`set_data`: no copy, on the device they live on). A copy
//! with changed weights is a new set of handles in which only the changed layers are new.

// burn-tch is deprecated upstream; the scripted module lives on its libtorch.
#![allow(deprecated)]

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use anyhow::{Context, Result, anyhow, bail, ensure};
use burn::prelude::*;
use burn_tch::{LibTorch, ScriptModule, TchTensor};
use serde::{Deserialize, Serialize};

use super::{LayerInfo, LayerKind, ParamCounts};

/// A TorchScript classifier as recorded in `experiment.ron`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TorchScriptConfig {
    /// The module's file inside the experiment folder.
    pub file: String,
    /// Its sha256: a replaced file is refused.
    pub sha256: String,
    pub num_classes: usize,
    /// The classifier head's layer (its weight is `<head>.weight`, one row per class).
    pub head: String,
    /// Every parameter named `*.weight` of rank 4 (conv) or 2 (linear), in the module's order.
    pub layers: Vec<LayerInfo>,
}

/// The candidate layers of a module with these `(name, shape)` weights: every `*.weight` of
/// rank 4 (units: output channels) or 2 (units: rows), the head marked. The head is `head`
/// when given (a layer name, with or without `.weight`), else the last rank-2 weight with
/// `classes` rows.
pub fn candidate_layers(
    weights: &[(String, Vec<usize>)],
    classes: usize,
    head: Option<&str>,
) -> Result<Vec<LayerInfo>> {
    let mut layers: Vec<LayerInfo> = weights
        .iter()
        .filter_map(|(name, shape)| {
            let layer = name.strip_suffix(".weight")?;
            let kind = match shape.len() {
                4 => LayerKind::Conv,
                2 => LayerKind::Linear,
                _ => return None,
            };
            Some(LayerInfo {
                name: layer.to_string(),
                kind,
                shape: shape.clone(),
                neurons: shape[0],
                shortcut: layer.split('.').any(|n| n == "shortcut" || n == "downsample"),
                head: false,
                stage: None,
                heads: None,
            })
        })
        .collect();
    let position = match head {
        Some(name) => {
            let name = name.strip_suffix(".weight").unwrap_or(name);
            let Some(i) = layers.iter().position(|l| l.name == name) else {
                bail!(
                    "--head {name}: the module has no rank-2 or rank-4 weight '{name}.weight' (layers: {})",
                    names(&layers)
                );
            };
            ensure!(
                layers[i].kind == LayerKind::Linear && layers[i].shape[0] == classes,
                "--head {name}: its weight has shape {:?}, not [{classes}, features] (one row per class)",
                layers[i].shape
            );
            i
        }
        None => layers
            .iter()
            .rposition(|l| l.kind == LayerKind::Linear && l.shape[0] == classes)
            .with_context(|| {
                format!(
                    "the module has no rank-2 weight with {classes} rows (one per class) to be the head; \
                     pass --head NAME (layers: {})",
                    names(&layers)
                )
            })?,
    };
    layers[position].head = true;
    Ok(layers)
}

fn names(layers: &[LayerInfo]) -> String {
    let shown: Vec<&str> = layers.iter().rev().take(6).rev().map(|l| l.name.as_str()).collect();
    let more = if layers.len() > shown.len() { "…, " } else { "" };
    format!("{more}{}", shown.join(", "))
}

/// A float32 tensor read from a state dict: its name, shape and values (PyTorch order).
pub type StateTensor = (String, Vec<usize>, Vec<f32>);

/// A loaded module and handles on its own parameters and buffers.
struct Loaded {
    module: ScriptModule,
    tensors: HashMap<String, tch::Tensor>,
    /// The names of the buffers among `tensors`.
    buffers: Vec<String>,
    /// The network whose tensors the module points at now.
    installed: u64,
}

/// Every network gets a number: the module knows whose tensors it holds.
static NEXT: AtomicU64 = AtomicU64::new(1);

/// One epoch's TorchScript network: the shared module and this network's tensors, none of
/// them a burn parameter (burn's visitors and mappers see nothing).
#[derive(Module, Debug)]
pub struct Scripted {
    #[module(skip)]
    inner: Inner,
}

#[derive(Clone)]
struct Inner {
    loaded: Arc<Mutex<Loaded>>,
    /// Parameters and buffers by state-dict name (float32, on the module's device).
    state: Arc<Mutex<Vec<(String, tch::Tensor)>>>,
    id: u64,
    layers: Arc<Vec<LayerInfo>>,
    device: tch::Device,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} layers on {:?}", self.layers.len(), self.device)
    }
}

/// Locks `mutex`, whether or not a panic poisoned it (the data is handles, never half-written).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Modules loaded by this process, by file and device: every epoch's network shares one.
type Cache = Mutex<Vec<((std::path::PathBuf, tch::Device), Weak<Mutex<Loaded>>)>>;

/// The module at `path` on `device`, loaded once while any network uses it.
fn shared_module(path: &Path, device: tch::Device) -> Result<Arc<Mutex<Loaded>>> {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let mut cache = lock(CACHE.get_or_init(Cache::default));
    cache.retain(|(_, weak)| weak.strong_count() > 0);
    let key = (path.to_path_buf(), device);
    if let Some(loaded) = cache.iter().find(|(k, _)| *k == key).and_then(|(_, w)| w.upgrade()) {
        return Ok(loaded);
    }
    let cuda = match device {
        tch::Device::Cuda(i) => Some(i),
        _ => None,
    };
    let module = ScriptModule::load(path, cuda).map_err(|e| {
        anyhow!("{} is not a TorchScript module libtorch can load ({})", path.display(), libtorch_error(&e))
    })?;
    let tensors = module.tensors().map_err(|e| anyhow!("{}: {}", path.display(), libtorch_error(&e)))?;
    // Integer buffers (BatchNorm's `num_batches_tracked`) play no part in evaluation.
    let tensors: Vec<_> = tensors.into_iter().filter(|t| t.tensor.is_floating_point()).collect();
    let buffers = tensors.iter().filter(|t| t.buffer).map(|t| t.name.clone()).collect();
    let tensors = tensors.into_iter().map(|t| (t.name, t.tensor)).collect();
    let loaded = Arc::new(Mutex::new(Loaded { module, tensors, buffers, installed: 0 }));
    cache.push((key, Arc::downgrade(&loaded)));
    Ok(loaded)
}

/// libtorch's messages carry a C++ backtrace after the first line.
fn libtorch_error(message: &str) -> &str {
    // The interpreter's "The following operation failed in the TorchScript interpreter." and its
    // traceback end with the error itself ("RuntimeError: ...").
    let mut lines = message.lines().map(str::trim).filter(|l| !l.is_empty());
    match lines.next() {
        Some(first) if first.starts_with("The following operation failed") => {
            message.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or(first)
        }
        Some(first) => first,
        None => message,
    }
}

/// The `(name, shape)` of every parameter and buffer of the module at `path`, in its order.
pub fn module_tensors(path: &Path) -> Result<Vec<(String, Vec<usize>, bool)>> {
    let module = ScriptModule::load(path, None).map_err(|e| {
        anyhow!("{} is not a TorchScript module libtorch can load ({})", path.display(), libtorch_error(&e))
    })?;
    let tensors = module.tensors().map_err(|e| anyhow!("{}: {}", path.display(), libtorch_error(&e)))?;
    Ok(tensors
        .into_iter()
        .filter(|t| t.tensor.is_floating_point())
        .map(|t| {
            let shape = t.tensor.size().iter().map(|&d| d as usize).collect();
            (t.name, shape, t.buffer)
        })
        .collect())
}

impl Scripted {
    /// The module at `module` on `device` with the float32 `tensors` (state-dict names) of one
    /// epoch. Every parameter and buffer of the module must be given with its shape, and
    /// nothing else (the one-line errors name the first few that differ).
    pub(crate) fn new(
        module: &Path,
        layers: &[LayerInfo],
        tensors: Vec<StateTensor>,
        device: &Device,
    ) -> Result<Scripted> {
        let device = crate::device::torch_device(device);
        let loaded = shared_module(module, device)?;
        let state = {
            let guard = lock(&loaded);
            check_names(&guard.tensors, &tensors)?;
            tensors
                .into_iter()
                .map(|(name, shape, values)| {
                    let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
                    // In the module's own dtype: `set_data` keeps a tensor's type.
                    let kind = guard.tensors.get(&name).map_or(tch::Kind::Float, tch::Tensor::kind);
                    let tensor = tch::Tensor::from_slice(&values).view(dims.as_slice());
                    (name, tensor.to_device(device).to_kind(kind))
                })
                .collect()
        };
        let inner = Inner {
            loaded,
            state: Arc::new(Mutex::new(state)),
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            layers: Arc::new(layers.to_vec()),
            device,
        };
        Ok(Scripted { inner })
    }

    /// The candidate layers (see [`candidate_layers`]).
    pub fn layers(&self) -> Vec<LayerInfo> {
        self.inner.layers.as_ref().clone()
    }

    /// The values of the parameters and of the floating-point buffers.
    pub(crate) fn counts(&self) -> ParamCounts {
        let buffers = lock(&self.inner.loaded).buffers.clone();
        let mut counts = ParamCounts::default();
        for (name, tensor) in lock(&self.inner.state).iter() {
            match buffers.contains(name) {
                true => counts.buffers += tensor.numel(),
                false => counts.trainable += tensor.numel(),
            }
        }
        counts
    }

    /// Points the module at this network's tensors (unless it already is) and runs `work`.
    fn with_module<T>(&self, work: impl FnOnce(&mut Loaded) -> T) -> T {
        let mut loaded = lock(&self.inner.loaded);
        if loaded.installed != self.inner.id {
            let state = lock(&self.inner.state);
            for (name, value) in state.iter() {
                if let Some(tensor) = loaded.tensors.get_mut(name) {
                    tensor.set_data(value);
                }
            }
            loaded.installed = self.inner.id;
        }
        work(&mut loaded)
    }

    /// Logits `[batch, classes]` from images `[batch, c, h, w]` on a plain device, as a
    /// libtorch error when the module cannot take them.
    pub fn try_forward(&self, images: Tensor<4>) -> Result<Tensor<2>> {
        let input = images
            .try_into_primitive::<LibTorch>()
            .map_err(|e| anyhow!("a TorchScript module takes plain libtorch tensors ({e:?})"))?
            .tensor;
        let logits = self.with_module(|loaded| loaded.module.forward(&input, false));
        let logits =
            logits.map_err(|e| anyhow!("{}: {}", crate::device::SCRIPTED_FAILED, libtorch_error(&e)))?;
        ensure!(
            logits.dim() == 2,
            "the TorchScript module returned shape {:?}, not [batch, classes]",
            logits.size()
        );
        Ok(Tensor::from_primitive::<LibTorch>(TchTensor::new(logits.to_kind(tch::Kind::Float))))
    }

    /// As [`Self::try_forward`]; a module that fails panics with libtorch's message, as every
    /// burn-tch operation does (import ran it once on the data set's images), and every pass's
    /// `device::guard` makes that panic the one-line error.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.try_forward(images).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// The values of the tensor `name` on the host, in PyTorch order (`None`: no such tensor).
    pub(crate) fn values(&self, name: &str) -> Result<Option<Vec<f32>>> {
        let state = lock(&self.inner.state);
        state.iter().find(|(n, _)| n == name).map(|(_, t)| host(t)).transpose()
    }

    /// A copy with the tensors named in `replace` given new values (PyTorch order); the others
    /// share this network's tensors.
    pub(crate) fn with_values(&self, replace: &[(String, &[f32])]) -> Scripted {
        let mut state: Vec<(String, tch::Tensor)> =
            lock(&self.inner.state).iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect();
        for (name, values) in replace {
            if let Some((_, tensor)) = state.iter_mut().find(|(n, _)| n == name) {
                let fresh = tch::Tensor::from_slice(values).view(tensor.size().as_slice());
                *tensor = fresh.to_device(self.inner.device).to_kind(tensor.kind());
            }
        }
        let inner = Inner {
            state: Arc::new(Mutex::new(state)),
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            ..self.inner.clone()
        };
        Scripted { inner }
    }

    /// The gradient of the mean cross-entropy of `images` against `labels` with respect to
    /// every candidate layer's weight, by libtorch's autograd through the module (BatchNorm
    /// in eval mode), still on the device.
    pub(crate) fn loss_gradients(&self, images: Tensor<4>, labels: &[i64]) -> Result<Gradients> {
        let input = images
            .try_into_primitive::<LibTorch>()
            .map_err(|e| anyhow!("a TorchScript module takes plain libtorch tensors ({e:?})"))?
            .tensor;
        let targets = tch::Tensor::from_slice(labels).to_device(self.inner.device);
        self.with_module(|loaded| {
            let weights: Vec<String> =
                self.inner.layers.iter().map(|l| format!("{}.weight", l.name)).collect();
            for name in &weights {
                if let Some(t) = loaded.tensors.get_mut(name) {
                    t.zero_grad();
                    let _ = t.set_requires_grad(true);
                }
            }
            let logits = loaded
                .module
                .forward(&input, true)
                .map_err(|e| anyhow!("{}: {}", crate::device::SCRIPTED_FAILED, libtorch_error(&e)))?;
            logits.to_kind(tch::Kind::Float).cross_entropy_for_logits(&targets).backward();
            let mut out = Vec::with_capacity(weights.len());
            for name in &weights {
                let tensor =
                    loaded.tensors.get_mut(name).with_context(|| format!("{name} is not in the module"))?;
                let grad = tensor.grad();
                out.push(if grad.defined() { grad.detach().copy() } else { tensor.zeros_like() });
                tensor.zero_grad();
            }
            Ok(Gradients(out))
        })
    }
}

/// The gradients of the candidate layers' weights, in layer order, on the device.
pub(crate) struct Gradients(Vec<tch::Tensor>);

impl Gradients {
    /// Every value times `factor`.
    pub(crate) fn scaled(self, factor: f64) -> Gradients {
        Gradients(self.0.into_iter().map(|g| g * factor).collect())
    }

    /// `self + factor * other`, layer by layer.
    pub(crate) fn add_scaled(self, other: Gradients, factor: f64) -> Gradients {
        Gradients(self.0.into_iter().zip(other.0).map(|(a, b)| a + b * factor).collect())
    }

    /// The values on the host, layer by layer (read once, after the last pass).
    pub(crate) fn read(self) -> Result<Vec<Vec<f32>>> {
        self.0.iter().map(host).collect()
    }
}

/// A float tensor's values on the host, in its (PyTorch) order.
pub(crate) fn host(tensor: &tch::Tensor) -> Result<Vec<f32>> {
    let flat = tensor.to_kind(tch::Kind::Float).to_device(tch::Device::Cpu).contiguous().view([-1]);
    Vec::<f32>::try_from(&flat).map_err(|e| anyhow!("cannot read a tensor ({e})"))
}

/// Today's one-line errors for a state dict that does not fit the module: shapes that differ,
/// names the module has and the file lacks, names the file has and the module lacks.
fn check_names(module: &HashMap<String, tch::Tensor>, file: &[StateTensor]) -> Result<()> {
    let what = "the TorchScript module";
    let shapes: Vec<String> = file
        .iter()
        .filter_map(|(name, shape, _)| {
            let expected: Vec<usize> = module.get(name)?.size().iter().map(|&d| d as usize).collect();
            (expected != *shape).then(|| format!("'{name}' {expected:?} expected, {shape:?} found"))
        })
        .collect();
    if !shapes.is_empty() {
        let shown = shapes.iter().take(3).cloned().collect::<Vec<_>>().join("; ");
        let more = if shapes.len() > 3 { format!("; {} more", shapes.len() - 3) } else { String::new() };
        bail!("does not fit {what}: shapes differ: {shown}{more}");
    }
    let mut missing: Vec<&String> = module.keys().filter(|n| !file.iter().any(|(f, _, _)| f == *n)).collect();
    missing.sort();
    if !missing.is_empty() {
        let shown = missing.iter().take(3).map(|m| format!("'{m}'")).collect::<Vec<_>>().join(", ");
        bail!(
            "does not fit {what}: {shown} missing ({} missing in all; the file holds {} tensors where the model has {})",
            missing.len(),
            file.len(),
            module.len()
        );
    }
    let unused: Vec<&String> = file.iter().map(|(n, _, _)| n).filter(|n| !module.contains_key(*n)).collect();
    if !unused.is_empty() {
        let shown = unused.iter().take(3).map(|m| format!("'{m}'")).collect::<Vec<_>>().join(", ");
        bail!(
            "does not fit {what}: it holds {shown} ({} in all), which the model has no place for",
            unused.len()
        );
    }
    Ok(())
}
