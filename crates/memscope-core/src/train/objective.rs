//! What a training step minimises. The loop ([`super::fit`]) knows nothing of the loss: ERM
//! is one objective, the mitigation methods will be others.

use anyhow::Result;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::prelude::*;

use crate::experiment::{CrossEntropyOn, Diagnostics};
use crate::model::{Mode, Network};

/// One training batch on the autodiff device.
pub struct TrainBatch {
    /// `[n, c, h, w]`
    pub images: Tensor<4>,
    /// `[n]`
    pub labels: Tensor<1, Int>,
    /// Positions of the examples in the training split (for objectives that weight or
    /// remember examples).
    pub indices: Vec<usize>,
    /// The examples' groups: read only by objectives that use group labels (GroupDRO).
    pub groups: Vec<usize>,
}

/// A training objective: the scalar loss of `model` on a batch.
pub trait Objective {
    /// The name recorded in the experiment (e.g. `erm`).
    fn name(&self) -> &'static str;

    /// The mean loss over the batch, `[1]`, differentiable in the model's parameters.
    fn loss(&mut self, model: &Network, batch: &TrainBatch) -> Result<Tensor<1>>;

    /// Hears that epoch `epoch` (1-based) starts with `model` (e.g. to recompute a mask).
    fn begin_epoch(&mut self, _model: &Network, _epoch: usize) -> Result<()> {
        Ok(())
    }

    /// Whether it keeps [`Diagnostics`] (then the loop measures each step's gradient norm).
    fn diagnosed(&self) -> bool {
        false
    }

    /// The epoch's terms, means over its batches (`grad_norm` left for the loop to fill), and
    /// a fresh start for the next epoch; none for an objective that keeps none.
    fn diagnostics(&mut self) -> Result<Option<Diagnostics>> {
        Ok(None)
    }
}

/// What the supervised cross-entropy reads of `logits` (`[n, classes]`): the logits, or the
/// softmax probabilities (the release's form: its cross-entropy applies a second softmax).
pub fn ce_input(on: CrossEntropyOn, logits: Tensor<2>) -> Tensor<2> {
    match on {
        CrossEntropyOn::Logits => logits,
        CrossEntropyOn::Softmax => burn::tensor::activation::softmax(logits, 1),
    }
}

/// Empirical risk minimisation: mean cross-entropy on the logits (or on the softmax output,
/// as the release), BatchNorm in training mode.
pub struct Erm {
    loss: CrossEntropyLoss,
    on: CrossEntropyOn,
}

impl Erm {
    pub fn new(device: &Device, on: CrossEntropyOn) -> Erm {
        Erm { loss: CrossEntropyLossConfig::new().init(device), on }
    }
}

impl Objective for Erm {
    fn name(&self) -> &'static str {
        "erm"
    }

    fn loss(&mut self, model: &Network, batch: &TrainBatch) -> Result<Tensor<1>> {
        let logits = model.forward(batch.images.clone(), Mode::Auto);
        Ok(self.loss.forward(ce_input(self.on, logits), batch.labels.clone()))
    }
}
