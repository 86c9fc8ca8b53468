//! Optimizer steps through libtorch's fused kernels (burn-tch's `adam_step`).

// burn-tch is deprecated upstream; everything backend-specific stays under `device`.
#![allow(deprecated)]

use burn::prelude::*;
use burn_tch::{LibTorch, TchTensor};

/// One Adam step's settings (PyTorch's names; `weight_decay` is the L2 penalty).
#[derive(Clone, Copy, Debug)]
pub(crate) struct AdamStep {
    pub lr: f64,
    pub beta_1: f64,
    pub beta_2: f64,
    pub epsilon: f64,
    pub weight_decay: f64,
    /// 1 for the first step.
    pub step: usize,
}

/// Whether [`adam_step`] runs libtorch's fused kernel (burn-tch found its headers when built).
pub(crate) fn fused_adam() -> bool {
    burn_tch::libtorch_optim()
}

/// `param` after one Adam step with `grad`, and the new first and second moments (`None`:
/// the first step), on `param`'s device; the moments are updated in place where nothing else
/// holds them. Call only when [`fused_adam`] says it runs.
pub(crate) fn adam_step<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    moments: Option<(Tensor<D>, Tensor<D>)>,
    settings: &AdamStep,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let AdamStep { lr, beta_1, beta_2, epsilon, weight_decay, step } = *settings;
    let settings = burn_tch::AdamStep { lr, beta_1, beta_2, epsilon, weight_decay, step };
    let moments = moments.map(|(m, v)| (primitive(m), primitive(v)));
    match burn_tch::adam_step(primitive(param), primitive(grad), moments, &settings) {
        Some((param, m, v)) => (tensor(param), tensor(m), tensor(v)),
        None => panic!("burn-tch was built without its fused Adam (src/ffi/optim.cpp)"),
    }
}

/// A plain (not autodiff) tensor's libtorch handle; every tensor memscope makes is one.
fn primitive<const D: usize>(tensor: Tensor<D>) -> TchTensor {
    match tensor.try_into_primitive::<LibTorch>() {
        Ok(primitive) => primitive,
        Err(e) => panic!("an optimizer step takes plain libtorch tensors ({e:?})"),
    }
}

fn tensor<const D: usize>(primitive: TchTensor) -> Tensor<D> {
    Tensor::from_primitive::<LibTorch>(primitive)
}
