//! The layers whose weights hold neurons: every convolution and linear weight, named by
//! its module path, with shapes in PyTorch order whatever burn's storage layout.

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    Conv,
    Linear,
}

/// One weight layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// Module path, e.g. `stage2.block0.conv1`; its weight is `<name>.weight`.
    pub name: String,
    pub kind: LayerKind,
    /// PyTorch order: conv `[out, in, kh, kw]`, linear `[out, in]`.
    pub shape: Vec<usize>,
    /// Neurons at the default granularity: output filters of a conv, output units of a linear.
    pub neurons: usize,
    /// True for a 1x1 projection on a residual shortcut (torchvision's `downsample`).
    pub shortcut: bool,
    /// True for the classifier head.
    pub head: bool,
    /// The stage (see `Network::stages`) whose input a change to this layer leaves intact;
    /// `None` before the first stage (the stem). Not part of the serialised layer list.
    #[serde(skip)]
    pub stage: Option<usize>,
    /// Attention heads of a fused `qkv` projection (rows q, k, v, each head-major): its
    /// neurons are named `layer:k:h2:17`. `None` for every other layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heads: Option<usize>,
}

/// Where a module visitor or mapper is: the path of (field, container type) it entered.
#[derive(Default)]
pub(crate) struct ModulePath(Vec<(String, String)>);

impl ModulePath {
    /// Enters a module. An enum's variant (burn reports it as a module of type `Enum:…`)
    /// is skipped, so `Network::SmallResNet(m)`'s layers are named as in `m`.
    pub(crate) fn enter(&mut self, name: &str, container_type: &str) {
        self.0.push((name.to_string(), container_type.to_string()));
    }

    pub(crate) fn exit(&mut self) {
        self.0.pop();
    }

    /// The field a tensor sits in, e.g. `weight` or `running_mean`.
    pub(crate) fn field(&self) -> Option<&str> {
        self.0.last().map(|(field, _)| field.as_str())
    }

    /// For a tensor directly inside a conv or linear layer: (layer name, field, kind), e.g.
    /// (`stage2.block0.conv1`, `weight`, conv).
    pub(crate) fn layer_param(&self) -> Option<(String, &str, LayerKind)> {
        let (field, owner) = self.0.last()?;
        let kind = match owner.as_str() {
            "Struct:Conv2d" => LayerKind::Conv,
            "Struct:Linear" => LayerKind::Linear,
            _ => return None,
        };
        let name = self.0[..self.0.len() - 1]
            .iter()
            .filter(|(_, owner)| !owner.starts_with("Enum:"))
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(".");
        Some((name, field.as_str(), kind))
    }
}

#[derive(Default)]
struct Collector {
    path: ModulePath,
    layers: Vec<LayerInfo>,
}

impl ModuleVisitor for Collector {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some((name, "weight", kind)) = self.path.layer_param() else { return };
        let mut shape = param.dims().to_vec();
        if kind == LayerKind::Linear {
            shape.reverse(); // burn stores [in, out]
        }
        self.layers.push(LayerInfo {
            shortcut: name.split('.').any(|n| n == "shortcut" || n == "downsample"),
            head: false,
            stage: None,
            heads: None,
            neurons: shape[0],
            kind,
            shape,
            name,
        });
    }
}

/// The weight layers of `model` in forward order; the last linear layer is the head. (For a
/// [`super::Network`], `Network::layers` also gives each layer its stage.)
pub fn layer_infos<M: Module>(model: &M) -> Vec<LayerInfo> {
    let mut collector = Collector::default();
    model.visit(&mut collector);
    let mut layers = collector.layers;
    if let Some(head) = layers.iter_mut().rev().find(|l| l.kind == LayerKind::Linear) {
        head.head = true;
    }
    layers
}

/// A model's float values in PyTorch's two conventions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ParamCounts {
    /// What `sum(p.numel() for p in model.parameters())` gives: conv and linear weights and
    /// biases, BatchNorm weight and bias.
    pub trainable: usize,
    /// BatchNorm's running statistics (`running_mean`, `running_var`): buffers in PyTorch,
    /// stored in checkpoints, not trained. (`num_batches_tracked` is not stored.)
    pub buffers: usize,
}

/// The running statistics of a BatchNorm: PyTorch buffers, not parameters.
pub(crate) const BUFFER_FIELDS: [&str; 2] = ["running_mean", "running_var"];

#[derive(Default)]
struct Counter {
    path: ModulePath,
    counts: ParamCounts,
}

impl ModuleVisitor for Counter {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let n: usize = param.dims().iter().product();
        match self.path.field() {
            Some(field) if BUFFER_FIELDS.contains(&field) => self.counts.buffers += n,
            _ => self.counts.trainable += n,
        }
    }
}

/// The trainable parameters and buffers of `model`.
pub(crate) fn param_counts<M: Module>(model: &M) -> ParamCounts {
    let mut counter = Counter::default();
    model.visit(&mut counter);
    counter.counts
}
