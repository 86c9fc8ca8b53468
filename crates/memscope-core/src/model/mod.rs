//! Models: their architecture as written in `experiment.ron`, construction, the forward
//! passes every stage of the engine uses, and the list of layers whose weights hold neurons.
//!
//! A new architecture is one new file here plus one variant in [`ModelConfig`] and in
//! [`Network`]: the engine only calls `Network`'s methods.

pub(crate) mod blocks;
pub mod custom;
pub(crate) mod layers;
pub mod resnet;
pub mod scripted;
pub(crate) mod small_resnet;
pub(crate) mod vit;

use anyhow::{Result, bail, ensure};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

pub use blocks::Mode;
pub use custom::{BurnClassifier, Custom, CustomConfig};
pub use layers::{LayerInfo, LayerKind, layer_infos};
pub(crate) use layers::{ModulePath, ParamCounts, param_counts};
pub use resnet::{ResNet, ResNetConfig};
pub use scripted::{Scripted, TorchScriptConfig};
pub use small_resnet::{SmallResNet, SmallResNetConfig};
pub use vit::ViTConfig;
pub use vit::VisionTransformer;

/// A model architecture, exactly as recorded in an experiment file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ModelConfig {
    SmallResNet(SmallResNetConfig),
    /// torchvision ResNet-18/34/50 with torchvision's parameter names.
    ResNet(ResNetConfig),
    /// ViT / DeiT with timm's parameter names.
    ViT(ViTConfig),
    /// Any PyTorch classifier saved as TorchScript (kept in the experiment folder).
    TorchScript(TorchScriptConfig),
    /// A burn user's own [`BurnClassifier`], registered by name in the program that opens it.
    Custom(CustomConfig),
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig::SmallResNet(SmallResNetConfig::default())
    }
}

impl ModelConfig {
    /// A freshly initialised network on `device` (weights drawn from the device's RNG).
    pub fn init(&self, device: &Device) -> Result<Network> {
        match self {
            ModelConfig::SmallResNet(config) => {
                config.validate()?;
                Ok(Network::SmallResNet(config.init(device)))
            }
            ModelConfig::ResNet(config) => {
                config.validate()?;
                Ok(Network::ResNet(config.init(device)))
            }
            ModelConfig::ViT(config) => {
                config.validate()?;
                Ok(Network::ViT(config.init(device)))
            }
            ModelConfig::TorchScript(_) => {
                bail!(
                    "a TorchScript model is opened from its experiment folder, not initialised (it cannot be trained)"
                )
            }
            ModelConfig::Custom(config) => Ok(Network::Custom(custom::init(&config.name, device)?)),
        }
    }

    /// Every conv and linear layer of the architecture, in forward order.
    pub fn layers(&self, device: &Device) -> Result<Vec<LayerInfo>> {
        match self {
            ModelConfig::TorchScript(c) => Ok(c.layers.clone()),
            ModelConfig::Custom(c) => Ok(c.layers.clone()),
            _ => Ok(self.init(device)?.layers()),
        }
    }

    /// "ResNet-50, 2 classes": the architecture in words, for messages.
    pub fn describe(&self) -> String {
        match self {
            ModelConfig::SmallResNet(c) => format!("the small ResNet with {} classes", c.num_classes),
            ModelConfig::ResNet(c) => format!("{} with {} classes", c.depth.title(), c.num_classes),
            ModelConfig::ViT(c) => format!(
                "a {}ViT (dim {}, depth {}, {} heads, patch {} on {}²) with {} classes",
                if c.distilled { "distilled " } else { "" },
                c.dim,
                c.depth,
                c.heads,
                c.patch_size,
                c.img_size,
                c.num_classes
            ),
            ModelConfig::TorchScript(c) => {
                format!("the TorchScript module {} with {} classes (head {})", c.file, c.num_classes, c.head)
            }
            ModelConfig::Custom(c) => format!("the burn model '{}' with {} classes", c.name, c.num_classes),
        }
    }

    /// The PyTorch names of the classifier heads' weights and biases (one row per class): a
    /// distilled DeiT's `head_dist` too.
    pub(crate) fn head_params(&self) -> Vec<String> {
        let head = match self {
            ModelConfig::SmallResNet(_) => "head",
            ModelConfig::ResNet(c) => match c.head {
                resnet::HeadKind::Linear => "fc",
                resnet::HeadKind::LinearSoftmax => "fc.0",
            },
            ModelConfig::ViT(c) => match c.head {
                resnet::HeadKind::Linear => "head",
                resnet::HeadKind::LinearSoftmax => "head.0",
            },
            ModelConfig::TorchScript(c) => c.head.as_str(),
            ModelConfig::Custom(c) => c.layers.iter().find(|l| l.head).map_or("head", |l| l.name.as_str()),
        };
        let mut names = vec![format!("{head}.weight"), format!("{head}.bias")];
        if let ModelConfig::ViT(c) = self
            && c.distilled
        {
            names.extend(["head_dist.weight".to_string(), "head_dist.bias".to_string()]);
        }
        names
    }

    /// Checks that the model can take images of `shape` and produce `classes` logits.
    pub(crate) fn check_fits(&self, shape: [usize; 3], classes: usize) -> Result<()> {
        let (in_channels, outputs) = match self {
            ModelConfig::SmallResNet(config) => (config.in_channels, config.num_classes),
            ModelConfig::ResNet(config) => (config.in_channels, config.num_classes),
            ModelConfig::ViT(config) => {
                ensure!(
                    shape[1] == config.img_size && shape[2] == config.img_size,
                    "model expects {0}x{0} images but the data set has {1}x{2} (an image folder takes \
                     --image-size {0}, the digits --data digits:{0})",
                    config.img_size,
                    shape[1],
                    shape[2]
                );
                (config.in_channels, config.num_classes)
            }
            // The module's own forward pass says what it takes (import runs it once).
            ModelConfig::TorchScript(config) => (shape[0], config.num_classes),
            ModelConfig::Custom(config) => (config.in_channels, config.num_classes),
        };
        ensure!(
            in_channels == shape[0],
            "model expects {in_channels} input channels but the data set has {}",
            shape[0]
        );
        ensure!(outputs == classes, "model has {outputs} outputs but the data set has {classes} classes");
        Ok(())
    }
}

/// Every network the engine runs.
///
/// An enum of architectures rather than a trait: burn's `Module` derive supports enums, so
/// one concrete type goes through the session's caches, checkpoint reading and writing, the
/// weight reader and writer and the autodiff mapper with no generic parameter threaded
/// through every function and no boxing (a `Module` cannot be a trait object). The variant
/// names never reach parameter names: `ModulePath` and the checkpoint store skip them.
#[derive(Module, Debug)]
pub enum Network {
    SmallResNet(SmallResNet),
    ResNet(ResNet),
    ViT(VisionTransformer),
    /// A TorchScript module: no burn parameters (burn's visitors see none), its tensors held
    /// in libtorch (see [`scripted`]).
    Scripted(Scripted),
    /// A burn user's own module ([`custom`]): burn's visitors and mappers reach its
    /// parameters, so it is read, written and differentiated as the three above are.
    Custom(Custom),
}

/// What a feature that needs the penultimate representation says of a TorchScript model.
pub const NO_FEATURES: &str = "a TorchScript model gives its logits only, not the penultimate features DFR, the \
     paper variant and mitigation need: use intervene, scores, ranks, sensitivity, control, sweeps and figures";

/// An activation cached at a stage boundary: a feature map `[n, c, h, w]` for a CNN, the
/// tokens `[n, tokens, dim]` of a transformer.
#[derive(Clone, Debug)]
pub enum Activation {
    Map(Tensor<4>),
    Tokens(Tensor<3>),
}

impl Activation {
    /// The device the activation is on.
    pub(crate) fn device(&self) -> Device {
        match self {
            Activation::Map(t) => t.device(),
            Activation::Tokens(t) => t.device(),
        }
    }

    /// Examples in the batch (its first axis).
    pub(crate) fn examples(&self) -> usize {
        match self {
            Activation::Map(t) => t.dims()[0],
            Activation::Tokens(t) => t.dims()[0],
        }
    }

    pub(crate) fn num_elements(&self) -> usize {
        match self {
            Activation::Map(t) => t.shape().num_elements(),
            Activation::Tokens(t) => t.shape().num_elements(),
        }
    }
}

impl Network {
    /// Logits `[batch, classes]` from images `[batch, c, h, w]`. `Mode::Eval` uses
    /// BatchNorm's running statistics on any device (evaluation, gradient scores);
    /// `Mode::Auto` follows burn's rule (training).
    pub fn forward(&self, images: Tensor<4>, mode: Mode) -> Tensor<2> {
        match self {
            Network::SmallResNet(m) => m.forward(images, mode),
            Network::ResNet(m) => m.forward(images, mode),
            Network::ViT(m) => m.forward(images, mode),
            Network::Scripted(m) => m.forward(images),
            Network::Custom(m) => m.forward(images),
        }
    }

    /// The penultimate representation `[batch, dim]` the classifier head reads.
    pub fn features(&self, images: Tensor<4>, mode: Mode) -> Tensor<2> {
        match self {
            Network::SmallResNet(m) => m.features(images, mode),
            Network::ResNet(m) => m.features(images, mode),
            Network::ViT(m) => m.features(images, mode),
            Network::Scripted(_) => panic!("{NO_FEATURES}"),
            Network::Custom(m) => m.features(images),
        }
    }

    /// The classifier head on penultimate `features` `[batch, dim]`: logits `[batch, classes]`
    /// (`forward` is `head(features(x))`).
    pub fn head(&self, features: Tensor<2>) -> Tensor<2> {
        match self {
            Network::SmallResNet(m) => m.head.forward(features),
            Network::ResNet(m) => m.classify(features),
            Network::ViT(m) => m.classify(features),
            Network::Scripted(_) => panic!("{NO_FEATURES}"),
            Network::Custom(m) => m.head(features),
        }
    }

    /// Module paths of the stages, in forward order, whose inputs [`Self::boundaries`]
    /// returns: a change confined to layers inside stage k can resume from boundary k.
    pub fn stages(&self) -> Vec<String> {
        let names = |stages: &[&str]| stages.iter().map(|s| s.to_string()).collect();
        match self {
            Network::SmallResNet(_) => names(&SmallResNet::STAGES),
            Network::ResNet(_) => names(&ResNet::STAGES),
            Network::ViT(m) => m.stages(),
            // A scripted module or a user's burn module cannot be resumed part-way: no
            // activation cache.
            Network::Scripted(_) | Network::Custom(_) => Vec::new(),
        }
    }

    /// The eval-mode activations entering each of [`Self::stages`].
    pub fn boundaries(&self, images: Tensor<4>) -> Vec<Activation> {
        match self {
            Network::SmallResNet(m) => m.boundaries(images).into_iter().map(Activation::Map).collect(),
            Network::ResNet(m) => m.boundaries(images).into_iter().map(Activation::Map).collect(),
            Network::ViT(m) => m.boundaries(images).into_iter().map(Activation::Tokens).collect(),
            Network::Scripted(_) | Network::Custom(_) => Vec::new(),
        }
    }

    /// Eval-mode logits from the activation entering stage `k`.
    pub fn forward_from(&self, k: usize, x: Activation) -> Result<Tensor<2>> {
        match (self, x) {
            (Network::SmallResNet(m), Activation::Map(x)) if k < SmallResNet::STAGES.len() => {
                Ok(m.forward_from(k, x))
            }
            (Network::ResNet(m), Activation::Map(x)) if k < ResNet::STAGES.len() => Ok(m.forward_from(k, x)),
            (Network::ViT(m), Activation::Tokens(x)) if k <= m.blocks.len() => Ok(m.forward_from(k, x)),
            (_, _) => bail!("no stage boundary {k} in this network"),
        }
    }

    /// Whether [`Self::features`] and [`Self::head`] can be called (not on a TorchScript
    /// module, whose penultimate representation is not known in general, nor on a user's burn
    /// module that does not give it).
    pub fn has_features(&self) -> bool {
        match self {
            Network::Scripted(_) => false,
            Network::Custom(m) => m.has_features(),
            Network::ViT(m) => m.has_features(),
            _ => true,
        }
    }

    /// The TorchScript module of a scripted network.
    pub fn scripted(&self) -> Option<&Scripted> {
        match self {
            Network::Scripted(m) => Some(m),
            _ => None,
        }
    }

    /// The values of the parameters and of the buffers, as PyTorch counts them.
    pub(crate) fn counts(&self) -> layers::ParamCounts {
        match self {
            Network::Scripted(m) => m.counts(),
            _ => param_counts(self),
        }
    }

    /// Floats in the parameters and buffers (a cache's measure of the network).
    pub(crate) fn floats(&self) -> usize {
        let counts = self.counts();
        counts.trainable + counts.buffers
    }

    /// Every conv and linear layer in forward order, with its stage.
    pub fn layers(&self) -> Vec<LayerInfo> {
        if let Network::Scripted(m) = self {
            return m.layers();
        }
        let mut layers = layer_infos(self);
        let stages = self.stages();
        for layer in &mut layers {
            layer.stage =
                stages.iter().position(|s| layer.name == *s || layer.name.starts_with(&format!("{s}.")));
            if let Network::ViT(m) = self
                && layer.name.ends_with(".attn.qkv")
            {
                layer.heads = m.blocks.first().map(|b| b.attn.heads);
            }
        }
        layers
    }
}
