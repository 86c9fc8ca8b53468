//! Building blocks every CNN architecture shares: conv + BatchNorm, and how BatchNorm
//! behaves in a pass (training statistics, or running statistics folded into the conv).

use burn::module::{Module, Param, ParamId};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;

/// A convolution without bias followed by BatchNorm.
#[derive(Module, Debug)]
pub struct ConvBn {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

impl ConvBn {
    pub fn new(input: usize, output: usize, kernel: usize, stride: usize, device: &Device) -> Self {
        let conv = Conv2dConfig::new([input, output], [kernel, kernel])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(kernel / 2, kernel / 2, kernel / 2, kernel / 2))
            .with_bias(false)
            .init(device);
        ConvBn { conv, bn: BatchNormConfig::new(output).init(device) }
    }

    pub fn forward(&self, x: Tensor<4>, mode: Mode) -> Tensor<4> {
        conv_norm(&self.conv, &self.bn, x, mode)
    }
}

/// How BatchNorm behaves in a forward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// burn's rule: batch statistics (and running-statistic updates) when the input is on an
    /// autodiff device and the layer's training flag is on. Used by training.
    Auto,
    /// Always the running statistics, never an update: evaluation and gradient scores
    /// (PyTorch's `model.eval()`), on any device.
    Eval,
}

/// `conv` then `bn`. In eval mode the two are folded into one convolution (see [`fold`]):
/// the same function, one pass over the activations instead of the five of an unfused
/// BatchNorm (burn-tch has no fused inference BatchNorm).
pub(crate) fn conv_norm(conv: &Conv2d, bn: &BatchNorm, x: Tensor<4>, mode: Mode) -> Tensor<4> {
    match mode {
        Mode::Auto => bn.forward(conv.forward(x)),
        Mode::Eval => fold(conv, bn).forward(x),
    }
}

/// `conv` followed by `bn` with its running statistics, as one convolution: with
/// s = γ / √(σ² + ε), weight·s and bias (b − μ)·s + β. Differentiable in the conv weight, so
/// gradient scores read the same weight gradient.
pub(crate) fn fold(conv: &Conv2d, bn: &BatchNorm) -> Conv2d {
    let device = conv.weight.device();
    let variance = bn.running_var.value().to_device(&device);
    let mean = bn.running_mean.value().to_device(&device);
    let gamma = bn.gamma.val().to_device(&device);
    let beta = bn.beta.val().to_device(&device);
    let scale = gamma / (variance + bn.epsilon).sqrt(); // [out]
    let shift = beta - mean * scale.clone();
    let bias = match &conv.bias {
        Some(b) => b.val() * scale.clone() + shift,
        None => shift,
    };
    let [out, ..] = conv.weight.dims();
    let mut folded = conv.clone();
    folded.weight = Param::initialized(ParamId::new(), conv.weight.val() * scale.reshape([out, 1, 1, 1]));
    folded.bias = Some(Param::initialized(ParamId::new(), bias));
    folded
}
