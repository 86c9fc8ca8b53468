//! A Vision Transformer (ViT / DeiT) with timm's parameter names (`patch_embed.proj`,
//! `cls_token`, `pos_embed`, `blocks.3.attn.qkv`, `blocks.3.mlp.fc1`, `norm`, `head`), so a
//! timm or DeiT state dict loads as it is. The query, key and value projections stay fused
//! in one `attn.qkv` Linear (`[3·dim, dim]`, rows q then k then v, head-major inside each),
//! as the checkpoints store them. The authors' head (`head.0`, Linear then Softmax) is read
//! as the Linear's logits, like the ResNet's `fc.0`.
//!
//! timm's distilled DeiT (`VisionTransformerDistilled`: a `dist_token` after the class token
//! and a second head `head_dist` reading it) evaluates as timm does: the mean of `head` on
//! the class token and `head_dist` on the distillation token.

use anyhow::{Result, bail, ensure};
use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Gelu, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::softmax;
use serde::{Deserialize, Serialize};

use super::blocks::Mode;
use super::resnet::{Head, HeadKind};

/// Architecture of a [`VisionTransformer`]. The DeiT presets are [`ViTConfig::preset`]; in
/// `experiment.ron` DeiT-Tiny with a 2-class head reads
/// `ViT((img_size: 224, patch_size: 16, dim: 192, depth: 12, heads: 3, num_classes: 2))`
/// (Small: dim 384, heads 6; Base: dim 768, heads 12).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ViTConfig {
    /// Side of the square input image.
    pub img_size: usize,
    /// Side of a square patch; `img_size` must be a multiple of it.
    pub patch_size: usize,
    pub in_channels: usize,
    /// Width of every token (timm's `embed_dim`).
    pub dim: usize,
    /// Transformer blocks.
    pub depth: usize,
    /// Attention heads; `dim` must be a multiple of it.
    pub heads: usize,
    /// Hidden width of each block's MLP as a multiple of `dim` (timm: 4).
    pub mlp_ratio: f64,
    /// Whether `attn.qkv` has a bias (timm's DeiT and the authors' code: yes).
    pub qkv_bias: bool,
    /// LayerNorm epsilon: timm 1e-6, the authors' `deit_prune.py` PyTorch's default 1e-5.
    pub layer_norm_eps: f64,
    pub num_classes: usize,
    /// `head` (timm) or `head.0` + Softmax (the authors' code).
    pub head: HeadKind,
    /// timm's distilled DeiT: a `dist_token` and a `head_dist` whose logits are averaged with
    /// `head`'s. Written only when set.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub distilled: bool,
}

impl Default for ViTConfig {
    fn default() -> Self {
        ViTConfig {
            img_size: 224,
            patch_size: 16,
            in_channels: 3,
            dim: 192,
            depth: 12,
            heads: 3,
            mlp_ratio: 4.0,
            qkv_bias: true,
            layer_norm_eps: 1e-6,
            num_classes: 2,
            head: HeadKind::Linear,
            distilled: false,
        }
    }
}

/// The DeiT sizes memscope knows by name.
pub(crate) const PRESETS: [(&str, usize, usize); 3] =
    [("tiny", 192, 3), ("small", 384, 6), ("base", 768, 12)];

impl ViTConfig {
    /// DeiT-Tiny, -Small or -Base (`tiny`, `small`, `base`) at 224², patch 16, depth 12.
    pub fn preset(name: &str, num_classes: usize) -> Result<ViTConfig> {
        let Some(&(_, dim, heads)) = PRESETS.iter().find(|(n, ..)| *n == name) else {
            bail!("unknown ViT size '{name}' (valid: tiny, small, base)");
        };
        Ok(ViTConfig { dim, heads, num_classes, ..ViTConfig::default() })
    }

    /// Heads of the DeiT preset of width `dim` (192: 3, 384: 6, 768: 12), else `None`: the
    /// number of heads is not in a checkpoint's shapes.
    pub fn heads_for_dim(dim: usize) -> Option<usize> {
        PRESETS.iter().find(|(_, d, _)| *d == dim).map(|(.., h)| *h)
    }

    pub fn validate(&self) -> Result<()> {
        ensure!(self.num_classes >= 2, "model: num_classes must be at least 2");
        ensure!(
            (1..=64).contains(&self.in_channels),
            "model: in_channels {} out of range 1..=64",
            self.in_channels
        );
        ensure!(
            (1..=4096).contains(&self.patch_size) && (1..=4096).contains(&self.img_size),
            "model: img_size {} and patch_size {} must lie in 1..=4096",
            self.img_size,
            self.patch_size
        );
        ensure!(
            self.img_size.is_multiple_of(self.patch_size),
            "model: img_size {} is not a multiple of patch_size {}",
            self.img_size,
            self.patch_size
        );
        ensure!((1..=8192).contains(&self.dim), "model: dim {} out of range 1..=8192", self.dim);
        ensure!((1..=128).contains(&self.depth), "model: depth {} out of range 1..=128", self.depth);
        ensure!(
            self.heads >= 1 && self.dim.is_multiple_of(self.heads),
            "model: dim {} is not a multiple of heads {}",
            self.dim,
            self.heads
        );
        ensure!(
            self.mlp_ratio.is_finite()
                && self.mlp_ratio > 0.0
                && self.mlp_hidden() >= 1
                && self.mlp_ratio <= 64.0,
            "model: mlp_ratio {} out of range (0, 64]",
            self.mlp_ratio
        );
        ensure!(
            self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0 && self.layer_norm_eps < 1.0,
            "model: layer_norm_eps {} out of range (0, 1)",
            self.layer_norm_eps
        );
        ensure!(
            !(self.distilled && self.head == HeadKind::LinearSoftmax),
            "model: a distilled DeiT has timm's Linear heads, not the authors' head.0 + Softmax"
        );
        Ok(())
    }

    /// Hidden width of the MLP (timm: `int(dim * mlp_ratio)`).
    pub(crate) fn mlp_hidden(&self) -> usize {
        (self.dim as f64 * self.mlp_ratio) as usize
    }

    /// Tokens: one per patch, plus the class token (and the distillation token).
    pub(crate) fn tokens(&self) -> usize {
        (self.img_size / self.patch_size).pow(2) + self.special_tokens()
    }

    /// The class token, and the distillation token of a distilled DeiT.
    pub(crate) fn special_tokens(&self) -> usize {
        1 + usize::from(self.distilled)
    }

    pub fn init(&self, device: &Device) -> VisionTransformer {
        // Linear layers as PyTorch's nn.Linear initialises them (burn's default): timm's
        // trunc_normal_(std=.02) left the demo ViT predicting the majority class for 40
        // epochs. Class token and position embedding: timm's N(0, .02²).
        let normal = Initializer::Normal { mean: 0.0, std: 0.02 };
        let linear = |i: usize, o: usize, bias: bool| LinearConfig::new(i, o).with_bias(bias).init(device);
        let norm = || LayerNormConfig::new(self.dim).with_epsilon(self.layer_norm_eps).init(device);
        let hidden = self.mlp_hidden();
        let blocks = (0..self.depth)
            .map(|_| Block {
                norm1: norm(),
                attn: Attention {
                    qkv: linear(self.dim, 3 * self.dim, self.qkv_bias),
                    proj: linear(self.dim, self.dim, true),
                    heads: self.heads,
                },
                norm2: norm(),
                mlp: Mlp {
                    fc1: linear(self.dim, hidden, true),
                    act: Gelu::new(),
                    fc2: linear(hidden, self.dim, true),
                },
            })
            .collect();
        let head = linear(self.dim, self.num_classes, true);
        VisionTransformer {
            patch_embed: PatchEmbed {
                proj: Conv2dConfig::new([self.in_channels, self.dim], [self.patch_size, self.patch_size])
                    .with_stride([self.patch_size, self.patch_size])
                    .init(device),
            },
            cls_token: normal.init([1, 1, self.dim], device),
            dist_token: self.distilled.then(|| normal.init([1, 1, self.dim], device)),
            pos_embed: normal.init([1, self.tokens(), self.dim], device),
            blocks,
            norm: norm(),
            head_dist: self.distilled.then(|| linear(self.dim, self.num_classes, true)),
            head: match self.head {
                HeadKind::Linear => Head::Linear(head),
                HeadKind::LinearSoftmax => Head::LinearSoftmax(vec![head]),
            },
        }
    }
}

/// `patch_embed.proj`: a patch-sized convolution with the patch as stride.
#[derive(Module, Debug)]
pub struct PatchEmbed {
    pub proj: Conv2d,
}

/// Multi-head self-attention with the fused `qkv` projection.
#[derive(Module, Debug)]
pub struct Attention {
    pub qkv: Linear,
    pub proj: Linear,
    pub heads: usize,
}

impl Attention {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, t, d] = x.dims();
        let dh = d / self.heads;
        let qkv = self.qkv.forward(x); // [b, t, 3d]: q, k, v, each head-major
        let split =
            |i: usize| qkv.clone().narrow(2, i * d, d).reshape([b, t, self.heads, dh]).swap_dims(1, 2); // [b, h, t, dh]
        let (q, k, v) = (split(0), split(1), split(2));
        let scores = q.matmul(k.swap_dims(2, 3)) * (dh as f64).powf(-0.5); // [b, h, t, t]
        let out = softmax(scores, 3).matmul(v); // [b, h, t, dh]
        self.proj.forward(out.swap_dims(1, 2).reshape([b, t, d]))
    }
}

/// `mlp.fc1`, exact (erf) GELU, `mlp.fc2`.
#[derive(Module, Debug)]
pub struct Mlp {
    pub fc1: Linear,
    pub act: Gelu,
    pub fc2: Linear,
}

/// Pre-norm block: `x + attn(norm1(x))`, then `x + mlp(norm2(x))`.
#[derive(Module, Debug)]
pub struct Block {
    pub norm1: LayerNorm,
    pub attn: Attention,
    pub norm2: LayerNorm,
    pub mlp: Mlp,
}

impl Block {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = x.clone() + self.attn.forward(self.norm1.forward(x));
        let hidden = self.mlp.act.forward(self.mlp.fc1.forward(self.norm2.forward(x.clone())));
        x + self.mlp.fc2.forward(hidden)
    }
}

/// A ViT: logits `[batch, classes]` from images `[batch, c, h, w]`.
#[derive(Module, Debug)]
pub struct VisionTransformer {
    pub patch_embed: PatchEmbed,
    pub cls_token: Param<Tensor<3>>,
    /// A distilled DeiT's distillation token (token 1).
    pub dist_token: Option<Param<Tensor<3>>>,
    pub pos_embed: Param<Tensor<3>>,
    pub blocks: Vec<Block>,
    pub norm: LayerNorm,
    /// A distilled DeiT's second head, on the distillation token. Before `head`, so that
    /// `head` stays the last linear layer: the one a list of layers calls the head.
    pub head_dist: Option<Linear>,
    pub head: Head,
}

impl VisionTransformer {
    /// Stage names: every block, then the head (see `Network::stages`).
    pub fn stages(&self) -> Vec<String> {
        (0..self.blocks.len()).map(|i| format!("blocks.{i}")).chain(["head".to_string()]).collect()
    }

    /// The tokens entering block 0: `[batch, 1 + patches, dim]` (`[batch, 2 + patches, dim]`
    /// distilled: class token, distillation token, patches).
    fn embed(&self, images: Tensor<4>) -> Tensor<3> {
        let x = self.patch_embed.proj.forward(images); // [b, d, h/p, w/p]
        let x = x.flatten::<3>(2, 3).swap_dims(1, 2); // [b, patches, d]
        let [b, _, d] = x.dims();
        let mut tokens = vec![self.cls_token.val().expand([b, 1, d])];
        tokens.extend(self.dist_token.as_ref().map(|t| t.val().expand([b, 1, d])));
        tokens.push(x);
        Tensor::cat(tokens, 1) + self.pos_embed.val()
    }

    /// The tokens the heads read: 1, or 2 for a distilled DeiT.
    fn special_tokens(&self) -> usize {
        1 + usize::from(self.dist_token.is_some())
    }

    /// Logits from the normed tokens the heads read `[b, 1 or 2, dim]`: `head` on the class
    /// token, averaged with `head_dist` on the distillation token when there is one (timm's
    /// `VisionTransformerDistilled` in eval).
    fn heads(&self, tokens: Tensor<3>) -> Tensor<2> {
        let [b, _, d] = tokens.dims();
        let cls = self.head.forward(tokens.clone().narrow(1, 0, 1).reshape([b, d]));
        match &self.head_dist {
            Some(head_dist) => (cls + head_dist.forward(tokens.narrow(1, 1, 1).reshape([b, d]))) / 2.0,
            None => cls,
        }
    }

    fn blocks_from(&self, k: usize, x: Tensor<3>) -> Tensor<3> {
        self.blocks.iter().skip(k).fold(x, |x, block| block.forward(x))
    }

    /// The class token after the final norm: `[batch, dim]`.
    fn pooled(&self, x: Tensor<3>) -> Tensor<2> {
        let [b, _, d] = x.dims();
        self.norm.forward(x.narrow(1, 0, 1)).reshape([b, d])
    }

    /// The tokens the heads read, after the final norm: `[batch, 1 or 2, dim]`.
    fn normed_special(&self, x: Tensor<3>) -> Tensor<3> {
        self.norm.forward(x.narrow(1, 0, self.special_tokens()))
    }

    /// Logits; `mode` changes nothing (no BatchNorm, no dropout).
    pub fn forward(&self, images: Tensor<4>, _mode: Mode) -> Tensor<2> {
        self.heads(self.normed_special(self.blocks_from(0, self.embed(images))))
    }

    /// Whether `features` and `classify` give `forward` (not for a distilled DeiT, whose two
    /// heads read two tokens).
    pub(crate) fn has_features(&self) -> bool {
        self.dist_token.is_none()
    }

    pub fn features(&self, images: Tensor<4>, _mode: Mode) -> Tensor<2> {
        self.pooled(self.blocks_from(0, self.embed(images)))
    }

    pub(crate) fn classify(&self, features: Tensor<2>) -> Tensor<2> {
        self.head.forward(features)
    }

    /// The tokens entering each block, then the normed tokens entering the heads
    /// (`[b, 1, dim]`, distilled `[b, 2, dim]`).
    pub fn boundaries(&self, images: Tensor<4>) -> Vec<Tensor<3>> {
        let mut x = self.embed(images);
        let mut out = vec![x.clone()];
        for block in &self.blocks {
            x = block.forward(x);
            out.push(x.clone());
        }
        let last = out.len() - 1;
        out[last] = self.normed_special(out[last].clone());
        out
    }

    /// Logits from the activation entering stage `k` (block k, or the heads when k = depth).
    pub fn forward_from(&self, k: usize, x: Tensor<3>) -> Tensor<2> {
        if k >= self.blocks.len() {
            return self.heads(x);
        }
        self.heads(self.normed_special(self.blocks_from(k, x)))
    }
}
