//! Pruning masks over the weights the release prunes (a ResNet's convs, a ViT's block
//! Linears) and the masked network that shares the dense one's parameters (the "auxiliary
//! pruned model"): its forward pass uses `weight * mask`, so its gradient reaches only the
//! weights the mask keeps.

use std::collections::BTreeMap;

use anyhow::{Result, ensure};
use burn::module::{Module, ModuleMapper, Param};
use burn::prelude::*;
use burn::tensor::TensorData;

use crate::model::{LayerKind, ModulePath, Network};
use crate::neurons::NeuronSpace;
use crate::neurons::weights::{read_weights, transpose};

/// 0/1 masks of layer weights by layer, PyTorch layout (`[out, in, kh, kw]`, `[out, in]`),
/// with the number of weights they zero. Layers not listed are not masked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Masks {
    pub layers: BTreeMap<String, Vec<f32>>,
    pub zeroed: usize,
    /// Weights considered.
    pub total: usize,
}

impl Masks {
    /// Zeroed fraction per layer, in layer order (the released code's
    /// `pruned_neuron_module_dict`).
    pub fn per_layer(&self) -> Vec<(String, f64)> {
        self.layers
            .iter()
            .map(|(name, m)| (name.clone(), m.iter().filter(|&&v| v == 0.0).count() as f64 / m.len() as f64))
            .collect()
    }
}

/// Whether the release prunes the weight of layer `name`: every conv of a ResNet
/// (`resnet_prune.py`'s `PrunedConv2d`; the linear head and BatchNorm never), the Linears
/// inside a ViT's blocks (`deit_prune.py`'s `PrunedLinear` `attn.qkv`, `attn.proj`,
/// `mlp.fc1`, `mlp.fc2`; the patch embedding, a conv, and the head never). Nothing of a
/// TorchScript module or a user's burn module (mitigation refuses both before it gets here).
pub fn prunable(model: &Network, name: &str, kind: LayerKind) -> bool {
    match model {
        Network::SmallResNet(_) | Network::ResNet(_) => kind == LayerKind::Conv,
        Network::ViT(_) => kind == LayerKind::Linear && name.starts_with("blocks."),
        Network::Scripted(_) | Network::Custom(_) => false,
    }
}

/// The released code's mask: over every weight the release prunes ([`prunable`]), the
/// `k = ⌈fraction · N⌉` smallest |w| are zeroed: with `threshold` the (k+1)-th smallest |w|,
/// a weight is kept when |w| ≥ threshold (equal values at the threshold are all kept, as
/// `(|w| >= threshold).float()`). A `fraction` of 0 masks nothing (the mask ablation: the
/// masked pass is the dense pass).
pub fn smallest_magnitude(model: &Network, fraction: f64) -> Result<Masks> {
    ensure!((0.0..1.0).contains(&fraction), "prune fraction {fraction} must be in [0, 1)");
    let convs: Vec<_> =
        read_weights(model)?.into_iter().filter(|l| prunable(model, &l.name, l.kind)).collect();
    let mut magnitudes: Vec<f32> = convs.iter().flat_map(|l| l.weight.iter().map(|w| w.abs())).collect();
    let total = magnitudes.len();
    ensure!(total > 0, "the network has no weights the release prunes");
    let k = ((fraction * total as f64).ceil() as usize).min(total - 1);
    // k = 0 keeps every weight: |w| >= the smallest |w|.
    let (_, &mut threshold, _) = magnitudes.select_nth_unstable_by(k, f32::total_cmp);
    let mut masks = Masks { total, ..Masks::default() };
    for layer in convs {
        let mask: Vec<f32> =
            layer.weight.iter().map(|w| if w.abs() >= threshold { 1.0 } else { 0.0 }).collect();
        masks.zeroed += mask.iter().filter(|&&v| v == 0.0).count();
        masks.layers.insert(layer.name, mask);
    }
    Ok(masks)
}

/// Masks that zero the neurons `chosen` (global numbers in `space`, whose layers must be
/// convs): every weight of each chosen neuron.
pub fn neurons(space: &NeuronSpace, chosen: &[usize]) -> Result<Masks> {
    let mut masks = Masks::default();
    for layer in &space.layers {
        ensure!(
            layer.kind == LayerKind::Conv,
            "layer {} is not a conv: the paper variant prunes conv neurons only",
            layer.name
        );
        masks.total += layer.shape.iter().product::<usize>();
    }
    for &flat in chosen {
        let (l, index) = space.locate(flat);
        let layer = &space.layers[l];
        let per = space.per_neuron(l);
        let mask =
            masks.layers.entry(layer.name.clone()).or_insert_with(|| vec![1.0; layer.shape.iter().product()]);
        for v in &mut mask[index * per..(index + 1) * per] {
            if *v != 0.0 {
                *v = 0.0;
                masks.zeroed += 1;
            }
        }
    }
    Ok(masks)
}

/// Masks as tensors on one device, flat in burn's layout of each weight (a conv's is
/// PyTorch's; a Linear's is `[in, out]`, PyTorch's transposed), ready to apply every batch.
#[derive(Clone, Debug)]
pub struct DeviceMasks(BTreeMap<String, Tensor<1>>);

impl DeviceMasks {
    pub fn new(masks: &Masks, model: &Network, device: &Device) -> DeviceMasks {
        let layers: BTreeMap<String, (LayerKind, Vec<usize>)> =
            model.layers().into_iter().map(|l| (l.name, (l.kind, l.shape))).collect();
        let tensors = masks
            .layers
            .iter()
            .filter_map(|(name, mask)| {
                let (kind, shape) = layers.get(name)?;
                let values = match (kind, shape.as_slice()) {
                    (LayerKind::Linear, &[out, input]) => transpose(mask, out, input),
                    _ => mask.clone(),
                };
                let n = values.len();
                Some((name.clone(), Tensor::from_data(TensorData::new(values, [n]), device)))
            })
            .collect();
        DeviceMasks(tensors)
    }

    /// A network that shares `model`'s parameters with each masked weight replaced by
    /// `weight * mask` (a differentiable function of the shared weight).
    pub fn apply(&self, model: &Network) -> Network {
        model.clone().map(&mut Masker { path: ModulePath::default(), masks: &self.0 })
    }
}

struct Masker<'a> {
    path: ModulePath,
    masks: &'a BTreeMap<String, Tensor<1>>,
}

impl ModuleMapper for Masker<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.exit();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some((name, field, _)) = self.path.layer_param() else { return param };
        if field != "weight" {
            return param;
        }
        let Some(mask) = self.masks.get(&name) else { return param };
        let mask: Tensor<D> = mask.clone().reshape(param.dims());
        param.map(|w| {
            crate::device::assert_on(&mask, &w.device(), "a pruning mask");
            w * mask
        })
    }
}
