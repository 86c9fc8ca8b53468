//! The user's own burn CNN: three convolutions (the second with BatchNorm), global average
//! pooling and a linear head. Nothing memscope ships: the only memscope item it touches is
//! the `BurnClassifier` impl at the end.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn_train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use memscope_core::model::BurnClassifier;

use crate::data::DigitBatch;

/// The name the model is registered under: `experiment.ron` records it.
pub const NAME: &str = "tiny-cnn";

#[derive(Module, Debug)]
pub struct TinyCnn {
    pub conv1: Conv2d,
    pub conv2: Conv2d,
    pub norm2: BatchNorm,
    pub conv3: Conv2d,
    pub pool: AdaptiveAvgPool2d,
    pub head: Linear,
}

impl TinyCnn {
    /// A freshly initialised network for `channels`-channel images and `classes` classes.
    pub fn new(channels: usize, classes: usize, device: &Device) -> TinyCnn {
        let conv = |input: usize, output: usize, stride: usize| {
            Conv2dConfig::new([input, output], [3, 3])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        TinyCnn {
            conv1: conv(channels, 12, 1),
            conv2: conv(12, 24, 2),
            norm2: BatchNormConfig::new(24).init(device),
            conv3: conv(24, 32, 2),
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            head: LinearConfig::new(32, classes).init(device),
        }
    }

    /// The pooled representation `[batch, 32]` the head reads.
    pub fn pooled(&self, images: Tensor<4>) -> Tensor<2> {
        let x = relu(self.conv1.forward(images)); // [b, 12, h, w]
        let x = relu(self.norm2.forward(self.conv2.forward(x))); // [b, 24, h/2, w/2]
        let x = relu(self.conv3.forward(x)); // [b, 32, h/4, w/4]
        self.pool.forward(x).flatten(1, 3) // [b, 32]
    }

    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.head.forward(self.pooled(images))
    }

    fn classification(&self, batch: DigitBatch) -> ClassificationOutput {
        let output = self.forward(batch.images);
        let loss = CrossEntropyLossConfig::new()
            .init(&output.device())
            .forward(output.clone(), batch.labels.clone());
        ClassificationOutput { loss, output, targets: batch.labels }
    }
}

impl TrainStep for TinyCnn {
    type Input = DigitBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: DigitBatch) -> TrainOutput<ClassificationOutput> {
        let item = self.classification(batch);
        TrainOutput::new(self, item.loss.backward(), item)
    }
}

impl InferenceStep for TinyCnn {
    type Input = DigitBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: DigitBatch) -> ClassificationOutput {
        self.classification(batch)
    }
}

/// What memscope needs: logits, and (optionally) the penultimate features and the head.
impl BurnClassifier for TinyCnn {
    const FEATURES: bool = true;

    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward(images)
    }

    fn features(&self, images: Tensor<4>) -> Option<Tensor<2>> {
        Some(self.pooled(images))
    }

    fn head(&self, features: Tensor<2>) -> Option<Tensor<2>> {
        Some(self.head.forward(features))
    }
}
