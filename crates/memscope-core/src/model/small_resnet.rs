//! A small ResNet for the demo: a stem, three stages of basic blocks, BatchNorm,
//! global average pooling and a linear head.
//!
//! Layer names read `stem.conv`, `stage2.block0.conv1`, `stage2.block0.shortcut.conv`,
//! `head`: the names used in checkpoints, on the command line and in the explorer.

use anyhow::{Result, ensure};
use burn::module::{
    Content, Devices, Module, ModuleDisplay, ModuleDisplayDefault, ModuleMapper, ModuleVisitor,
};
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{BatchNorm, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};

use super::blocks::{ConvBn, Mode, conv_norm};

/// Architecture of [`SmallResNet`]. Every field has a default (about 78K parameters).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmallResNetConfig {
    pub in_channels: usize,
    pub stem_channels: usize,
    /// Output channels of stages 1, 2, 3 (stages 2 and 3 halve the resolution).
    pub stage_channels: [usize; 3],
    /// Basic blocks in each stage.
    pub blocks_per_stage: [usize; 3],
    pub num_classes: usize,
}

impl Default for SmallResNetConfig {
    fn default() -> Self {
        SmallResNetConfig {
            in_channels: 3,
            stem_channels: 16,
            stage_channels: [16, 32, 64],
            blocks_per_stage: [1, 1, 1],
            num_classes: 2,
        }
    }
}

impl SmallResNetConfig {
    pub fn validate(&self) -> Result<()> {
        ensure!(
            (1..=64).contains(&self.in_channels),
            "model: in_channels {} out of range 1..=64",
            self.in_channels
        );
        ensure!(self.num_classes >= 2, "model: num_classes must be at least 2");
        for (what, v) in [("stem_channels", self.stem_channels)]
            .into_iter()
            .chain(self.stage_channels.iter().map(|&c| ("stage_channels", c)))
        {
            ensure!((1..=4096).contains(&v), "model: {what} value {v} out of range 1..=4096");
        }
        for &b in &self.blocks_per_stage {
            ensure!((1..=16).contains(&b), "model: blocks_per_stage value {b} out of range 1..=16");
        }
        Ok(())
    }

    pub fn init(&self, device: &Device) -> SmallResNet {
        let mut channels = self.stem_channels;
        let mut stage = |index: usize| {
            let out = self.stage_channels[index];
            let stride = if index == 0 { 1 } else { 2 };
            let blocks = (0..self.blocks_per_stage[index])
                .map(|b| {
                    let block = BasicBlock::new(channels, out, if b == 0 { stride } else { 1 }, device);
                    channels = out;
                    block
                })
                .collect();
            Stage { blocks }
        };
        let stage1 = stage(0);
        let stage2 = stage(1);
        let stage3 = stage(2);
        SmallResNet {
            stem: ConvBn::new(self.in_channels, self.stem_channels, 3, 1, device),
            stage1,
            stage2,
            stage3,
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            head: LinearConfig::new(self.stage_channels[2], self.num_classes).init(device),
        }
    }
}

/// Two 3x3 convolutions with a residual connection (a 1x1 projection when the shape changes).
#[derive(Module, Debug)]
pub struct BasicBlock {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub shortcut: Option<ConvBn>,
}

impl BasicBlock {
    fn new(input: usize, output: usize, stride: usize, device: &Device) -> Self {
        let first = ConvBn::new(input, output, 3, stride, device);
        let second = ConvBn::new(output, output, 3, 1, device);
        let shortcut =
            (stride != 1 || input != output).then(|| ConvBn::new(input, output, 1, stride, device));
        BasicBlock { conv1: first.conv, bn1: first.bn, conv2: second.conv, bn2: second.bn, shortcut }
    }

    pub fn forward(&self, x: Tensor<4>, mode: Mode) -> Tensor<4> {
        let out = relu(conv_norm(&self.conv1, &self.bn1, x.clone(), mode));
        let out = conv_norm(&self.conv2, &self.bn2, out, mode);
        let skip = match &self.shortcut {
            Some(projection) => projection.forward(x, mode),
            None => x,
        };
        relu(out + skip)
    }
}

/// The blocks of one stage, named `block0`, `block1`, … (a `Vec` would name them `0`, `1`).
#[derive(Clone, Debug)]
pub struct Stage {
    pub blocks: Vec<BasicBlock>,
}

impl Stage {
    pub fn forward(&self, x: Tensor<4>, mode: Mode) -> Tensor<4> {
        self.blocks.iter().fold(x, |x, block| block.forward(x, mode))
    }
}

impl Module for Stage {
    fn collect_devices(&self, devices: Devices) -> Devices {
        self.blocks.collect_devices(devices)
    }

    fn fork(self, device: &Device) -> Self {
        Stage { blocks: self.blocks.fork(device) }
    }

    fn to_device(self, device: &Device) -> Self {
        Stage { blocks: self.blocks.to_device(device) }
    }

    fn train(self) -> Self {
        Stage { blocks: self.blocks.train() }
    }

    fn valid(&self) -> Self {
        Stage { blocks: self.blocks.valid() }
    }

    fn materialize(self) -> Self {
        Stage { blocks: self.blocks.materialize() }
    }

    fn visit<V: ModuleVisitor>(&self, visitor: &mut V) {
        for (i, block) in self.blocks.iter().enumerate() {
            let name = format!("block{i}");
            visitor.enter_module(&name, "Struct:Stage");
            block.visit(visitor);
            visitor.exit_module(&name, "Struct:Stage");
        }
    }

    fn map<M: ModuleMapper>(self, mapper: &mut M) -> Self {
        let blocks = self
            .blocks
            .into_iter()
            .enumerate()
            .map(|(i, block)| {
                let name = format!("block{i}");
                mapper.enter_module(&name, "Struct:Stage");
                let block = block.map(mapper);
                mapper.exit_module(&name, "Struct:Stage");
                block
            })
            .collect();
        Stage { blocks }
    }
}

impl ModuleDisplayDefault for Stage {
    fn content(&self, content: Content) -> Option<Content> {
        self.blocks
            .iter()
            .enumerate()
            .fold(content, |acc, (i, block)| acc.add(&format!("block{i}"), block))
            .set_top_level_type("Stage")
            .optional()
    }
}

impl ModuleDisplay for Stage {}

/// The demo network. Logits `[batch, classes]` from images `[batch, c, h, w]`.
#[derive(Module, Debug)]
pub struct SmallResNet {
    pub stem: ConvBn,
    pub stage1: Stage,
    pub stage2: Stage,
    pub stage3: Stage,
    pub pool: AdaptiveAvgPool2d,
    pub head: Linear,
}

impl SmallResNet {
    /// Module paths of the stages whose inputs are cached (see [`Self::boundaries`]): a layer
    /// inside `STAGES[k]` leaves boundary k intact.
    pub(crate) const STAGES: [&'static str; 4] = ["stage1", "stage2", "stage3", "head"];

    /// Logits `[batch, classes]`.
    pub fn forward(&self, images: Tensor<4>, mode: Mode) -> Tensor<2> {
        let x = relu(self.stem.forward(images, mode)); // [b, 16, h, w]
        self.resume(0, x, mode)
    }

    /// The pooled penultimate representation `[batch, stage_channels[2]]`.
    pub fn features(&self, images: Tensor<4>, mode: Mode) -> Tensor<2> {
        let x = relu(self.stem.forward(images, mode));
        self.pooled(self.stages_from(0, x, mode))
    }

    /// The eval-mode activations at the stage boundaries: after the stem, stage 1, stage 2
    /// and stage 3 (the inputs of `Self::STAGES`).
    pub fn boundaries(&self, images: Tensor<4>) -> Vec<Tensor<4>> {
        let b0 = relu(self.stem.forward(images, Mode::Eval)); // [b, 16, h, w]
        let b1 = self.stage1.forward(b0.clone(), Mode::Eval); // [b, 16, h, w]
        let b2 = self.stage2.forward(b1.clone(), Mode::Eval); // [b, 32, h/2, w/2]
        let b3 = self.stage3.forward(b2.clone(), Mode::Eval); // [b, 64, h/4, w/4]
        vec![b0, b1, b2, b3]
    }

    /// Eval-mode logits from the activation at boundary `k` (see [`Self::boundaries`]).
    pub fn forward_from(&self, k: usize, x: Tensor<4>) -> Tensor<2> {
        self.resume(k, x, Mode::Eval)
    }

    fn stages_from(&self, k: usize, mut x: Tensor<4>, mode: Mode) -> Tensor<4> {
        for (i, stage) in [&self.stage1, &self.stage2, &self.stage3].into_iter().enumerate() {
            if i >= k {
                x = stage.forward(x, mode);
            }
        }
        x
    }

    fn pooled(&self, x: Tensor<4>) -> Tensor<2> {
        self.pool.forward(x).flatten(1, 3) // [b, 64]
    }

    fn resume(&self, k: usize, x: Tensor<4>, mode: Mode) -> Tensor<2> {
        let x = self.stages_from(k, x, mode);
        self.head.forward(self.pooled(x)) // [b, classes]
    }
}
