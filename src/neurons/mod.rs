//! Neurons: slices of one weight tensor, at a chosen granularity, over a set of candidate
//! layers. Indices are in PyTorch order whatever burn's storage layout, so neuron
//! `stage2.block0.conv1:7` is `W[7, :, :, :]` of that conv in PyTorch too.

pub mod scores;
pub mod select;
pub mod weights;

use std::fmt;
use std::str::FromStr;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use crate::model::{LayerInfo, LayerKind};

/// What one neuron is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    /// A conv output filter `W[c, :, :, :]`, or a linear unit's incoming weights `W[o, :]`
    /// (the authors' code).
    #[default]
    Unit,
    /// One conv kernel `W[c, i, :, :]` (for a linear layer, one weight).
    Kernel,
    /// One scalar weight.
    Weight,
}

impl FromStr for Granularity {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "unit" => Ok(Granularity::Unit),
            "kernel" => Ok(Granularity::Kernel),
            "weight" => Ok(Granularity::Weight),
            other => bail!("unknown granularity '{other}' (valid: unit, kernel, weight)"),
        }
    }
}

impl fmt::Display for Granularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Granularity::Unit => "unit",
            Granularity::Kernel => "kernel",
            Granularity::Weight => "weight",
        })
    }
}

impl Granularity {
    /// (neurons in the layer, weights per neuron). Every neuron is a contiguous run of the
    /// layer's PyTorch-order weights.
    pub fn split(self, layer: &LayerInfo) -> (usize, usize) {
        let total: usize = layer.shape.iter().product();
        let per = match self {
            Granularity::Unit => total / layer.shape[0],
            Granularity::Kernel if layer.kind == LayerKind::Conv => layer.shape[2..].iter().product(),
            Granularity::Kernel | Granularity::Weight => 1,
        };
        (total / per, per)
    }
}

/// Which layers hold candidate neurons. By default every conv and linear weight.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CandidateFilter {
    /// Leave out the classifier head.
    pub exclude_head: bool,
    /// Leave out the 1x1 projection convs of residual shortcuts.
    pub exclude_shortcuts: bool,
    /// Only these layers (empty: all).
    pub layers: Vec<String>,
}

/// A neuron's stable id: `layer:index`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NeuronId {
    pub layer: String,
    pub index: usize,
}

impl fmt::Display for NeuronId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.layer, self.index)
    }
}

/// The candidate layers and their neurons, numbered globally in layer order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NeuronSpace {
    pub granularity: Granularity,
    pub layers: Vec<LayerInfo>,
    /// `offsets[l]` is the global number of layer l's first neuron; the last entry is the total.
    pub offsets: Vec<usize>,
}

impl NeuronSpace {
    pub fn new(all: &[LayerInfo], filter: &CandidateFilter, granularity: Granularity) -> Result<NeuronSpace> {
        for name in &filter.layers {
            if !all.iter().any(|l| &l.name == name) {
                bail!("unknown layer '{name}' (valid: {})", names(all));
            }
        }
        let layers: Vec<LayerInfo> = all
            .iter()
            .filter(|l| filter.layers.is_empty() || filter.layers.contains(&l.name))
            .filter(|l| !(filter.exclude_head && l.head))
            .filter(|l| !(filter.exclude_shortcuts && l.shortcut))
            .cloned()
            .collect();
        if layers.is_empty() {
            bail!("no candidate layers are left after the exclusions (layers: {})", names(all));
        }
        let mut offsets = vec![0];
        for layer in &layers {
            offsets.push(offsets.last().copied().unwrap_or(0) + granularity.split(layer).0);
        }
        Ok(NeuronSpace { granularity, layers, offsets })
    }

    pub fn total(&self) -> usize {
        self.offsets.last().copied().unwrap_or(0)
    }

    /// Index of candidate layer `name`, or an error listing the candidates.
    pub fn layer_index(&self, name: &str) -> Result<usize> {
        match self.layers.iter().position(|l| l.name == name) {
            Some(i) => Ok(i),
            None => bail!("layer '{name}' is not a candidate layer (valid: {})", names(&self.layers)),
        }
    }

    /// Global numbers of the neurons of candidate layer `l`.
    pub fn range(&self, l: usize) -> std::ops::Range<usize> {
        self.offsets[l]..self.offsets[l + 1]
    }

    /// (candidate layer, index in layer) of global neuron `flat`.
    pub fn locate(&self, flat: usize) -> (usize, usize) {
        let l = self.offsets.partition_point(|&o| o <= flat) - 1;
        (l, flat - self.offsets[l])
    }

    pub fn id(&self, flat: usize) -> NeuronId {
        let (l, index) = self.locate(flat);
        NeuronId { layer: self.layers[l].name.clone(), index }
    }

    /// Weights per neuron in candidate layer `l`.
    pub fn per_neuron(&self, l: usize) -> usize {
        self.granularity.split(&self.layers[l]).1
    }
}

fn names(layers: &[LayerInfo]) -> String {
    layers.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(", ")
}
