//! Interventions on neurons and layers: zero-out, re-initialise, add noise, rewind.
//! They change a copy of the layer weights; the loaded model is never touched.

use std::fmt;

use anyhow::{Context, Result, ensure};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::neurons::NeuronSpace;
use crate::neurons::weights::{LayerWeights, WeightSet};

/// Defaults from the authors' configurations.
pub const DEFAULT_REINIT_SIGMA: f64 = 0.02;
pub const DEFAULT_NOISE_SIGMA: f64 = 0.01;
pub const DEFAULT_EPOCHS_BACK: usize = 10;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Intervention {
    /// `z ← 0` (pruning).
    ZeroOut,
    /// `z ← ε`, ε ~ N(0, σ²); with `uniform`, ε ~ σ·Uniform[0, 1) (the code's threshold script).
    Reinit { sigma: f64, uniform: bool },
    /// `z ← z + ε`, ε ~ N(0, σ²).
    Noise { sigma: f64 },
    /// `z ←` its value `epochs_back` epochs earlier.
    RewindNeurons { epochs_back: usize },
    /// The whole layer (weight and bias) ← its value `epochs_back` epochs earlier.
    RewindLayer { layer: String, epochs_back: usize },
}

impl fmt::Display for Intervention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Intervention::ZeroOut => f.write_str("zero-out"),
            Intervention::Reinit { sigma, uniform: false } => write!(f, "re-init N(0, {sigma}²)"),
            Intervention::Reinit { sigma, uniform: true } => write!(f, "re-init {sigma}·U[0,1)"),
            Intervention::Noise { sigma } => write!(f, "noise N(0, {sigma}²)"),
            Intervention::RewindNeurons { epochs_back } => write!(f, "rewind neurons {epochs_back} epochs"),
            Intervention::RewindLayer { layer, epochs_back } => {
                write!(f, "rewind {layer} {epochs_back} epochs")
            }
        }
    }
}

impl Intervention {
    /// Whether repeats with different seeds give different results.
    pub fn is_random(&self) -> bool {
        matches!(self, Intervention::Reinit { sigma, .. } | Intervention::Noise { sigma } if *sigma > 0.0)
    }

    /// The earlier epoch a rewind reads, checked against the epoch intervened on.
    pub(crate) fn source_epoch(&self, epoch: usize) -> Result<Option<usize>> {
        match self {
            Intervention::RewindNeurons { epochs_back } | Intervention::RewindLayer { epochs_back, .. } => {
                ensure!(
                    *epochs_back <= epoch,
                    "cannot rewind {epochs_back} epochs from epoch {epoch} (valid: 0..={epoch})"
                );
                Ok(Some(epoch - epochs_back))
            }
            _ => Ok(None),
        }
    }

    pub fn validate(&self, epoch: usize) -> Result<()> {
        if let Intervention::Reinit { sigma, .. } | Intervention::Noise { sigma } = self {
            ensure!(sigma.is_finite() && *sigma >= 0.0, "sigma = {sigma} must be a number >= 0");
        }
        self.source_epoch(epoch).map(|_| ())
    }
}

fn layer_mut<'a>(set: &'a mut WeightSet, name: &str) -> Result<&'a mut LayerWeights> {
    set.iter_mut()
        .find(|l| l.name == name)
        .with_context(|| format!("layer {name} is missing from the weights"))
}

fn layer<'a>(set: &'a WeightSet, name: &str) -> Result<&'a LayerWeights> {
    set.iter().find(|l| l.name == name).with_context(|| format!("layer {name} is missing from the weights"))
}

/// Applies `intervention` to the neurons `targets` (global numbers in `space`) of `weights`.
/// `earlier` holds the weights of the rewind's source epoch. Returns the names of the
/// layers it changed.
pub fn apply(
    intervention: &Intervention,
    weights: &mut WeightSet,
    space: &NeuronSpace,
    targets: &[usize],
    earlier: Option<&WeightSet>,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<String>> {
    if let Intervention::RewindLayer { layer: name, .. } = intervention {
        let source = layer(earlier.context("a rewind needs the earlier epoch's weights")?, name)?.clone();
        *layer_mut(weights, name)? = source;
        return Ok(vec![name.clone()]);
    }
    let mut touched: Vec<String> = Vec::new();
    for &flat in targets {
        let (l, index) = space.locate(flat);
        let name = &space.layers[l].name;
        let per = space.per_neuron(l);
        let range = index * per..(index + 1) * per;
        let slice = &mut layer_mut(weights, name)?.weight[range.clone()];
        match intervention {
            Intervention::ZeroOut => slice.fill(0.0),
            Intervention::Reinit { sigma, uniform } => {
                for v in slice.iter_mut() {
                    let e: f64 = if *uniform { rng.random::<f64>() } else { rng.sample(StandardNormal) };
                    *v = (sigma * e) as f32;
                }
            }
            Intervention::Noise { sigma } => {
                for v in slice.iter_mut() {
                    let e: f64 = rng.sample(StandardNormal);
                    *v += (sigma * e) as f32;
                }
            }
            Intervention::RewindNeurons { .. } => {
                let source = layer(earlier.context("a rewind needs the earlier epoch's weights")?, name)?;
                slice.copy_from_slice(&source.weight[range]);
            }
            Intervention::RewindLayer { .. } => unreachable!("handled above"),
        }
        if !touched.contains(name) {
            touched.push(name.clone());
        }
    }
    Ok(touched)
}
