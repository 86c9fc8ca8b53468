//! A loaded experiment with the caches every study shares: networks and weights per epoch,
//! baseline accuracy per (epoch, split), gradients per (epoch, criterion), per-example losses
//! per (epoch, split), stage-boundary activations per (epoch, split). The large ones are
//! bounded in bytes and evict the least recently used first. One owner (a CLI command, or the
//! explorer's worker thread) drives it.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Result;
use burn::prelude::*;

use crate::data::batch::{self, BatchSizes};
use crate::data::{GroupedDataset, Split};
use crate::eval::{self, AccuracyReport};
use crate::experiment::Experiment;
use crate::jobs::{Progress, Within};
use crate::model::{Activation, LayerInfo, Network};
use crate::neurons::scores::{self, Criterion};
use crate::neurons::weights::{LayerWeights, WeightSet, read_weights, with_weights};
use crate::neurons::{CandidateFilter, Granularity, NeuronSpace};
use crate::util::lru::ByteLru;

pub struct Session {
    experiment: Experiment,
    dataset: GroupedDataset,
    device: Device,
    layers: Vec<LayerInfo>,
    networks: ByteLru<usize, Network>,
    weights: ByteLru<usize, Arc<WeightSet>>,
    baselines: HashMap<(usize, Split), AccuracyReport>,
    /// The unchanged network's logits per (epoch, split), for the boundary-shift control.
    baseline_logits: HashMap<(usize, Split), Arc<Vec<f32>>>,
    gradients: ByteLru<(usize, Criterion), Arc<WeightSet>>,
    /// Per (epoch, split), each example's cross-entropy (NaN until computed).
    losses: HashMap<(usize, Split), Vec<f64>>,
    /// Per (epoch, split), per evaluation batch, the activations entering each stage.
    activations: ByteLru<(usize, Split), Arc<Vec<Vec<Activation>>>>,
    batches: BatchSizes,
}

/// Default memory for cached stage-boundary activations (the demo needs about 37 MB per
/// (epoch, split)).
pub const DEFAULT_ACTIVATION_BUDGET: usize = 256 << 20;

/// Default memory for each of the caches of networks, weights and gradients (a ResNet-50
/// epoch is about 100 MB in each; the demo's is 1.2 MB).
pub const DEFAULT_MODEL_BUDGET: usize = 1 << 30;

/// How much memory a session's caches may hold and how many examples a pass takes: speed and
/// peak memory, not a count (gradients accumulated over other batches may differ in their
/// last float digits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budgets {
    /// Bytes of cached stage-boundary activations.
    pub activations: usize,
    /// Bytes of each of the caches of networks, weights and gradients.
    pub models: usize,
    pub batches: BatchSizes,
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets {
            activations: DEFAULT_ACTIVATION_BUDGET,
            models: DEFAULT_MODEL_BUDGET,
            batches: BatchSizes::default(),
        }
    }
}

impl Session {
    pub fn new(experiment: Experiment, dataset: GroupedDataset, device: Device) -> Result<Session> {
        experiment.manifest.model.check_fits(dataset.image_shape, dataset.class_names.len())?;
        let layers = experiment.manifest.model.layers(&device)?;
        Ok(Session {
            experiment,
            dataset,
            device,
            layers,
            networks: ByteLru::new(DEFAULT_MODEL_BUDGET),
            weights: ByteLru::new(DEFAULT_MODEL_BUDGET),
            baselines: HashMap::new(),
            baseline_logits: HashMap::new(),
            gradients: ByteLru::new(DEFAULT_MODEL_BUDGET),
            losses: HashMap::new(),
            activations: ByteLru::new(DEFAULT_ACTIVATION_BUDGET),
            batches: BatchSizes::default(),
        })
    }

    /// The budgets in force (for a new session on another experiment to keep them).
    pub fn budgets(&self) -> Budgets {
        Budgets {
            activations: self.activations.budget(),
            models: self.networks.budget(),
            batches: self.batches,
        }
    }

    /// Sets every budget at once.
    pub fn set_budgets(&mut self, budgets: Budgets) {
        self.set_activation_budget(budgets.activations);
        self.set_model_budget(budgets.models);
        self.set_batch_sizes(budgets.batches);
    }

    /// Sets the examples per evaluation and gradient pass (speed and memory, not results).
    pub(crate) fn set_batch_sizes(&mut self, batches: BatchSizes) {
        if batches.eval != self.batches.eval {
            self.activations.clear();
        }
        self.batches = BatchSizes { eval: batches.eval.max(1), gradient: batches.gradient.max(1) };
    }

    /// Bytes of activations cached now.
    pub fn cached_activation_bytes(&self) -> usize {
        self.activations.bytes()
    }

    /// Sets the memory for cached activations in bytes; 0 turns the cache off.
    pub fn set_activation_budget(&mut self, bytes: usize) {
        self.activations.set_budget(bytes);
    }

    /// Sets the memory for each of the caches of networks, weights and gradients, in bytes
    /// (0: every request reads the checkpoint and computes again).
    pub(crate) fn set_model_budget(&mut self, bytes: usize) {
        self.networks.set_budget(bytes);
        self.weights.set_budget(bytes);
        self.gradients.set_budget(bytes);
    }

    /// The stage-boundary activations of the unchanged network of `epoch` on `split`, when
    /// they fit in the budget (the pass that computes them reports each batch to `progress`).
    fn activations(
        &mut self,
        epoch: usize,
        split: Split,
        progress: &mut dyn Progress,
    ) -> Result<Option<Arc<Vec<Vec<Activation>>>>> {
        if let Some(a) = self.activations.get(&(epoch, split)) {
            return Ok(Some(a));
        }
        let network = self.network(epoch)?;
        let n = self.dataset.split(split).len();
        if n == 0 || network.stages().is_empty() {
            return Ok(None);
        }
        let probe = || -> Result<_> {
            Ok(network.boundaries(batch::images(&self.dataset, split, &[0], &self.device)?))
        };
        let one = crate::device::guard(crate::device::Pass::Evaluation, 1, &self.device, probe)??;
        let bytes = one.iter().map(Activation::num_elements).sum::<usize>() * n * 4;
        if bytes > self.activations.budget() {
            return Ok(None);
        }
        let (dataset, device) = (&self.dataset, &self.device);
        let cached =
            Arc::new(eval::boundaries(&network, dataset, split, self.batches.eval, device, progress)?);
        self.activations.insert((epoch, split), cached.clone(), bytes);
        Ok(Some(cached))
    }

    pub fn experiment(&self) -> &Experiment {
        &self.experiment
    }

    pub fn dataset(&self) -> &GroupedDataset {
        &self.dataset
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Every conv and linear layer.
    pub fn layers(&self) -> &[LayerInfo] {
        &self.layers
    }

    pub fn space(&self, filter: &CandidateFilter, granularity: Granularity) -> Result<NeuronSpace> {
        NeuronSpace::new(&self.layers, filter, granularity)
    }

    /// The network of `epoch` (loaded once; a clone shares its tensors).
    pub fn network(&mut self, epoch: usize) -> Result<Network> {
        if let Some(network) = self.networks.get(&epoch) {
            return Ok(network);
        }
        let network = self.experiment.load_network(epoch, &self.device)?;
        crate::device::assert_module_on(&network, &self.device, "a loaded network");
        let bytes = network.floats() * 4;
        self.networks.insert(epoch, network.clone(), bytes);
        Ok(network)
    }

    /// The conv and linear weights of `epoch`, PyTorch layout.
    pub fn weights(&mut self, epoch: usize) -> Result<Arc<WeightSet>> {
        if let Some(w) = self.weights.get(&epoch) {
            return Ok(w);
        }
        let w = Arc::new(read_weights(&self.network(epoch)?)?);
        self.weights.insert(epoch, w.clone(), weight_bytes(&w));
        Ok(w)
    }

    /// Per-group accuracy of the unchanged network of `epoch` on `split`. `progress` hears of
    /// each batch of the pass and may stop it (then nothing is cached).
    pub fn baseline(
        &mut self,
        epoch: usize,
        split: Split,
        progress: &mut dyn Progress,
    ) -> Result<AccuracyReport> {
        if let Some(r) = self.baselines.get(&(epoch, split)) {
            return Ok(r.clone());
        }
        let logits = self.baseline_logits(epoch, split, progress)?;
        let report = eval::report_from_logits(&self.dataset, split, &logits);
        self.baselines.insert((epoch, split), report.clone());
        Ok(report)
    }

    /// Logits `[examples × classes]` of the unchanged network of `epoch` on `split` (computed
    /// once); `progress` as for [`Session::baseline`].
    pub fn baseline_logits(
        &mut self,
        epoch: usize,
        split: Split,
        progress: &mut dyn Progress,
    ) -> Result<Arc<Vec<f32>>> {
        if let Some(l) = self.baseline_logits.get(&(epoch, split)) {
            return Ok(l.clone());
        }
        // One pass fills the activation cache and gives the baseline (resuming from the last
        // boundary runs the same operations as a full forward pass).
        let network = self.network(epoch)?;
        let logits = match self.activations(epoch, split, progress)? {
            // Only the head is left: its passes keep the gauge full.
            Some(cached) => {
                let mut head = Within::new(progress, cached.len(), cached.len());
                eval::logits_from(&network, &cached, network.stages().len() - 1, &mut head)?
            }
            None => self.logits(&network, split, progress)?,
        };
        let logits = Arc::new(logits);
        self.baseline_logits.insert((epoch, split), logits.clone());
        Ok(logits)
    }

    /// Logits of every example of `split` in this session's evaluation batches.
    fn logits(&self, network: &Network, split: Split, progress: &mut dyn Progress) -> Result<Vec<f32>> {
        let all: Vec<usize> = (0..self.dataset.split(split).len()).collect();
        eval::logits_of(network, &self.dataset, split, &all, self.batches.eval, &self.device, progress)
    }

    /// Logits `[examples × classes]` of `split` from the network of `epoch` with `layers`
    /// replaced (none: the unchanged network), resuming, when every changed
    /// layer lies inside a stage, from the activations cached at the earliest such stage's
    /// input (the same numbers, less work); `progress` hears of each batch of each pass (filling the
    /// cache, then resuming from it).
    pub fn logits_with(
        &mut self,
        epoch: usize,
        split: Split,
        layers: &[&LayerWeights],
        progress: &mut dyn Progress,
    ) -> Result<Vec<f32>> {
        let changed = with_weights(&self.network(epoch)?, layers);
        let stage_of = |name: &str| self.layers.iter().find(|l| l.name == name).and_then(|l| l.stage);
        let resume = layers.iter().map(|l| stage_of(&l.name)).min().flatten();
        let cached = match resume {
            Some(_) => self.activations(epoch, split, progress)?,
            None => None,
        };
        crate::device::assert_module_on(&changed, &self.device, "the changed network");
        let logits = match (resume, cached) {
            (Some(k), Some(cached)) => {
                if let Some(x) = cached.first().and_then(|pass| pass.get(k)) {
                    crate::device::assert_same(&x.device(), &self.device, "a cached activation");
                }
                eval::logits_from(&changed, &cached, k, progress)?
            }
            _ => self.logits(&changed, split, progress)?,
        };
        Ok(logits)
    }

    /// The tensors whose neuron norms are the scores: the weights for magnitude, the loss
    /// gradients for a gradient criterion (computed once per epoch and criterion). `progress`
    /// hears of each batch of the passes (the examples' losses when a sampling ranks them, then
    /// the backward passes) and may stop them; nothing is cached then.
    pub fn score_source(
        &mut self,
        epoch: usize,
        criterion: &Criterion,
        progress: &mut dyn Progress,
    ) -> Result<Arc<WeightSet>> {
        let Criterion::Gradient { group, split, sampling, seed } = criterion else {
            return self.weights(epoch);
        };
        let key = (epoch, criterion.clone());
        if let Some(g) = self.gradients.get(&key) {
            return Ok(g);
        }
        let network = self.network(epoch)?;
        let (dataset, device, batch) = (&self.dataset, &self.device, self.batches.eval);
        let cached =
            self.losses.entry((epoch, *split)).or_insert_with(|| vec![f64::NAN; dataset.split(*split).len()]);
        // Per-example losses are computed once per (epoch, split): a second group or sampling
        // reuses them.
        let mut losses = |pool: &[usize]| -> Result<Vec<f64>> {
            let missing: Vec<usize> = pool.iter().copied().filter(|&i| cached[i].is_nan()).collect();
            if !missing.is_empty() {
                let fresh = scores::example_losses(
                    &network,
                    dataset,
                    *split,
                    &missing,
                    batch,
                    device,
                    &mut *progress,
                )?;
                for (&i, loss) in missing.iter().zip(fresh) {
                    cached[i] = loss;
                }
            }
            Ok(pool.iter().map(|&i| cached[i]).collect())
        };
        let examples = scores::choose_examples(dataset, *group, *split, *sampling, *seed, &mut losses)?;
        if let Some(scripted) = network.scripted() {
            let grads = Arc::new(scores::scripted_gradients(
                scripted,
                &self.dataset,
                *split,
                &examples,
                self.batches.gradient,
                &self.device,
                progress,
            )?);
            self.gradients.insert(key, grads.clone(), weight_bytes(&grads));
            return Ok(grads);
        }
        let autodiff = self.device.clone().autodiff();
        let graded = scores::for_gradients(network);
        let grads = Arc::new(scores::loss_gradients(
            &graded,
            &self.dataset,
            *split,
            &examples,
            self.batches.gradient,
            &autodiff,
            progress,
        )?);
        self.gradients.insert(key, grads.clone(), weight_bytes(&grads));
        Ok(grads)
    }

    /// Every candidate neuron's score under `criterion`, numbered as in `space`; `progress` as
    /// for [`Session::score_source`].
    pub fn scores(
        &mut self,
        epoch: usize,
        criterion: &Criterion,
        space: &NeuronSpace,
        progress: &mut dyn Progress,
    ) -> Result<Vec<f32>> {
        let source = self.score_source(epoch, criterion, progress)?;
        scores::norms(&source, space)
    }
}

/// Bytes of the values in `set`.
fn weight_bytes(set: &WeightSet) -> usize {
    set.iter().map(|l| (l.weight.len() + l.bias.as_ref().map_or(0, Vec::len)) * 4).sum()
}
