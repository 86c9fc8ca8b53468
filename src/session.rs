//! A loaded experiment with the caches every study shares: networks and weights per epoch,
//! baseline accuracy per (epoch, split), gradients per (epoch, criterion). One owner (a CLI
//! command, or the explorer's worker thread) drives it.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Result;
use burn::prelude::*;

use crate::data::batch;
use crate::data::{GroupedDataset, Split};
use crate::eval::{self, AccuracyReport};
use crate::experiment::Experiment;
use crate::model::{BOUNDARIES, LayerInfo, Network, layer_infos};
use crate::neurons::scores::{self, Criterion};
use crate::neurons::weights::{LayerWeights, WeightSet, read_weights, with_weights};
use crate::neurons::{CandidateFilter, Granularity, NeuronSpace};

pub struct Session {
    experiment: Experiment,
    dataset: GroupedDataset,
    device: Device,
    layers: Vec<LayerInfo>,
    networks: HashMap<usize, Network>,
    weights: HashMap<usize, Arc<WeightSet>>,
    baselines: HashMap<(usize, Split), AccuracyReport>,
    gradients: HashMap<(usize, Criterion), Arc<WeightSet>>,
    activations: HashMap<(usize, Split), Arc<Vec<[Tensor<4>; BOUNDARIES]>>>,
    activation_budget: usize,
    activation_bytes: usize,
}

/// Default memory for cached stage-boundary activations (the demo needs about 37 MB per
/// (epoch, split)).
pub const DEFAULT_ACTIVATION_BUDGET: usize = 256 << 20;

impl Session {
    pub fn new(experiment: Experiment, dataset: GroupedDataset, device: Device) -> Result<Session> {
        experiment.manifest.model.check_fits(dataset.image_shape, dataset.class_names.len())?;
        let layers = layer_infos(&experiment.manifest.model.init(&device)?);
        Ok(Session {
            experiment,
            dataset,
            device,
            layers,
            networks: HashMap::new(),
            weights: HashMap::new(),
            baselines: HashMap::new(),
            gradients: HashMap::new(),
            activations: HashMap::new(),
            activation_budget: DEFAULT_ACTIVATION_BUDGET,
            activation_bytes: 0,
        })
    }

    /// Bytes of activations cached so far.
    pub fn cached_activation_bytes(&self) -> usize {
        self.activation_bytes
    }

    /// Sets the memory for cached activations in bytes; 0 turns the cache off.
    pub fn set_activation_budget(&mut self, bytes: usize) {
        self.activation_budget = bytes;
        if bytes < self.activation_bytes {
            self.activations.clear();
            self.activation_bytes = 0;
        }
    }

    /// The stage-boundary activations of the unchanged network of `epoch` on `split`, when
    /// they fit in the budget.
    fn activations(
        &mut self,
        epoch: usize,
        split: Split,
    ) -> Result<Option<Arc<Vec<[Tensor<4>; BOUNDARIES]>>>> {
        if let Some(a) = self.activations.get(&(epoch, split)) {
            return Ok(Some(a.clone()));
        }
        let network = self.network(epoch)?;
        let data = self.dataset.split(split);
        if data.is_empty() {
            return Ok(None);
        }
        let shape = self.dataset.image_shape;
        let one = network.boundaries(batch::images(data, shape, 0..1, &self.device));
        let bytes = one.iter().map(|t| t.shape().num_elements()).sum::<usize>() * data.len() * 4;
        if self.activation_bytes + bytes > self.activation_budget {
            return Ok(None);
        }
        let cached = Arc::new(eval::boundaries(&network, data, shape, &self.device));
        self.activation_bytes += bytes;
        self.activations.insert((epoch, split), cached.clone());
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
            return Ok(network.clone());
        }
        let network = self.experiment.load_network(epoch, &self.device)?;
        self.networks.insert(epoch, network.clone());
        Ok(network)
    }

    /// The conv and linear weights of `epoch`, PyTorch layout.
    pub fn weights(&mut self, epoch: usize) -> Result<Arc<WeightSet>> {
        if let Some(w) = self.weights.get(&epoch) {
            return Ok(w.clone());
        }
        let w = Arc::new(read_weights(&self.network(epoch)?)?);
        self.weights.insert(epoch, w.clone());
        Ok(w)
    }

    /// Per-group accuracy of the unchanged network of `epoch` on `split`.
    pub fn baseline(&mut self, epoch: usize, split: Split) -> Result<AccuracyReport> {
        if let Some(r) = self.baselines.get(&(epoch, split)) {
            return Ok(r.clone());
        }
        // One pass fills the activation cache and gives the baseline (resuming from the last
        // boundary runs the same operations as a full forward pass).
        let report = match self.activations(epoch, split)? {
            Some(cached) => {
                let logits = eval::logits_from(&self.network(epoch)?, &cached, BOUNDARIES - 1)?;
                self.report(split, &logits)
            }
            None => eval::evaluate(&self.network(epoch)?, &self.dataset, split, &self.device)?,
        };
        self.baselines.insert((epoch, split), report.clone());
        Ok(report)
    }

    fn report(&self, split: Split, logits: &[f32]) -> AccuracyReport {
        let preds = eval::predictions(logits, self.dataset.class_names.len());
        let data = self.dataset.split(split);
        eval::accuracy_report(
            split,
            data,
            &preds,
            &self.dataset.group_names,
            &self.dataset.train_proportions(),
        )
    }

    /// Per-group accuracy of the network of `epoch` with `layers` replaced. When every
    /// changed layer lies after a stage boundary, the forward pass resumes from the cached
    /// activations there (the same numbers, less work).
    pub fn evaluate_with(
        &mut self,
        epoch: usize,
        split: Split,
        layers: &[&LayerWeights],
    ) -> Result<AccuracyReport> {
        let changed = with_weights(&self.network(epoch)?, layers);
        let resume = layers.iter().map(|l| Network::resume_point(&l.name)).min().flatten();
        let cached = match resume {
            Some(_) => self.activations(epoch, split)?,
            None => None,
        };
        let (Some(k), Some(cached)) = (resume, cached) else {
            return eval::evaluate(&changed, &self.dataset, split, &self.device);
        };
        let logits = eval::logits_from(&changed, &cached, k)?;
        let preds = eval::predictions(&logits, self.dataset.class_names.len());
        let data = self.dataset.split(split);
        Ok(eval::accuracy_report(
            split,
            data,
            &preds,
            &self.dataset.group_names,
            &self.dataset.train_proportions(),
        ))
    }

    /// The tensors whose neuron norms are the scores: the weights for magnitude, the loss
    /// gradients for a gradient criterion (computed once per epoch and criterion).
    pub fn score_source(&mut self, epoch: usize, criterion: &Criterion) -> Result<Arc<WeightSet>> {
        let Criterion::Gradient { group, split, sampling, seed } = criterion else {
            return self.weights(epoch);
        };
        let key = (epoch, criterion.clone());
        if let Some(g) = self.gradients.get(&key) {
            return Ok(g.clone());
        }
        let network = self.network(epoch)?;
        let examples =
            scores::choose_examples(&network, &self.dataset, *group, *split, *sampling, *seed, &self.device)?;
        let autodiff = self.device.clone().autodiff();
        let graded = scores::for_gradients(network);
        let grads = Arc::new(scores::loss_gradients(&graded, &self.dataset, *split, &examples, &autodiff)?);
        self.gradients.insert(key, grads.clone());
        Ok(grads)
    }

    /// Every candidate neuron's score under `criterion`, numbered as in `space`.
    pub fn scores(&mut self, epoch: usize, criterion: &Criterion, space: &NeuronSpace) -> Result<Vec<f32>> {
        let source = self.score_source(epoch, criterion)?;
        scores::norms(&source, space)
    }
}
