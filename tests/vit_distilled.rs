//! timm's distilled DeiT (`dist_token`, `head_dist`) against PyTorch: a model written in plain
//! torch after timm's `VisionTransformerDistilled` (scripts/make-torch-deit-distilled), trained
//! three epochs on the digits, imported by its names: the same logits on the val images (so
//! `head_dist` and the distillation token are read as timm reads them), and zeroed by memscope
//! and by PyTorch: the same rows, the same per-group counts before and after.
//!
//! Needs the reference stack (torch 2.9.0), as tests/vit.rs; fixtures cached by the scripts'
//! hash.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use memscope_core::data::{Split, batch};
use memscope_core::device::DeviceSpec;
use memscope_core::experiment::{Experiment, detect, export};
use memscope_core::model::Mode;
use memscope_core::model::ModelConfig;
use safetensors::SafeTensors;
use serde_json::Value;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/make-torch-deit-distilled");

fn fixtures() -> Option<PathBuf> {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let python = common::torch_python()?;
    Some(DIR.get_or_init(|| make_fixtures(&python)).clone())
}

fn make_fixtures(python: &Path) -> PathBuf {
    let cache =
        common::fixture_cache("torch-deit-distilled", &["make-torch-deit-distilled", "make-torch-vit"])
            .unwrap();
    if cache.join(".complete").exists() {
        return cache;
    }
    std::fs::create_dir_all(&cache).unwrap();
    let dataset = "digits".parse::<memscope_core::data::DatasetSpec>().unwrap().load().unwrap();
    let mut args = vec![cache.clone()];
    for split in [Split::Train, Split::Val] {
        let path = cache.join(format!("data-{split}.safetensors"));
        std::fs::write(&path, export::encode_split(&dataset, split).unwrap()).unwrap();
        args.push(path);
    }
    let ok = Command::new(python).arg(SCRIPT).args(&args).status().is_ok_and(|s| s.success());
    assert!(ok, "scripts/make-torch-deit-distilled failed");
    std::fs::write(cache.join(".complete"), "").unwrap();
    cache
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

#[test]
fn a_distilled_deit_imports_and_gives_pytorchs_counts_after_a_zero_out() {
    let Some(dir) = fixtures() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("exp");
    common::succeeds(&["import", "--checkpoints", &s(&dir.join("run")), "--heads", "4", "--out", &s(&exp)]);
    let experiment = Experiment::open(&exp).unwrap();
    let ModelConfig::ViT(config) = &experiment.manifest.model else {
        panic!("{:?}", experiment.manifest.model)
    };
    assert!(config.distilled && config.img_size == 24 && config.patch_size == 4, "{config:?}");
    // memscope's logits on the val images are PyTorch's.
    let device = DeviceSpec::Cpu.device().unwrap();
    let dataset = experiment.manifest.dataset.load().unwrap();
    let model = experiment.load_network(1, &device).unwrap();
    let all: Vec<usize> = (0..dataset.split(Split::Val).len()).collect();
    let images = batch::images(&dataset, Split::Val, &all, &device).unwrap();
    let ours = model.forward(images, Mode::Eval).into_data().try_to_vec::<f32>().unwrap();
    let bytes = std::fs::read(dir.join("val-logits.safetensors")).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let theirs: Vec<f32> = file
        .tensor("logits")
        .unwrap()
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let worst = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    eprintln!("distilled DeiT: largest logit difference from PyTorch {worst:e}");
    assert_eq!(ours.len(), theirs.len());
    assert!(worst < 1e-5, "largest difference {worst}");
    assert!(!model.has_features(), "two heads on two tokens: no one penultimate representation");
    let info = common::succeeds(&["info", "--experiment", &s(&exp)]);
    assert!(info.contains("head_dist"), "{info}");

    let answers: Value = serde_json::from_slice(&std::fs::read(dir.join("zero.json")).unwrap()).unwrap();
    let list =
        |v: &Value| -> Vec<u64> { v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect() };
    for (layer, torch) in answers.as_object().unwrap() {
        let rows = list(&torch["rows"]);
        let k = rows.len().to_string();
        let json = common::succeeds(&[
            "intervene",
            "--experiment",
            &s(&exp),
            "--epoch",
            "1",
            "--split",
            "val",
            "--criterion",
            "magnitude",
            "--within",
            layer,
            "-k",
            &k,
            "--kind",
            "zero",
            "--format",
            "json",
        ]);
        let json: Value = serde_json::from_str(&json).unwrap();
        let indices: Vec<u64> =
            json["neurons"].as_array().unwrap().iter().map(|n| n["id"]["index"].as_u64().unwrap()).collect();
        assert_eq!(indices, rows, "{layer}");
        let before: Vec<u64> = json["before"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["correct"].as_u64().unwrap())
            .collect();
        let after: Vec<u64> = common::correct_after(&json).into_iter().map(|c| c as u64).collect();
        eprintln!(
            "{layer} top-{k} zeroed: PyTorch {:?} -> {:?}; memscope {before:?} -> {after:?}",
            list(&torch["before"]),
            list(&torch["after"])
        );
        assert_eq!(before, list(&torch["before"]), "{layer}");
        assert_eq!(after, list(&torch["after"]), "{layer}");
    }
}

#[test]
fn a_distilled_deit_without_its_second_head_is_refused_by_name() {
    let mut shapes = std::collections::BTreeMap::new();
    for (name, shape) in [
        ("cls_token", vec![1, 1, 32]),
        ("dist_token", vec![1, 1, 32]),
        ("pos_embed", vec![1, 18, 32]),
        ("patch_embed.proj.weight", vec![32, 3, 4, 4]),
        ("blocks.0.attn.qkv.weight", vec![96, 32]),
        ("blocks.0.norm1.weight", vec![32]),
        ("blocks.0.mlp.fc1.weight", vec![128, 32]),
        ("head.weight", vec![2, 32]),
    ] {
        shapes.insert(name.to_string(), shape);
    }
    let hints = detect::Hints { heads: Some(4), ..Default::default() };
    let err = detect::vit(&shapes, &hints).unwrap_err().to_string();
    assert!(err.contains("'dist_token' is in the file but not its second head 'head_dist.weight'"), "{err}");
    // With it, 18 tokens are 4x4 patches, the class token and the distillation token.
    shapes.insert("head_dist.weight".to_string(), vec![2, 32]);
    let config = detect::vit(&shapes, &hints).unwrap();
    assert!(config.distilled && config.img_size == 16, "{config:?}");
}
