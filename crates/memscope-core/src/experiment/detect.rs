//! The architecture of another tool's checkpoint, told by its tensors' names and shapes
//! (PyTorch layout): a torchvision ResNet (`layer1.0.conv1`, `fc`), a timm / DeiT ViT
//! (`cls_token`, `blocks.0.attn.qkv`, `head`) or memscope's own small ResNet, the demo's CNN,
//! as `memscope export` writes it (`stem.conv`, `stage1.block0.conv1`, `head`). What the
//! shapes cannot say (a ViT's heads, its LayerNorm epsilon) comes from the caller's hints or a
//! documented default.

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow, bail, ensure};

use crate::model::resnet::{Depth, HeadKind};
use crate::model::{ModelConfig, ResNetConfig, SmallResNetConfig, ViTConfig};

/// Tensor names and PyTorch-order shapes.
pub(crate) type Shapes = BTreeMap<String, Vec<usize>>;

/// What the user said about the architecture; `None`: read from the file or defaulted.
#[derive(Clone, Debug, Default)]
pub struct Hints {
    pub heads: Option<usize>,
    pub layer_norm_eps: Option<f64>,
    pub head: Option<HeadKind>,
    pub classes: Option<usize>,
}

/// The names and shapes of the tensors in safetensors `bytes`.
pub fn shapes(bytes: &[u8]) -> Result<Shapes> {
    let file = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| anyhow!("not a readable safetensors file ({e})"))?;
    Ok(file.iter().map(|(name, view)| (name.to_string(), view.shape().to_vec())).collect())
}

/// True when the names are a timm / DeiT ViT's.
pub(crate) fn is_vit(shapes: &Shapes) -> bool {
    shapes.contains_key("cls_token") && shapes.contains_key("blocks.0.attn.qkv.weight")
}

/// The classifier head's kind and outputs: `prefix` (`head`, `fc`) or `prefix.0`.
fn head_of(shapes: &Shapes, prefix: &str, hints: &Hints) -> Result<(HeadKind, usize)> {
    let found = [(HeadKind::Linear, prefix.to_string()), (HeadKind::LinearSoftmax, format!("{prefix}.0"))]
        .into_iter()
        .find_map(|(kind, name)| shapes.get(&format!("{name}.weight")).map(|s| (kind, s[0])));
    let Some((kind, classes)) = found else {
        bail!("no classifier head: neither '{prefix}.weight' nor '{prefix}.0.weight' is in the file");
    };
    Ok((hints.head.unwrap_or(kind), hints.classes.unwrap_or(classes)))
}

fn dims<const N: usize>(shapes: &Shapes, name: &str) -> Result<[usize; N]> {
    let shape = shapes.get(name).with_context(|| format!("tensor '{name}' is missing"))?;
    <[usize; N]>::try_from(shape.as_slice())
        .map_err(|_| anyhow!("tensor '{name}' has shape {shape:?}, not {N} dimensions"))
}

/// A ViT from a timm / DeiT state dict. Heads: `hints.heads`, else the DeiT preset of the
/// width (192: 3, 384: 6, 768: 12). LayerNorm epsilon: `hints.layer_norm_eps`, else 1e-5
/// with the authors' `head.0` (their `deit_prune.py` uses PyTorch's default) and timm's 1e-6
/// otherwise.
pub fn vit(shapes: &Shapes, hints: &Hints) -> Result<ViTConfig> {
    if !is_vit(shapes) {
        let shown = shapes.keys().take(3).map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", ");
        bail!(
            "not a timm/DeiT ViT: no 'cls_token' and 'blocks.0.attn.qkv.weight' among its tensors ({shown}, …)"
        );
    }
    let [_, _, dim] = dims::<3>(shapes, "cls_token")?;
    let [_, tokens, _] = dims::<3>(shapes, "pos_embed")?;
    let [_, in_channels, patch, patch_w] = dims::<4>(shapes, "patch_embed.proj.weight")?;
    ensure!(
        patch == patch_w,
        "patch_embed.proj.weight has a {patch}x{patch_w} kernel: only square patches are read"
    );
    // timm's distilled DeiT: a distillation token after the class token, read by `head_dist`.
    let distilled = shapes.contains_key("dist_token");
    ensure!(
        !distilled || shapes.contains_key("head_dist.weight"),
        "a distilled DeiT's 'dist_token' is in the file but not its second head 'head_dist.weight'"
    );
    let special = 1 + usize::from(distilled);
    let side = ((tokens.saturating_sub(special)) as f64).sqrt().round() as usize;
    ensure!(
        side * side + special == tokens,
        "pos_embed has {tokens} tokens, not a square grid of patches plus the class token{}",
        if distilled { " and the distillation token" } else { "" }
    );
    let depth = (0..).take_while(|i| shapes.contains_key(&format!("blocks.{i}.norm1.weight"))).count();
    let [hidden, _] = dims::<2>(shapes, "blocks.0.mlp.fc1.weight")?;
    let (head, num_classes) = head_of(shapes, "head", hints)?;
    let heads = match hints.heads.or_else(|| ViTConfig::heads_for_dim(dim)) {
        Some(h) => h,
        None => bail!(
            "a ViT of width {dim}: the number of attention heads is not in the file's shapes; pass --heads (DeiT: 192 → 3, 384 → 6, 768 → 12)"
        ),
    };
    let eps = hints.layer_norm_eps.unwrap_or(if head == HeadKind::LinearSoftmax { 1e-5 } else { 1e-6 });
    let config = ViTConfig {
        img_size: side * patch,
        patch_size: patch,
        in_channels,
        dim,
        depth,
        heads,
        mlp_ratio: hidden as f64 / dim as f64,
        qkv_bias: shapes.contains_key("blocks.0.attn.qkv.bias"),
        layer_norm_eps: eps,
        num_classes,
        head,
        distilled,
    };
    config.validate()?;
    Ok(config)
}

/// A torchvision ResNet-18, -34 or -50 from its state dict.
pub fn resnet(shapes: &Shapes, hints: &Hints) -> Result<ResNetConfig> {
    ensure!(
        shapes.contains_key("layer1.0.conv1.weight"),
        "no 'layer1.0.conv1.weight': not a torchvision ResNet"
    );
    let blocks = (0..).take_while(|i| shapes.contains_key(&format!("layer3.{i}.conv1.weight"))).count();
    let depth = match (shapes.contains_key("layer1.0.conv3.weight"), blocks) {
        (false, 2) => Depth::ResNet18,
        (false, 6) => Depth::ResNet34,
        (true, 6) => Depth::ResNet50,
        (bottleneck, n) => bail!(
            "a ResNet with {n} blocks in layer3{}: memscope knows ResNet-18, -34 and -50",
            if bottleneck { " and bottlenecks" } else { "" }
        ),
    };
    let [_, in_channels, _, _] = dims::<4>(shapes, "conv1.weight")?;
    let (head, num_classes) = head_of(shapes, "fc", hints)?;
    let config = ResNetConfig { depth, num_classes, in_channels, head };
    config.validate()?;
    Ok(config)
}

/// True when the names are those of memscope's small ResNet (the demo's CNN).
pub(crate) fn is_small_resnet(shapes: &Shapes) -> bool {
    shapes.contains_key("stem.conv.weight") && shapes.contains_key("stage1.block0.conv1.weight")
}

/// memscope's small ResNet (the demo's CNN) from the names `memscope export` writes: the
/// stem's and each stage's first convolution give the channels, the `stageS.blockB` names
/// the blocks per stage, `head` the classes.
pub fn small_resnet(shapes: &Shapes, hints: &Hints) -> Result<SmallResNetConfig> {
    ensure!(
        is_small_resnet(shapes),
        "no 'stem.conv.weight' and 'stage1.block0.conv1.weight': not memscope's small ResNet"
    );
    ensure!(
        !shapes.contains_key("stage4.block0.conv1.weight"),
        "a 'stage4': memscope's small ResNet has three stages"
    );
    ensure!(
        hints.head != Some(HeadKind::LinearSoftmax),
        "memscope's small ResNet has a linear head ('head'); --head softmax is for ResNets and ViTs"
    );
    let [stem_channels, in_channels, _, _] = dims::<4>(shapes, "stem.conv.weight")?;
    let mut stage_channels = [0; 3];
    let mut blocks_per_stage = [0; 3];
    for (s, (channels, blocks)) in stage_channels.iter_mut().zip(&mut blocks_per_stage).enumerate() {
        let stage = format!("stage{}", s + 1);
        [*channels, _, _, _] = dims::<4>(shapes, &format!("{stage}.block0.conv1.weight"))?;
        *blocks =
            (0..).take_while(|b| shapes.contains_key(&format!("{stage}.block{b}.conv1.weight"))).count();
    }
    let [classes, _] = dims::<2>(shapes, "head.weight")?;
    let config = SmallResNetConfig {
        in_channels,
        stem_channels,
        stage_channels,
        blocks_per_stage,
        num_classes: hints.classes.unwrap_or(classes),
    };
    config.validate()?;
    Ok(config)
}

/// The architecture the names say: a ViT, a torchvision ResNet or memscope's small ResNet, or
/// an error naming a few of them.
pub fn detect(shapes: &Shapes, hints: &Hints) -> Result<ModelConfig> {
    if is_vit(shapes) {
        return Ok(ModelConfig::ViT(vit(shapes, hints)?));
    }
    if shapes.contains_key("layer1.0.conv1.weight") {
        return Ok(ModelConfig::ResNet(resnet(shapes, hints)?));
    }
    if is_small_resnet(shapes) {
        return Ok(ModelConfig::SmallResNet(small_resnet(shapes, hints)?));
    }
    let shown = shapes.keys().take(3).map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", ");
    bail!(
        "cannot tell the architecture from the tensor names ({shown}, …): not a timm/DeiT ViT (cls_token, blocks.0.attn.qkv), a torchvision ResNet (layer1.0.conv1) or memscope's small ResNet (stem.conv, stage1.block0.conv1); pass --arch"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deit_small(head: &str) -> Shapes {
        let mut s = Shapes::new();
        s.insert("cls_token".into(), vec![1, 1, 384]);
        s.insert("pos_embed".into(), vec![1, 197, 384]);
        s.insert("patch_embed.proj.weight".into(), vec![384, 3, 16, 16]);
        for i in 0..12 {
            s.insert(format!("blocks.{i}.norm1.weight"), vec![384]);
            s.insert(format!("blocks.{i}.attn.qkv.weight"), vec![1152, 384]);
            s.insert(format!("blocks.{i}.attn.qkv.bias"), vec![1152]);
            s.insert(format!("blocks.{i}.mlp.fc1.weight"), vec![1536, 384]);
        }
        s.insert(format!("{head}.weight"), vec![2, 384]);
        s
    }

    #[test]
    fn deit_sizes_and_the_authors_head_are_read_from_names() {
        let config = vit(&deit_small("head"), &Hints::default()).unwrap();
        assert_eq!(config, ViTConfig::preset("small", 2).unwrap());
        let authors = vit(&deit_small("head.0"), &Hints::default()).unwrap();
        assert_eq!((authors.head, authors.layer_norm_eps), (HeadKind::LinearSoftmax, 1e-5));
        let mut odd = deit_small("head");
        odd.insert("cls_token".into(), vec![1, 1, 96]);
        let err = vit(&odd, &Hints::default()).unwrap_err().to_string();
        assert!(err.contains("pass --heads"), "{err}");
        let hinted = vit(&odd, &Hints { heads: Some(4), ..Hints::default() });
        assert!(hinted.is_ok_and(|c| c.heads == 4 && c.dim == 96));
        assert!(detect(&Shapes::new(), &Hints::default()).unwrap_err().to_string().contains("pass --arch"));
        let resnet: Shapes = [("layer1.0.conv1.weight".to_string(), vec![64, 64, 3, 3])].into();
        assert!(vit(&resnet, &Hints::default()).unwrap_err().to_string().starts_with("not a timm/DeiT ViT"));
    }

    /// The names and shapes of a small ResNet's checkpoint, as `memscope export` writes them.
    fn exported(config: &SmallResNetConfig) -> Shapes {
        let device = crate::device::DeviceSpec::Cpu.device().unwrap();
        let network = ModelConfig::SmallResNet(config.clone()).init(&device).unwrap();
        shapes(&crate::experiment::checkpoint::encode(&network).unwrap()).unwrap()
    }

    #[test]
    fn the_small_resnet_is_read_from_the_names_export_writes() {
        let odd = SmallResNetConfig {
            in_channels: 1,
            stem_channels: 8,
            stage_channels: [8, 12, 20],
            blocks_per_stage: [2, 1, 3],
            num_classes: 3,
        };
        for config in [SmallResNetConfig::default(), odd] {
            let found = detect(&exported(&config), &Hints::default()).unwrap();
            assert_eq!(found, ModelConfig::SmallResNet(config));
        }
        let demo = exported(&SmallResNetConfig::default());
        let softmax = Hints { head: Some(HeadKind::LinearSoftmax), ..Hints::default() };
        assert!(small_resnet(&demo, &softmax).unwrap_err().to_string().contains("a linear head"));
        let mut four = demo.clone();
        four.insert("stage4.block0.conv1.weight".into(), vec![64, 64, 3, 3]);
        assert!(detect(&four, &Hints::default()).unwrap_err().to_string().contains("three stages"));
        let mut headless = demo.clone();
        headless.remove("head.weight");
        assert!(detect(&headless, &Hints::default()).unwrap_err().to_string().contains("'head.weight'"));
        let resnet: Shapes = [("layer1.0.conv1.weight".to_string(), vec![64, 64, 3, 3])].into();
        assert!(small_resnet(&resnet, &Hints::default()).unwrap_err().to_string().contains("not memscope's"));
        // A name set that is none of the three says what each would need.
        let other: Shapes = [("features.0.weight".to_string(), vec![64, 3, 3, 3])].into();
        let err = detect(&other, &Hints::default()).unwrap_err().to_string();
        assert!(
            err.contains("'features.0.weight'") && err.contains("stem.conv, stage1.block0.conv1"),
            "{err}"
        );
        assert!(err.contains("cls_token") && err.contains("layer1.0.conv1") && err.ends_with("pass --arch"));
    }

    #[test]
    fn torchvision_depths_and_heads_are_read_from_names() {
        let resnet = |blocks: usize, bottleneck: bool, head: &str| {
            let mut s = Shapes::new();
            s.insert("conv1.weight".into(), vec![64, 3, 7, 7]);
            for i in 0..blocks {
                s.insert(format!("layer1.{i}.conv1.weight"), vec![64, 64, 3, 3]);
                s.insert(format!("layer3.{i}.conv1.weight"), vec![256, 256, 3, 3]);
                if bottleneck {
                    s.insert(format!("layer1.{i}.conv3.weight"), vec![256, 64, 1, 1]);
                }
            }
            s.insert(format!("{head}.weight"), vec![3, if bottleneck { 2048 } else { 512 }]);
            s
        };
        let config = |s: &Shapes| match detect(s, &Hints::default()).unwrap() {
            ModelConfig::ResNet(c) => (c.depth, c.head, c.num_classes),
            other => panic!("{other:?}"),
        };
        assert_eq!(config(&resnet(2, false, "fc")), (Depth::ResNet18, HeadKind::Linear, 3));
        assert_eq!(config(&resnet(6, false, "fc")), (Depth::ResNet34, HeadKind::Linear, 3));
        assert_eq!(config(&resnet(6, true, "fc.0")), (Depth::ResNet50, HeadKind::LinearSoftmax, 3));
        assert!(
            detect(&resnet(23, true, "fc"), &Hints::default()).unwrap_err().to_string().contains("23 blocks")
        );
        assert!(
            detect(&resnet(2, false, "classifier"), &Hints::default())
                .unwrap_err()
                .to_string()
                .contains("no classifier head")
        );
    }
}
