//! Neuron scores: weight magnitude (group invariant) and loss-gradient norm on the examples
//! of one group (group variant), with percentile ranks.

use std::fmt;
use std::str::FromStr;

use anyhow::{Context, Result, anyhow, bail, ensure};
use burn::module::{Module, ModuleMapper, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::NeuronSpace;
use super::weights::{DeviceWeights, WeightSet};
use crate::data::{GroupedDataset, Split, batch};
use crate::device::{Pass, guard};
use crate::eval;
use crate::jobs::Progress;
use crate::model::scripted::Gradients as ScriptGradients;
use crate::model::{Mode, ModulePath, Network, Scripted};
use crate::util::rng::seeded;

/// Which examples a gradient score is computed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sampling {
    /// Every example of the group.
    All,
    /// The N examples with the lowest true-class probability (the authors' code: N = 200).
    LowestConfidence(usize),
    /// Group-label-free: the `pool` highest-loss examples of the split, `draw` of them at
    /// random (the slides' mitigation variant: 256 and 128).
    HighLoss { pool: usize, draw: usize },
}

impl Sampling {
    /// The authors' code: the 200 examples of the group with the lowest true-class probability.
    pub(crate) const AUTHORS: Sampling = Sampling::LowestConfidence(200);
    /// The slides' group-label-free variant (their mitigation): the 256 highest-loss training
    /// examples, 128 of them drawn at random.
    pub const LABEL_FREE: Sampling = Sampling::HighLoss { pool: 256, draw: 128 };
}

impl Default for Sampling {
    /// `Sampling::AUTHORS`.
    fn default() -> Self {
        Sampling::AUTHORS
    }
}

impl FromStr for Sampling {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split(':').collect();
        let number =
            |p: &str| p.parse::<usize>().map_err(|_| anyhow!("'{p}' in sampling '{s}' is not a count"));
        let sampling = match parts.as_slice() {
            ["all"] => Sampling::All,
            ["lowest-confidence"] => Sampling::AUTHORS,
            ["lowest-confidence", n] => Sampling::LowestConfidence(number(n)?),
            ["high-loss"] => Sampling::LABEL_FREE,
            ["high-loss", pool, draw] => Sampling::HighLoss { pool: number(pool)?, draw: number(draw)? },
            _ => bail!("unknown sampling '{s}' (valid: all, lowest-confidence:N, high-loss:POOL:DRAW)"),
        };
        match sampling {
            Sampling::LowestConfidence(0) => bail!("sampling '{s}': N must be at least 1"),
            Sampling::HighLoss { pool, draw } if draw == 0 || draw > pool => {
                bail!("sampling '{s}': need 1 <= DRAW <= POOL")
            }
            _ => Ok(sampling),
        }
    }
}

impl fmt::Display for Sampling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sampling::All => f.write_str("all"),
            Sampling::LowestConfidence(n) => write!(f, "lowest-confidence:{n}"),
            Sampling::HighLoss { pool, draw } => write!(f, "high-loss:{pool}:{draw}"),
        }
    }
}

/// How neurons are scored.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Criterion {
    /// `‖z_i‖₂` of the neuron's weights.
    Magnitude,
    /// `‖∂L_CE/∂z_i‖₂` of the mean cross-entropy over chosen examples, model in eval mode.
    Gradient {
        /// The group whose examples are used; `None`: every example of the split.
        group: Option<usize>,
        split: Split,
        sampling: Sampling,
        /// Seeds the random draw of `high-loss` sampling.
        seed: u64,
    },
}

impl fmt::Display for Criterion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Criterion::Magnitude => f.write_str("magnitude"),
            Criterion::Gradient { group, split, sampling, .. } => {
                let who = group.map(|g| format!("G{g}")).unwrap_or_else(|| "all groups".into());
                write!(f, "gradient ({who}, {split}, {sampling})")
            }
        }
    }
}

/// L2 norm of each contiguous run of `per` values.
pub(crate) fn neuron_norms(values: &[f32], per: usize) -> Vec<f32> {
    values.chunks(per).map(|c| c.iter().map(|v| v * v).sum::<f32>().sqrt()).collect()
}

/// The norms of every candidate neuron of `set`, numbered as in `space`.
pub fn norms(set: &WeightSet, space: &NeuronSpace) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(space.total());
    for (l, layer) in space.layers.iter().enumerate() {
        let weights = set
            .iter()
            .find(|w| w.name == layer.name)
            .with_context(|| format!("layer {} is missing from the weights", layer.name))?;
        out.extend(neuron_norms(&weights.weight, space.per_neuron(l)));
    }
    Ok(out)
}

/// Percentile rank of each score among all: 100 × (scores strictly below) / (n − 1), so the
/// largest is 100 and the smallest 0; tied scores share the lower rank.
pub fn percentile_ranks(scores: &[f32]) -> Vec<f64> {
    let n = scores.len();
    if n <= 1 {
        return vec![100.0; n];
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut ranks = vec![0.0; n];
    let mut below = 0;
    for (pos, &i) in order.iter().enumerate() {
        if pos > 0 && scores[i] != scores[order[pos - 1]] {
            below = pos;
        }
        ranks[i] = 100.0 * below as f64 / (n - 1) as f64;
    }
    ranks
}

/// Indices (into the split) of the examples a gradient criterion uses, ranking by the
/// per-example losses `losses` gives for a pool of indices (see [`example_losses`]).
pub fn choose_examples(
    dataset: &GroupedDataset,
    group: Option<usize>,
    split: Split,
    sampling: Sampling,
    seed: u64,
    losses: &mut dyn FnMut(&[usize]) -> Result<Vec<f64>>,
) -> Result<Vec<usize>> {
    let data = dataset.split(split);
    if let Some(g) = group {
        ensure!(
            g < dataset.num_groups(),
            "unknown group {g} (valid: {})",
            (0..dataset.num_groups()).map(|g| format!("G{g}")).collect::<Vec<_>>().join(", ")
        );
    }
    let pool: Vec<usize> = match group {
        Some(g) => data.indices_of_group(g),
        None => (0..data.len()).collect(),
    };
    if pool.is_empty() {
        bail!("{} has no examples of group G{} in the {split} split", dataset.name, group.unwrap_or(0));
    }
    // Every example is chosen anyway (and the loss is a mean, so order does not matter):
    // skip the forward pass that would rank them.
    let keeps_all = match sampling {
        Sampling::All => true,
        Sampling::LowestConfidence(n) => n >= pool.len(),
        Sampling::HighLoss { pool: top, draw } => top >= pool.len() && draw >= pool.len(),
    };
    if keeps_all {
        return Ok(pool);
    }
    let loss = losses(&pool)?;
    let mut order: Vec<usize> = (0..pool.len()).collect();
    // Highest loss (lowest true-class probability) first; ties by position.
    order.sort_by(|&a, &b| loss[b].total_cmp(&loss[a]).then(a.cmp(&b)));
    let chosen: Vec<usize> = match sampling {
        Sampling::All => unreachable!("handled above"),
        Sampling::LowestConfidence(n) => order.into_iter().take(n).collect(),
        Sampling::HighLoss { pool: top, draw } => {
            let mut top: Vec<usize> = order.into_iter().take(top).collect();
            top.shuffle(&mut seeded(seed, 3));
            top.truncate(draw);
            top.sort_unstable();
            top
        }
    };
    Ok(chosen.into_iter().map(|i| pool[i]).collect())
}

/// Each example's cross-entropy, -log p(true class) from a stable log-softmax, for the
/// examples `indices` of `split`, in passes of `batch` (each reported to `progress`). `model`
/// must be on a plain device.
pub fn example_losses(
    model: &Network,
    dataset: &GroupedDataset,
    split: Split,
    indices: &[usize],
    batch: usize,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<Vec<f64>> {
    let data = dataset.split(split);
    let classes = dataset.class_names.len();
    let logits = eval::logits_of(model, dataset, split, indices, batch, device, progress)?;
    Ok(logits
        .chunks(classes)
        .zip(indices)
        .map(|(row, &i)| {
            let label = data.labels[i];
            let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let log_sum = row.iter().map(|&v| f64::from(v - max).exp()).sum::<f64>().ln();
            log_sum - f64::from(row[label] - max)
        })
        .collect())
}

/// Re-creates every conv and linear parameter as an initialised autodiff leaf that requires a
/// gradient. (A parameter still carrying a lazy mapper from an earlier `map` would hand
/// autodiff a fresh leaf on each access, and its gradient would be lost.)
///
/// Everything else stays as it is. BatchNorm's γ and β need no gradient (skipping theirs
/// saves a quarter of the backward pass), and its running statistics must not be touched:
/// burn maps a `RunningState` IN PLACE, in storage every clone of the network shares, so
/// converting them once turned the cached plain network's statistics into autodiff tensors,
/// and every later evaluation recorded a gradient tape that was never freed (about 36 MB per
/// evaluation of the demo's val split).
#[derive(Default)]
struct Track {
    path: ModulePath,
}

impl ModuleMapper for Track {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if self.path.layer_param().is_none() {
            return param;
        }
        Param::initialized(param.id, param.val().autodiff().require_grad())
    }
}

/// `model` prepared for gradient scoring: every weight an autodiff leaf. (Its `forward`
/// keeps BatchNorm in eval mode.)
pub fn for_gradients(model: Network) -> Network {
    model.map(&mut Track::default())
}

/// Gradients of the mean cross-entropy over the examples `indices` of `split` with respect
/// to every conv and linear weight, in backward passes of `batch` examples; `progress` hears of
/// each pass and may stop them. `model` must come from [`for_gradients`].
pub fn loss_gradients(
    model: &Network,
    dataset: &GroupedDataset,
    split: Split,
    indices: &[usize],
    batch: usize,
    autodiff_device: &Device,
    progress: &mut dyn Progress,
) -> Result<WeightSet> {
    ensure!(!indices.is_empty(), "no examples to compute a gradient on");
    crate::device::assert_module_on(model, autodiff_device, "the network scored");
    let loss_fn = CrossEntropyLossConfig::new().init(autodiff_device);
    // Summed on the device and read once (on CUDA a read per pass would make each wait).
    let mut total: Option<DeviceWeights> = None;
    let passes = indices.len().div_ceil(batch.max(1));
    for (done, chunk) in indices.chunks(batch.max(1)).enumerate() {
        let weight = chunk.len() as f32 / indices.len() as f32;
        let mut pass = || -> Result<DeviceWeights> {
            let x = batch::images(dataset, split, chunk, autodiff_device)?;
            let y = batch::labels_of(dataset, split, chunk, autodiff_device);
            let loss = loss_fn.forward(model.forward(x, Mode::Eval), y);
            let grads = DeviceWeights::gradients(model, &loss.backward());
            Ok(match total.take() {
                None => grads.scaled(weight),
                Some(acc) => acc.add_scaled(grads, weight),
            })
        };
        total = Some(guard(Pass::Gradient, chunk.len(), autodiff_device, &mut pass)??);
        progress.report(done + 1, passes)?;
    }
    let total = total.context("no gradient was computed")?;
    guard(Pass::Gradient, batch, autodiff_device, || total.read())?
}

/// As [`loss_gradients`] for a TorchScript network, by libtorch's autograd through the
/// module on the plain `device`: the gradients of the mean cross-entropy over `indices` with
/// respect to every candidate layer's weight.
pub(crate) fn scripted_gradients(
    model: &Scripted,
    dataset: &GroupedDataset,
    split: Split,
    indices: &[usize],
    batch: usize,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<WeightSet> {
    ensure!(!indices.is_empty(), "no examples to compute a gradient on");
    let labels = &dataset.split(split).labels;
    // Summed on the device and read once.
    let mut total: Option<ScriptGradients> = None;
    let passes = indices.len().div_ceil(batch.max(1));
    for (done, chunk) in indices.chunks(batch.max(1)).enumerate() {
        let weight = chunk.len() as f64 / indices.len() as f64;
        let mut pass = || -> Result<ScriptGradients> {
            let x = batch::images(dataset, split, chunk, device)?;
            let y: Vec<i64> = chunk.iter().map(|&i| labels[i] as i64).collect();
            let grads = model.loss_gradients(x, &y)?;
            Ok(match total.take() {
                None => grads.scaled(weight),
                Some(acc) => acc.add_scaled(grads, weight),
            })
        };
        total = Some(guard(Pass::Gradient, chunk.len(), device, &mut pass)??);
        progress.report(done + 1, passes)?;
    }
    let total = total.context("no gradient was computed")?;
    let total = guard(Pass::Gradient, batch, device, || total.read())??;
    let mut set = super::weights::scripted_weights(model)?;
    for (layer, grad) in set.iter_mut().zip(total) {
        layer.weight = grad;
        layer.bias = None;
    }
    Ok(set)
}
