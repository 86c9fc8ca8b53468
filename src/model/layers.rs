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
}

#[derive(Default)]
struct Collector {
    path: Vec<(String, String)>,
    layers: Vec<LayerInfo>,
}

impl ModuleVisitor for Collector {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.push((name.to_string(), container_type.to_string()));
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some((field, owner)) = self.path.last() else { return };
        if field != "weight" {
            return;
        }
        let kind = match owner.as_str() {
            "Struct:Conv2d" => LayerKind::Conv,
            "Struct:Linear" => LayerKind::Linear,
            _ => return,
        };
        let mut shape = param.dims().to_vec();
        if kind == LayerKind::Linear {
            shape.reverse(); // burn stores [in, out]
        }
        let names: Vec<&str> = self.path[..self.path.len() - 1].iter().map(|(n, _)| n.as_str()).collect();
        let name = names.join(".");
        self.layers.push(LayerInfo {
            shortcut: names.iter().any(|n| *n == "shortcut" || *n == "downsample"),
            head: false,
            neurons: shape[0],
            kind,
            shape,
            name,
        });
    }
}

/// The weight layers of `model` in forward order; the last linear layer is the head.
pub fn layer_infos<M: Module>(model: &M) -> Vec<LayerInfo> {
    let mut collector = Collector::default();
    model.visit(&mut collector);
    let mut layers = collector.layers;
    if let Some(head) = layers.iter_mut().rev().find(|l| l.kind == LayerKind::Linear) {
        head.head = true;
    }
    layers
}
