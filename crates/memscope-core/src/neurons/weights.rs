//! Reading layer weights (or their gradients) out of a network in PyTorch layout, and
//! writing changed weights into a copy.

use std::collections::HashMap;

use anyhow::{Result, anyhow};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::{Gradients, TensorData};

use crate::model::{LayerKind, ModulePath, Network, Scripted};

/// One conv or linear layer's parameters, PyTorch layout (`[out, in, kh, kw]`, `[out, in]`).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerWeights {
    pub name: String,
    pub kind: LayerKind,
    pub shape: Vec<usize>,
    pub weight: Vec<f32>,
    pub bias: Option<Vec<f32>>,
}

/// Layer weights by name, in forward order.
pub(crate) type WeightSet = Vec<LayerWeights>;

/// `[rows, cols]` row-major → `[cols, rows]` row-major.
pub(crate) fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

/// One conv or linear parameter (or its gradient), flattened in its logical order and still
/// on its device.
struct Part {
    name: String,
    bias: bool,
    kind: LayerKind,
    dims: Vec<usize>,
    values: Tensor<1>,
}

struct Collector<'a> {
    path: ModulePath,
    grads: Option<&'a Gradients>,
    out: Vec<Part>,
}

impl ModuleVisitor for Collector<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.exit();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some((name, field, kind)) = self.path.layer_param() else { return };
        if field != "weight" && field != "bias" {
            return;
        }
        let dims = param.dims().to_vec();
        let tensor = match self.grads {
            Some(grads) => match param.grad(grads) {
                Some(g) => g,
                None => Tensor::zeros(param.shape(), &param.device()),
            },
            None => param.val(),
        };
        let values = tensor.reshape([dims.iter().product::<usize>()]);
        self.out.push(Part { name, bias: field == "bias", kind, dims, values });
    }
}

/// Conv and linear parameters (or their gradients) of a network, flattened, on its device:
/// gradients summed over passes stay there until read once.
pub(crate) struct DeviceWeights(Vec<Part>);

impl DeviceWeights {
    fn collect(model: &Network, grads: Option<&Gradients>) -> DeviceWeights {
        let mut collector = Collector { path: ModulePath::default(), grads, out: Vec::new() };
        model.visit(&mut collector);
        DeviceWeights(collector.out)
    }

    /// The gradients of every conv and linear layer's parameters (zeros where none flowed).
    pub(crate) fn gradients(model: &Network, grads: &Gradients) -> DeviceWeights {
        DeviceWeights::collect(model, Some(grads))
    }

    /// Every value times `factor` (float32, as `v * factor` on the host).
    pub(crate) fn scaled(self, factor: f32) -> DeviceWeights {
        DeviceWeights(self.0.into_iter().map(|p| Part { values: p.values.mul_scalar(factor), ..p }).collect())
    }

    /// `self + factor * other`, part by part (float32, as `a += factor * b` on the host).
    pub(crate) fn add_scaled(self, other: DeviceWeights, factor: f32) -> DeviceWeights {
        let sum = self
            .0
            .into_iter()
            .zip(other.0)
            .map(|(a, b)| Part { values: a.values + b.values.mul_scalar(factor), ..a });
        DeviceWeights(sum.collect())
    }

    /// The values on the host in PyTorch layout, biases beside their weights.
    pub(crate) fn read(self) -> Result<WeightSet> {
        let mut out: WeightSet = Vec::new();
        for part in self.0 {
            let values = part
                .values
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .map_err(|e| anyhow!("cannot read a weight tensor: {e:?}"))?;
            if part.bias {
                if let Some(layer) = out.iter_mut().rev().find(|l| l.name == part.name) {
                    layer.bias = Some(values);
                }
                continue;
            }
            let dims = part.dims;
            let (shape, weight) = match part.kind {
                LayerKind::Conv => (dims, values),
                LayerKind::Linear => (vec![dims[1], dims[0]], transpose(&values, dims[0], dims[1])),
            };
            out.push(LayerWeights { name: part.name, kind: part.kind, shape, weight, bias: None });
        }
        Ok(out)
    }
}

/// The candidate layers' weights and biases of a TorchScript network (already in PyTorch
/// layout).
pub(crate) fn scripted_weights(model: &Scripted) -> Result<WeightSet> {
    model
        .layers()
        .into_iter()
        .map(|layer| {
            let weight = model.values(&format!("{}.weight", layer.name))?;
            Ok(LayerWeights {
                weight: weight.ok_or_else(|| anyhow!("layer {} has no weight", layer.name))?,
                bias: model.values(&format!("{}.bias", layer.name))?,
                name: layer.name,
                kind: layer.kind,
                shape: layer.shape,
            })
        })
        .collect()
}

/// Every conv and linear layer's weights.
pub fn read_weights(model: &Network) -> Result<WeightSet> {
    if let Some(scripted) = model.scripted() {
        return scripted_weights(scripted);
    }
    DeviceWeights::collect(model, None).read()
}

/// The gradients of every conv and linear layer's weights (zeros where none flowed).
pub fn read_gradients(model: &Network, grads: &Gradients) -> Result<WeightSet> {
    DeviceWeights::gradients(model, grads).read()
}

struct Writer<'a> {
    path: ModulePath,
    replace: &'a HashMap<&'a str, &'a LayerWeights>,
}

impl ModuleMapper for Writer<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.exit();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some((name, field, kind)) = self.path.layer_param() else { return param };
        let Some(layer) = self.replace.get(name.as_str()) else { return param };
        let dims = param.dims();
        let values = match (field, kind) {
            ("weight", LayerKind::Conv) => layer.weight.clone(),
            ("weight", LayerKind::Linear) => transpose(&layer.weight, layer.shape[0], layer.shape[1]),
            ("bias", _) => match &layer.bias {
                Some(bias) => bias.clone(),
                None => return param,
            },
            _ => return param,
        };
        param.map(|tensor| Tensor::from_data(TensorData::new(values, dims), &tensor.device()))
    }
}

/// A copy of `model` with the layers in `layers` replaced (weights and, where given, biases).
/// The original keeps its tensors: only the copy's parameters are swapped.
pub fn with_weights(model: &Network, layers: &[&LayerWeights]) -> Network {
    if let Some(scripted) = model.scripted() {
        let mut replace: Vec<(String, &[f32])> = Vec::new();
        for layer in layers {
            replace.push((format!("{}.weight", layer.name), &layer.weight));
            if let Some(bias) = &layer.bias {
                replace.push((format!("{}.bias", layer.name), bias));
            }
        }
        return Network::Scripted(scripted.with_values(&replace));
    }
    let replace: HashMap<&str, &LayerWeights> = layers.iter().map(|l| (l.name.as_str(), *l)).collect();
    model.clone().map(&mut Writer { path: ModulePath::default(), replace: &replace })
}
