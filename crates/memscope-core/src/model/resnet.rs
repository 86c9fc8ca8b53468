//! torchvision's ResNet-18, -34 and -50 with torchvision's parameter names (`conv1`, `bn1`,
//! `layer1.0.conv1`, `layer2.0.downsample.0`, `fc`), so a PyTorch state dict loads as it is
//! and layer names on screen are the ones PyTorch users know. The authors' head (`fc.0`, a
//! Linear followed by a Softmax) is the `LinearSoftmax` head: memscope evaluates, scores and
//! trains on the Linear's logits (the Softmax changes no prediction, and a loss on
//! probabilities is not the cross-entropy the paper's scores use).

use anyhow::{Result, ensure};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};

use super::blocks::{Mode, conv_norm};

/// The torchvision depths memscope knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Depth {
    ResNet18,
    ResNet34,
    ResNet50,
}

impl Depth {
    /// "ResNet-50".
    pub fn title(self) -> &'static str {
        match self {
            Depth::ResNet18 => "ResNet-18",
            Depth::ResNet34 => "ResNet-34",
            Depth::ResNet50 => "ResNet-50",
        }
    }

    /// Blocks per stage and whether they are bottlenecks (expansion 4).
    fn layout(self) -> ([usize; 4], bool) {
        match self {
            Depth::ResNet18 => ([2, 2, 2, 2], false),
            Depth::ResNet34 => ([3, 4, 6, 3], false),
            Depth::ResNet50 => ([3, 4, 6, 3], true),
        }
    }
}

/// How the classifier ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeadKind {
    /// `fc`: one Linear layer (torchvision).
    #[default]
    Linear,
    /// `fc.0` + Softmax (the authors' code): read as the Linear's logits.
    LinearSoftmax,
}

/// Architecture of a torchvision [`ResNet`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResNetConfig {
    pub depth: Depth,
    pub num_classes: usize,
    pub in_channels: usize,
    pub head: HeadKind,
}

impl Default for ResNetConfig {
    fn default() -> Self {
        ResNetConfig { depth: Depth::ResNet18, num_classes: 2, in_channels: 3, head: HeadKind::Linear }
    }
}

fn conv(input: usize, output: usize, kernel: usize, stride: usize, device: &Device) -> Conv2d {
    let pad = kernel / 2;
    Conv2dConfig::new([input, output], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
        // torchvision: kaiming_normal_(mode="fan_out", nonlinearity="relu")
        .with_initializer(Initializer::KaimingNormal { gain: std::f64::consts::SQRT_2, fan_out_only: true })
        .init(device)
}

impl ResNetConfig {
    pub fn validate(&self) -> Result<()> {
        ensure!(self.num_classes >= 2, "model: num_classes must be at least 2");
        ensure!(
            (1..=64).contains(&self.in_channels),
            "model: in_channels {} out of range 1..=64",
            self.in_channels
        );
        Ok(())
    }

    /// Channels of the pooled features (`fc`'s input): 512, or 2048 for bottlenecks.
    pub(crate) fn feature_dim(&self) -> usize {
        if self.depth.layout().1 { 2048 } else { 512 }
    }

    pub fn init(&self, device: &Device) -> ResNet {
        let (blocks, bottleneck) = self.depth.layout();
        let expansion = if bottleneck { 4 } else { 1 };
        let mut channels = 64;
        let mut layers: Vec<Vec<Block>> = Vec::new();
        for (stage, &count) in blocks.iter().enumerate() {
            let planes = 64 << stage;
            let stride = if stage == 0 { 1 } else { 2 };
            let layer = (0..count)
                .map(|b| {
                    let s = if b == 0 { stride } else { 1 };
                    let out = planes * expansion;
                    let downsample = (s != 1 || channels != out)
                        .then(|| (conv(channels, out, 1, s, device), BatchNormConfig::new(out).init(device)));
                    let block = if bottleneck {
                        Block::Bottleneck(Bottleneck {
                            conv1: conv(channels, planes, 1, 1, device),
                            bn1: BatchNormConfig::new(planes).init(device),
                            conv2: conv(planes, planes, 3, s, device),
                            bn2: BatchNormConfig::new(planes).init(device),
                            conv3: conv(planes, out, 1, 1, device),
                            bn3: BatchNormConfig::new(out).init(device),
                            downsample,
                        })
                    } else {
                        Block::Basic(BasicBlock {
                            conv1: conv(channels, planes, 3, s, device),
                            bn1: BatchNormConfig::new(planes).init(device),
                            conv2: conv(planes, planes, 3, 1, device),
                            bn2: BatchNormConfig::new(planes).init(device),
                            downsample,
                        })
                    };
                    channels = out;
                    block
                })
                .collect();
            layers.push(layer);
        }
        let linear = LinearConfig::new(self.feature_dim(), self.num_classes).init(device);
        let [layer1, layer2, layer3, layer4]: [Vec<Block>; 4] =
            layers.try_into().unwrap_or_else(|_| unreachable!("four stages are built above"));
        ResNet {
            conv1: Conv2dConfig::new([self.in_channels, 64], [7, 7])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(3, 3, 3, 3))
                .with_bias(false)
                .with_initializer(Initializer::KaimingNormal {
                    gain: std::f64::consts::SQRT_2,
                    fan_out_only: true,
                })
                .init(device),
            bn1: BatchNormConfig::new(64).init(device),
            maxpool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            layer1,
            layer2,
            layer3,
            layer4,
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc: match self.head {
                HeadKind::Linear => Head::Linear(linear),
                HeadKind::LinearSoftmax => Head::LinearSoftmax(vec![linear]),
            },
        }
    }
}

/// Two 3x3 convolutions (ResNet-18/34).
#[derive(Module, Debug)]
pub struct BasicBlock {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    /// `downsample.0` (1x1 conv) and `downsample.1` (BatchNorm), as torchvision names them.
    pub downsample: Option<(Conv2d, BatchNorm)>,
}

/// 1x1, 3x3 (with the stride: "ResNet v1.5", torchvision), 1x1 (ResNet-50).
#[derive(Module, Debug)]
pub struct Bottleneck {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub conv3: Conv2d,
    pub bn3: BatchNorm,
    pub downsample: Option<(Conv2d, BatchNorm)>,
}

/// A residual block (the variant name is not part of parameter names).
// One network holds blocks of one kind, so the size difference costs nothing; boxing a
// variant would need a `Module` impl for `Box`.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Block {
    Basic(BasicBlock),
    Bottleneck(Bottleneck),
}

impl Block {
    fn forward(&self, x: Tensor<4>, mode: Mode) -> Tensor<4> {
        let (out, downsample) = match self {
            Block::Basic(b) => {
                let out = relu(conv_norm(&b.conv1, &b.bn1, x.clone(), mode));
                (conv_norm(&b.conv2, &b.bn2, out, mode), &b.downsample)
            }
            Block::Bottleneck(b) => {
                let out = relu(conv_norm(&b.conv1, &b.bn1, x.clone(), mode));
                let out = relu(conv_norm(&b.conv2, &b.bn2, out, mode));
                (conv_norm(&b.conv3, &b.bn3, out, mode), &b.downsample)
            }
        };
        let skip = match downsample {
            Some((conv, bn)) => conv_norm(conv, bn, x, mode),
            None => x,
        };
        relu(out + skip)
    }
}

/// `fc` (one Linear) or `fc.0` (Linear, then a Softmax memscope leaves out).
#[derive(Module, Debug)]
pub enum Head {
    Linear(Linear),
    LinearSoftmax(Vec<Linear>),
}

impl Head {
    pub(crate) fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        match self {
            Head::Linear(linear) => linear.forward(x),
            Head::LinearSoftmax(layers) => layers.iter().fold(x, |x, l| l.forward(x)),
        }
    }
}

/// A torchvision ResNet: logits `[batch, classes]` from images `[batch, c, h, w]`.
#[derive(Module, Debug)]
pub struct ResNet {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub maxpool: MaxPool2d,
    pub layer1: Vec<Block>,
    pub layer2: Vec<Block>,
    pub layer3: Vec<Block>,
    pub layer4: Vec<Block>,
    pub avgpool: AdaptiveAvgPool2d,
    pub fc: Head,
}

impl ResNet {
    /// The stages whose inputs are cached: a layer inside `STAGES[k]` leaves boundary k intact.
    pub(crate) const STAGES: [&'static str; 5] = ["layer1", "layer2", "layer3", "layer4", "fc"];

    fn stem(&self, images: Tensor<4>, mode: Mode) -> Tensor<4> {
        self.maxpool.forward(relu(conv_norm(&self.conv1, &self.bn1, images, mode))) // [b, 64, h/4, w/4]
    }

    fn layers(&self) -> [&Vec<Block>; 4] {
        [&self.layer1, &self.layer2, &self.layer3, &self.layer4]
    }

    fn stages_from(&self, k: usize, mut x: Tensor<4>, mode: Mode) -> Tensor<4> {
        for layer in self.layers().into_iter().skip(k) {
            x = layer.iter().fold(x, |x, block| block.forward(x, mode));
        }
        x
    }

    fn pooled(&self, x: Tensor<4>) -> Tensor<2> {
        self.avgpool.forward(x).flatten(1, 3) // [b, 512 | 2048]
    }

    pub fn forward(&self, images: Tensor<4>, mode: Mode) -> Tensor<2> {
        let x = self.stem(images, mode);
        self.fc.forward(self.pooled(self.stages_from(0, x, mode)))
    }

    /// The head on pooled features.
    pub(crate) fn classify(&self, features: Tensor<2>) -> Tensor<2> {
        self.fc.forward(features)
    }

    pub fn features(&self, images: Tensor<4>, mode: Mode) -> Tensor<2> {
        let x = self.stem(images, mode);
        self.pooled(self.stages_from(0, x, mode))
    }

    /// The eval-mode activations entering layer1..layer4 and `fc` (the pooled features, kept
    /// as `[b, d, 1, 1]`).
    pub fn boundaries(&self, images: Tensor<4>) -> Vec<Tensor<4>> {
        let mut x = self.stem(images, Mode::Eval);
        let mut out = vec![x.clone()];
        for layer in self.layers() {
            x = layer.iter().fold(x, |x, block| block.forward(x, Mode::Eval));
            out.push(x.clone());
        }
        let last = out.len() - 1;
        out[last] = self.avgpool.forward(out[last].clone());
        out
    }

    /// Eval-mode logits from the activation entering stage `k`.
    pub fn forward_from(&self, k: usize, x: Tensor<4>) -> Tensor<2> {
        if k >= 4 {
            return self.fc.forward(x.flatten(1, 3));
        }
        self.fc.forward(self.pooled(self.stages_from(k, x, Mode::Eval)))
    }
}
