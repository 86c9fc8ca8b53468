//! Vision Transformers against PyTorch: a ViT with timm's names written in plain torch
//! (scripts/make-torch-vit), its weights loaded by memscope, logits compared; the authors'
//! DeiT layout (`{'model': ...}`, `head.0`, LayerNorm eps 1e-5) imported and intervened on,
//! with PyTorch doing the same zero-out on the same images.
//!
//! The fixtures need torch 2.9.0 in Python (`MEMSCOPE_TORCH_PYTHON`, else bench/run's
//! `bench/.venv`); they are made once and cached. Without such a Python this test says so
//! and checks only what needs no PyTorch.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::prelude::*;
use memscope::data::batch;
use memscope::device::DeviceSpec;
use memscope::experiment::{checkpoint, foreign};
use memscope::model::resnet::HeadKind;
use memscope::model::{Mode, ModelConfig, ViTConfig};
use safetensors::SafeTensors;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/make-torch-vit");

fn fixtures() -> Option<PathBuf> {
    let cache = common::fixture_cache("torch-vit-v1")?;
    if cache.join(".complete").exists() {
        return Some(cache);
    }
    let python = common::torch_python()?;
    let ok = Command::new(python).arg(SCRIPT).arg(&cache).status().is_ok_and(|s| s.success());
    assert!(ok, "scripts/make-torch-vit failed");
    std::fs::write(cache.join(".complete"), "").unwrap();
    Some(cache)
}

fn floats(path: &Path, name: &str) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let t = file.tensor(name).unwrap();
    let values = t.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    (t.shape().to_vec(), values)
}

/// The timm-layout test ViT of the script.
fn timm_config() -> ModelConfig {
    ModelConfig::ViT(ViTConfig {
        img_size: 32,
        patch_size: 8,
        dim: 48,
        depth: 3,
        heads: 3,
        ..ViTConfig::default()
    })
}

/// The authors' layout of the script: 24x24, patch 4, eps 1e-5, `head.0`.
fn authors_config() -> ViTConfig {
    ViTConfig {
        img_size: 24,
        patch_size: 4,
        dim: 32,
        depth: 2,
        heads: 4,
        layer_norm_eps: 1e-5,
        head: HeadKind::LinearSoftmax,
        ..ViTConfig::default()
    }
}

fn max_difference(ours: &[f32], theirs: &[f32]) -> f32 {
    assert_eq!(ours.len(), theirs.len());
    ours.iter().zip(theirs).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max)
}

#[test]
fn vits_give_pytorchs_logits_from_pytorchs_weights() {
    let device = DeviceSpec::Cpu.device().unwrap();
    let Some(dir) = fixtures() else {
        eprintln!(
            "note: no Python with torch 2.9.0 (MEMSCOPE_TORCH_PYTHON or bench/.venv): ViTs not compared with PyTorch"
        );
        return;
    };
    let (shape, images) = floats(&dir.join("inputs.safetensors"), "images");
    let n = shape[0];

    // timm's layout from safetensors.
    let model =
        checkpoint::decode(&timm_config(), std::fs::read(dir.join("vit.safetensors")).unwrap(), &device)
            .unwrap();
    let x = batch::from_chw(images.clone(), n, [3, 32, 32], &device);
    let ours = model.forward(x.clone(), Mode::Eval).into_data().try_to_vec::<f32>().unwrap();
    let (_, theirs) = floats(&dir.join("vit-logits.safetensors"), "logits");
    let worst = max_difference(&ours, &theirs);
    eprintln!("timm ViT: largest logit difference from PyTorch {worst:e}");
    assert!(worst < 1e-4, "largest difference {worst}\nours {ours:?}\ntheirs {theirs:?}");

    // Resuming from every stage boundary gives the same logits; features feed the head.
    assert_eq!(model.stages(), ["blocks.0", "blocks.1", "blocks.2", "head"]);
    for (k, activation) in model.boundaries(x.clone()).into_iter().enumerate() {
        let resumed = model.forward_from(k, activation).unwrap().into_data().try_to_vec::<f32>().unwrap();
        assert!(max_difference(&resumed, &ours) < 1e-5, "resumed at stage {k}");
    }
    let via_features = model.head(model.features(x, Mode::Eval)).into_data().try_to_vec::<f32>().unwrap();
    assert!(max_difference(&via_features, &ours) < 1e-5);

    // The authors' layout from torch.save({'model': ...}), on the top-left 24x24 crop.
    let (bytes, notes) = foreign::read(&dir.join("deit.pth")).unwrap();
    assert_eq!(notes.wrapper.as_deref(), Some("model"));
    let deit = checkpoint::decode(&ModelConfig::ViT(authors_config()), bytes, &device).unwrap();
    let crop: Vec<f32> = (0..n * 3)
        .flat_map(|plane| (0..24).flat_map(move |r| (0..24).map(move |c| plane * 1024 + r * 32 + c)))
        .map(|i| images[i])
        .collect();
    let ours = deit
        .forward(batch::from_chw(crop, n, [3, 24, 24], &device), Mode::Eval)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let (_, theirs) = floats(&dir.join("deit-logits.safetensors"), "logits");
    let worst = max_difference(&ours, &theirs);
    eprintln!("authors' DeiT layout: largest logit difference from PyTorch {worst:e}");
    assert!(worst < 1e-4, "largest difference {worst}\nours {ours:?}\ntheirs {theirs:?}");
}

#[test]
fn a_vit_checkpoint_round_trips_with_timm_names() {
    let device = DeviceSpec::Cpu.device().unwrap();
    let config = timm_config();
    let model = config.init(&device).unwrap();
    let bytes = checkpoint::encode(&model).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let shape = |name: &str| file.tensor(name).unwrap_or_else(|_| panic!("{name} missing")).shape().to_vec();
    assert_eq!(shape("cls_token"), [1, 1, 48]);
    assert_eq!(shape("pos_embed"), [1, 17, 48]);
    assert_eq!(shape("patch_embed.proj.weight"), [48, 3, 8, 8]);
    assert_eq!(shape("blocks.2.attn.qkv.weight"), [144, 48]);
    assert_eq!(shape("blocks.2.attn.qkv.bias"), [144]);
    assert_eq!(shape("blocks.0.mlp.fc1.weight"), [192, 48]);
    assert_eq!(shape("blocks.0.norm1.weight"), [48]);
    assert_eq!(shape("blocks.0.norm2.bias"), [48]);
    assert_eq!(shape("norm.weight"), [48]);
    assert_eq!(shape("head.weight"), [2, 48]);
    let mut names = file.names();
    names.sort();
    assert_eq!(names.len(), 4 + 3 * 12 + 2 + 2, "{names:?}");
    let again = checkpoint::decode(&config, bytes, &device).unwrap();
    let x = Tensor::<4>::ones([2, 3, 32, 32], &device);
    assert_eq!(
        model.forward(x.clone(), Mode::Eval).into_data().try_to_vec::<f32>().unwrap(),
        again.forward(x, Mode::Eval).into_data().try_to_vec::<f32>().unwrap()
    );

    // Linear layers hold the neurons; the fused qkv knows its heads.
    let layers = model.layers();
    let qkv = layers.iter().find(|l| l.name == "blocks.1.attn.qkv").unwrap();
    assert_eq!((qkv.shape.clone(), qkv.heads, qkv.stage), (vec![144, 48], Some(3), Some(1)));
    let first = &layers[0];
    assert_eq!((first.name.as_str(), first.stage), ("patch_embed.proj", None));
    assert!(layers.iter().any(|l| l.name == "head" && l.head && l.stage == Some(3)));
    assert_eq!(layers.len(), 1 + 3 * 4 + 1);
}

#[test]
fn vit_configs_are_checked_and_described_in_ron() {
    let tiny: ModelConfig = ron::from_str("ViT((dim: 192, depth: 12, heads: 3, num_classes: 2))").unwrap();
    assert_eq!(tiny, ModelConfig::ViT(ViTConfig::preset("tiny", 2).unwrap()));
    assert_eq!(ViTConfig::preset("base", 2).unwrap().heads, 12);
    assert!(ViTConfig::preset("huge", 2).is_err());
    assert_eq!(ViTConfig::heads_for_dim(384), Some(6));
    let bad = ViTConfig { dim: 50, heads: 3, ..ViTConfig::default() };
    assert!(bad.validate().unwrap_err().to_string().contains("dim 50 is not a multiple of heads 3"));
    let bad = ViTConfig { img_size: 30, patch_size: 8, ..ViTConfig::default() };
    assert!(bad.validate().unwrap_err().to_string().contains("img_size 30"));
    assert!(ron::from_str::<ModelConfig>("ViT((dims: 3))").is_err());
}
