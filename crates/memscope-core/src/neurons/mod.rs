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

/// A neuron's stable id: `layer:index`; in a fused attention `qkv` projection
/// `layer:k:h2:17` (row 17 of head 2 of the keys), with `:in5` for one input weight at the
/// kernel and weight granularities.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NeuronId {
    pub layer: String,
    /// The neuron's number within the layer at the space's granularity.
    pub index: usize,
    /// Where it lies in a fused `qkv` projection; `None` in every other layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qkv: Option<QkvPlace>,
}

impl fmt::Display for NeuronId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.qkv {
            None => write!(f, "{}:{}", self.layer, self.index),
            Some(p) => {
                write!(f, "{}:{}:h{}:{}", self.layer, p.part, p.head, p.row)?;
                match p.input {
                    Some(i) => write!(f, ":in{i}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// One of the three projections a fused `qkv` weight stacks (rows q, then k, then v).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Qkv {
    Q,
    K,
    V,
}

impl Qkv {
    const ALL: [Qkv; 3] = [Qkv::Q, Qkv::K, Qkv::V];
}

impl fmt::Display for Qkv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Qkv::Q => "q",
            Qkv::K => "k",
            Qkv::V => "v",
        })
    }
}

impl FromStr for Qkv {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "q" => Ok(Qkv::Q),
            "k" => Ok(Qkv::K),
            "v" => Ok(Qkv::V),
            other => bail!("'{other}' is none of q, k, v"),
        }
    }
}

/// Where a neuron of a fused `qkv` projection `[3·dim, dim]` lies: output row
/// `part·dim + head·(dim/heads) + row`, and at the kernel and weight granularities its
/// input column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct QkvPlace {
    pub part: Qkv,
    pub head: usize,
    pub row: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<usize>,
}

/// (rows per part, rows per head) of a fused qkv layer with `heads`.
fn qkv_sizes(layer: &LayerInfo, heads: usize) -> (usize, usize) {
    let dim = layer.shape[0] / 3;
    (dim, dim / heads.max(1))
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
    pub(crate) fn layer_index(&self, name: &str) -> Result<usize> {
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
        let layer = &self.layers[l];
        let qkv = layer.heads.filter(|_| layer.kind == LayerKind::Linear).map(|heads| {
            let (dim, per_head) = qkv_sizes(layer, heads);
            let (out, input) = match self.granularity {
                Granularity::Unit => (index, None),
                _ => (index / layer.shape[1], Some(index % layer.shape[1])),
            };
            let part = Qkv::ALL[(out / dim).min(2)];
            QkvPlace { part, head: (out % dim) / per_head, row: out % per_head, input }
        });
        NeuronId { layer: layer.name.clone(), index, qkv }
    }

    /// The global number of the neuron `id` names: `layer:index`, or in a fused qkv layer
    /// `layer:k:h2:17` (with `:in5` at the kernel and weight granularities), as
    /// [`NeuronId`]'s display writes it.
    pub fn resolve(&self, id: &str) -> Result<usize> {
        let Some((name, rest)) = id.split_once(':') else {
            bail!("neuron '{id}' is not layer:index (e.g. {})", self.id(0));
        };
        let l = self.layer_index(name).map_err(|e| anyhow::anyhow!("neuron '{id}': {e}"))?;
        let layer = &self.layers[l];
        let count = self.range(l).len();
        let number = |s: &str, what: &str| {
            s.parse::<usize>().map_err(|_| anyhow::anyhow!("neuron '{id}': '{s}' is not a {what}"))
        };
        let index = match (rest.split(':').collect::<Vec<_>>().as_slice(), layer.heads) {
            ([index], _) => number(index, "neuron number")?,
            ([part, head, row, input @ ..], Some(heads)) if input.len() <= 1 => {
                let part: Qkv = part.parse().map_err(|e| anyhow::anyhow!("neuron '{id}': {e}"))?;
                let head = head
                    .strip_prefix('h')
                    .ok_or_else(|| anyhow::anyhow!("neuron '{id}': '{head}' is not a head (h0, h1, …)"))?;
                let head = number(head, "head number")?;
                let row = number(row, "row number")?;
                let (dim, per_head) = qkv_sizes(layer, heads);
                anyhow::ensure!(
                    head < heads,
                    "neuron '{id}': layer {name} has {heads} heads (h0..h{})",
                    heads - 1
                );
                anyhow::ensure!(
                    row < per_head,
                    "neuron '{id}': a head of {name} has {per_head} rows (0..{})",
                    per_head - 1
                );
                let out = Qkv::ALL.iter().position(|p| *p == part).unwrap_or(0) * dim + head * per_head + row;
                match (input.first(), self.granularity) {
                    (None, Granularity::Unit) => out,
                    (Some(i), Granularity::Kernel | Granularity::Weight) => {
                        let i = i.strip_prefix("in").ok_or_else(|| {
                            anyhow::anyhow!("neuron '{id}': '{i}' is not an input (in0, in1, …)")
                        })?;
                        let i = number(i, "input number")?;
                        anyhow::ensure!(
                            i < layer.shape[1],
                            "neuron '{id}': {name} has {} inputs",
                            layer.shape[1]
                        );
                        out * layer.shape[1] + i
                    }
                    (None, g) => {
                        bail!("neuron '{id}': at the {g} granularity a qkv neuron ends with :inN (its input)")
                    }
                    (Some(_), g) => bail!("neuron '{id}': at the {g} granularity a qkv neuron has no :inN"),
                }
            }
            _ => bail!(
                "neuron '{id}' is not layer:index{}",
                if layer.heads.is_some() { " or layer:q|k|v:hH:ROW" } else { "" }
            ),
        };
        anyhow::ensure!(
            index < count,
            "neuron '{id}': layer {name} has {count} neurons at the {} granularity (0..={})",
            self.granularity,
            count.saturating_sub(1)
        );
        Ok(self.offsets[l] + index)
    }

    /// The neuron `id` names, as [`NeuronSpace::id`] writes it back: the inverse of
    /// [`NeuronId`]'s display (the plain `layer:index` of a qkv neuron comes back in its
    /// `layer:q|k|v:hH:ROW` form).
    pub fn neuron(&self, id: &str) -> Result<NeuronId> {
        Ok(self.id(self.resolve(id)?))
    }

    /// Neurons chosen by hand, as typed (`stem.conv:13`, `blocks.3.attn.qkv:k:h2:17`): each
    /// parsed by [`NeuronSpace::neuron`], none named twice (in either of its forms).
    pub fn named<S: AsRef<str>>(&self, ids: &[S]) -> Result<Vec<NeuronId>> {
        anyhow::ensure!(!ids.is_empty(), "no neurons named (e.g. {})", self.id(0));
        let mut seen = std::collections::HashMap::new();
        let mut neurons = Vec::with_capacity(ids.len());
        for id in ids {
            let id = id.as_ref().trim();
            let flat = self.resolve(id)?;
            match seen.insert(flat, id) {
                Some(first) if first == id => bail!("neuron '{id}' is named twice"),
                Some(first) => bail!("neuron '{id}' is '{first}' again"),
                None => {}
            }
            neurons.push(self.id(flat));
        }
        Ok(neurons)
    }

    /// The global number of `neuron`, checked against this space (its layer a candidate, its
    /// index in range, its qkv place the one its index has).
    pub fn number(&self, neuron: &NeuronId) -> Result<usize> {
        let l = self.layer_index(&neuron.layer).map_err(|e| anyhow::anyhow!("neuron '{neuron}': {e}"))?;
        let count = self.range(l).len();
        anyhow::ensure!(
            neuron.index < count,
            "neuron '{neuron}': layer {} has {count} neurons at the {} granularity (0..={})",
            neuron.layer,
            self.granularity,
            count.saturating_sub(1)
        );
        let flat = self.offsets[l] + neuron.index;
        anyhow::ensure!(
            self.id(flat) == *neuron,
            "neuron '{neuron}' is '{}' at the {} granularity",
            self.id(flat),
            self.granularity
        );
        Ok(flat)
    }

    /// The candidate layer and global neuron numbers a ranking scope names: a layer, one
    /// projection of a fused qkv layer (`blocks.3.attn.qkv:k`) or one head of it
    /// (`blocks.3.attn.qkv:k:h2`).
    pub(crate) fn scope_range(&self, scope: &str) -> Result<(usize, std::ops::Range<usize>)> {
        let mut parts = scope.split(':');
        let name = parts.next().unwrap_or_default();
        let l = self.layer_index(name)?;
        let range = self.range(l);
        let rest: Vec<&str> = parts.collect();
        if rest.is_empty() {
            return Ok((l, range));
        }
        let layer = &self.layers[l];
        let Some(heads) = layer.heads else {
            bail!("scope '{scope}': only a fused attention qkv layer has parts (layer:q, layer:k:h0)");
        };
        let (dim, per_head) = qkv_sizes(layer, heads);
        let per_row = range.len() / layer.shape[0]; // neurons per output row
        let part: Qkv = rest[0].parse().map_err(|e| anyhow::anyhow!("scope '{scope}': {e}"))?;
        let mut start = Qkv::ALL.iter().position(|p| *p == part).unwrap_or(0) * dim;
        let mut rows = dim;
        match rest.get(1..).unwrap_or_default() {
            [] => {}
            [head] => {
                let h = head
                    .strip_prefix('h')
                    .and_then(|h| h.parse::<usize>().ok())
                    .filter(|&h| h < heads)
                    .ok_or_else(|| {
                    anyhow::anyhow!("scope '{scope}': '{head}' is not a head of {name} (h0..h{})", heads - 1)
                })?;
                start += h * per_head;
                rows = per_head;
            }
            _ => bail!("scope '{scope}' is not layer, layer:q|k|v or layer:q|k|v:hH"),
        }
        let first = range.start + start * per_row;
        Ok((l, first..first + rows * per_row))
    }

    /// Weights per neuron in candidate layer `l`.
    pub(crate) fn per_neuron(&self, l: usize) -> usize {
        self.granularity.split(&self.layers[l]).1
    }
}

fn names(layers: &[LayerInfo]) -> String {
    layers.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qkv_space(granularity: Granularity) -> NeuronSpace {
        let layer = |name: &str, shape: Vec<usize>, heads| LayerInfo {
            name: name.into(),
            kind: LayerKind::Linear,
            neurons: shape[0],
            shape,
            shortcut: false,
            head: false,
            stage: None,
            heads,
        };
        // dim 8, 2 heads of 4 rows: rows 0..8 q, 8..16 k, 16..24 v.
        let layers = [layer("blocks.0.attn.qkv", vec![24, 8], Some(2)), layer("head", vec![2, 8], None)];
        NeuronSpace::new(&layers, &CandidateFilter::default(), granularity).unwrap()
    }

    #[test]
    fn qkv_neurons_name_their_projection_head_and_row_and_parse_back() {
        let space = qkv_space(Granularity::Unit);
        assert_eq!(space.id(0).to_string(), "blocks.0.attn.qkv:q:h0:0");
        assert_eq!(space.id(8 + 4 + 3).to_string(), "blocks.0.attn.qkv:k:h1:3");
        assert_eq!(space.id(23).to_string(), "blocks.0.attn.qkv:v:h1:3");
        assert_eq!(space.id(25).to_string(), "head:1");
        for flat in 0..space.total() {
            assert_eq!(space.resolve(&space.id(flat).to_string()).unwrap(), flat);
        }
        // The plain layer:index form works in a qkv layer too.
        assert_eq!(space.resolve("blocks.0.attn.qkv:12").unwrap(), 12);
        for bad in [
            "blocks.0.attn.qkv:x:h0:0",
            "blocks.0.attn.qkv:k:h2:0",
            "blocks.0.attn.qkv:k:h0:4",
            "head:2",
            "head:q:h0:0",
            "nope:1",
            "head",
        ] {
            assert!(space.resolve(bad).is_err(), "{bad}");
        }
        let weights = qkv_space(Granularity::Weight);
        assert_eq!(weights.id(8 * 9 + 5).to_string(), "blocks.0.attn.qkv:k:h0:1:in5");
        for flat in (0..weights.total()).step_by(7) {
            assert_eq!(weights.resolve(&weights.id(flat).to_string()).unwrap(), flat);
        }
        assert!(weights.resolve("blocks.0.attn.qkv:k:h0:1").is_err());
    }

    #[test]
    fn a_scope_can_be_one_projection_or_one_head_of_a_fused_qkv() {
        let space = qkv_space(Granularity::Unit);
        assert_eq!(space.scope_range("blocks.0.attn.qkv").unwrap(), (0, 0..24));
        assert_eq!(space.scope_range("blocks.0.attn.qkv:k").unwrap(), (0, 8..16));
        assert_eq!(space.scope_range("blocks.0.attn.qkv:v:h1").unwrap(), (0, 20..24));
        let weights = qkv_space(Granularity::Weight);
        assert_eq!(weights.scope_range("blocks.0.attn.qkv:q:h1").unwrap(), (0, 32..64));
        for bad in ["blocks.0.attn.qkv:z", "blocks.0.attn.qkv:k:h2", "head:q", "blocks.0.attn.qkv:k:h0:1"] {
            assert!(space.scope_range(bad).is_err(), "{bad}");
        }
        let (members, _) =
            select::scoped(&[1.0; 26], &space, &select::Scope::Layer("blocks.0.attn.qkv:k".into()), false)
                .unwrap();
        assert_eq!(members, (8..16).collect::<Vec<_>>());
    }
}
