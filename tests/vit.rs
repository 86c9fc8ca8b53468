//! Vision Transformers against PyTorch: a ViT with timm's names written in plain torch
//! (scripts/make-torch-vit), its weights loaded by memscope, logits compared; the authors'
//! DeiT layout (`{'model': ...}`, `head.0`, LayerNorm eps 1e-5) imported and intervened on,
//! with PyTorch doing the same zero-out on the same images.
//!
//! The fixtures need the reference stack (torch 2.9.0: scripts/fetch-reference, or
//! `MEMSCOPE_TORCH_PYTHON`); they are made once and cached by the script's hash. Without it the
//! tests fail, unless `MEMSCOPE_ALLOW_SKIP=1`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::prelude::*;
use memscope_core::data::batch;
use memscope_core::device::DeviceSpec;
use memscope_core::experiment::{checkpoint, foreign};
use memscope_core::model::resnet::HeadKind;
use memscope_core::model::{Mode, ModelConfig, ViTConfig};
use safetensors::SafeTensors;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/make-torch-vit");

fn fixtures() -> Option<PathBuf> {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let python = common::torch_python()?;
    Some(DIR.get_or_init(|| make_fixtures(&python)).clone())
}

/// Made once for the tests of this file (they run in parallel), then cached.
fn make_fixtures(python: &Path) -> PathBuf {
    let cache = common::fixture_cache("torch-vit", &["make-torch-vit"]).expect("no HOME");
    if cache.join(".complete").exists() {
        return cache;
    }
    // The run's models train on the digits memscope makes (its train split, exported).
    std::fs::create_dir_all(&cache).unwrap();
    let dataset = "digits".parse::<memscope_core::data::DatasetSpec>().unwrap().load().unwrap();
    let train = cache.join("data-train.safetensors");
    let bytes =
        memscope_core::experiment::export::encode_split(&dataset, memscope_core::data::Split::Train).unwrap();
    std::fs::write(&train, bytes).unwrap();
    let ok = Command::new(python).arg(SCRIPT).arg(&cache).arg(&train).status().is_ok_and(|s| s.success());
    assert!(ok, "scripts/make-torch-vit failed");
    std::fs::write(cache.join(".complete"), "").unwrap();
    cache
}

/// PyTorch's answer to `scripts/make-torch-vit ARGS` (JSON), kept in the fixture folder `dir`
/// as `NAME.json` once made. The inputs are the cached run and the demo's deterministic digits.
fn torch_answer(dir: &Path, name: &str, args: &[&str]) -> Option<serde_json::Value> {
    let cached = dir.join(format!("{name}.json"));
    if !cached.is_file() {
        let python = common::torch_python()?;
        let out = Command::new(python).arg(SCRIPT).args(args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        std::fs::write(&cached, &out.stdout).unwrap();
    }
    Some(serde_json::from_slice(&std::fs::read(&cached).unwrap()).unwrap())
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
    let Some(dir) = fixtures() else { return };
    let (shape, images) = floats(&dir.join("inputs.safetensors"), "images");
    let n = shape[0];

    // timm's layout from safetensors.
    let model =
        checkpoint::decode(&timm_config(), std::fs::read(dir.join("vit.safetensors")).unwrap(), &device)
            .unwrap();
    let x = batch::from_chw(&images, n, [3, 32, 32], &device);
    let ours = model.forward(x.clone(), Mode::Eval).into_data().try_to_vec::<f32>().unwrap();
    let (_, theirs) = floats(&dir.join("vit-logits.safetensors"), "logits");
    let worst = max_difference(&ours, &theirs);
    eprintln!("timm ViT: largest logit difference from PyTorch {worst:e}");
    // Measured at most 5e-7. LayerNorm's epsilon at 1e-5 instead of timm's 1e-6 moves the
    // logits by 1.1e-4 (scripts/mutate-check): the bound must lie well below that.
    assert!(worst < 1e-5, "largest difference {worst}\nours {ours:?}\ntheirs {theirs:?}");

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
        .forward(batch::from_chw(&crop, n, [3, 24, 24], &device), Mode::Eval)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let (_, theirs) = floats(&dir.join("deit-logits.safetensors"), "logits");
    let worst = max_difference(&ours, &theirs);
    eprintln!("authors' DeiT layout: largest logit difference from PyTorch {worst:e}");
    assert!(worst < 1e-5, "largest difference {worst}\nours {ours:?}\ntheirs {theirs:?}");
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

#[test]
fn an_imported_deit_run_gives_pytorchs_counts_after_zeroing_the_same_qkv_rows() {
    let Some(dir) = fixtures() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("exp");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    // The architecture is told by the names: ViT, dim 32 (heads given: no DeiT preset),
    // the authors' head.0 and so LayerNorm eps 1e-5.
    let args = ["import", "--checkpoints", &s(&dir.join("run")), "--heads", "4", "--out", &s(&exp)];
    common::succeeds(&args);
    let experiment = memscope_core::experiment::Experiment::open(&exp).unwrap();
    assert_eq!(experiment.manifest.model, ModelConfig::ViT(authors_config()));
    assert_eq!(experiment.epochs().collect::<Vec<_>>(), vec![1, 2]);
    // Without --heads a width that is no DeiT preset is refused, naming the fix.
    let err =
        common::fails(&["import", "--checkpoints", &s(&dir.join("run")), "--out", &s(&tmp.path().join("x"))]);
    assert!(err.contains("pass --heads") && err.contains("epoch_1.pth"), "{err}");

    // PyTorch zeroes the k value rows of a qkv layer with the largest norm on the same val
    // images memscope evaluates: 8 in the first block (a whole forward pass) and all 32 in
    // the second (memscope resumes from the activations cached at its input).
    let dataset = experiment.manifest.dataset.load().unwrap();
    let data = tmp.path().join("val.safetensors");
    std::fs::write(
        &data,
        memscope_core::experiment::export::encode_split(&dataset, memscope_core::data::Split::Val).unwrap(),
    )
    .unwrap();
    let list = |v: &serde_json::Value| -> Vec<u64> {
        v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect()
    };
    for (layer, k) in [("blocks.0.attn.qkv", "8"), ("blocks.1.attn.qkv", "32")] {
        let run = dir.join("run/epoch_2.pth");
        let Some(torch) =
            torch_answer(&dir, &format!("zero-{layer}-v-{k}"), &["zero", &s(&run), &s(&data), layer, "v", k])
        else {
            return;
        };
        let rows = list(&torch["rows"]);
        let expected_ids: Vec<String> =
            rows.iter().map(|r| format!("{layer}:v:h{}:{}", (r - 64) / 8, (r - 64) % 8)).collect();

        let within = format!("{layer}:v");
        let json = common::succeeds(&[
            "intervene",
            "--experiment",
            &s(&exp),
            "--epoch",
            "2",
            "--criterion",
            "magnitude",
            "--within",
            &within,
            "-k",
            k,
            "--kind",
            "zero",
            "--format",
            "json",
        ]);
        let json: serde_json::Value = serde_json::from_str(&json).unwrap();
        let neurons = json["neurons"].as_array().unwrap();
        let ids: Vec<String> = neurons
            .iter()
            .map(|n| {
                let id = &n["id"];
                assert_eq!(id["qkv"]["part"], "v");
                format!("{}:v:h{}:{}", id["layer"].as_str().unwrap(), id["qkv"]["head"], id["qkv"]["row"])
            })
            .collect();
        assert_eq!(ids, expected_ids);
        let indices: Vec<u64> = neurons.iter().map(|n| n["id"]["index"].as_u64().unwrap()).collect();
        assert_eq!(indices, rows);
        let count = |key: &str| -> Vec<u64> {
            json["groups"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| (g[key].as_f64().unwrap() * g["examples"].as_f64().unwrap()).round() as u64)
                .collect()
        };
        eprintln!(
            "{within} top-{k} zeroed, per-group correct: PyTorch {:?} -> {:?}; memscope {:?} -> {:?}",
            list(&torch["before"]),
            list(&torch["after"]),
            count("before"),
            count("after")
        );
        assert_eq!(count("before"), list(&torch["before"]));
        assert_eq!(count("after"), list(&torch["after"]));
        assert_ne!(
            list(&torch["after"]),
            list(&torch["before"]),
            "{within}: the zero-out changes predictions"
        );
    }

    // Gradient scores (every G2 training example, eval mode) equal PyTorch's autograd.
    let train = tmp.path().join("train.safetensors");
    std::fs::write(
        &train,
        memscope_core::experiment::export::encode_split(&dataset, memscope_core::data::Split::Train).unwrap(),
    )
    .unwrap();
    let run = s(&dir.join("run/epoch_2.pth"));
    let grad = ["grad", &run, &s(&train), "2", "blocks.0.attn.qkv", "k", "4"];
    let Some(torch) = torch_answer(&dir, "grad-blocks.0.attn.qkv-k-4", &grad) else { return };
    let json = common::succeeds(&[
        "scores",
        "--experiment",
        &s(&exp),
        "--epoch",
        "2",
        "--criterion",
        "gradient",
        "--group",
        "G2",
        "--sampling",
        "all",
        "--within",
        "blocks.0.attn.qkv:k",
        "--top",
        "4",
        "--format",
        "json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let neurons = json["neurons"].as_array().unwrap();
    let indices: Vec<u64> = neurons.iter().map(|n| n["id"]["index"].as_u64().unwrap()).collect();
    assert_eq!(indices, list(&torch["rows"]));
    for (n, t) in neurons.iter().zip(torch["scores"].as_array().unwrap()) {
        let (ours, theirs) = (n["score"].as_f64().unwrap(), t.as_f64().unwrap());
        eprintln!(
            "gradient score {ours} vs PyTorch {theirs} (relative {:e})",
            (ours - theirs).abs() / theirs.abs()
        );
        assert!((ours - theirs).abs() <= 1e-4 * theirs.abs(), "gradient score {ours} vs PyTorch {theirs}");
    }
}

#[test]
fn the_bundled_vit_demo_opens_and_names_its_qkv_neurons() {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/checkpoints/spurious-digits-vit");
    let experiment = memscope_core::experiment::Experiment::open(Path::new(demo)).unwrap();
    assert!(matches!(
        experiment.manifest.model,
        ModelConfig::ViT(ViTConfig { dim: 32, depth: 4, heads: 4, .. })
    ));
    assert_eq!(experiment.epochs().count(), 41);
    let json = common::succeeds(&[
        "intervene",
        "--experiment",
        demo,
        "--criterion",
        "magnitude",
        "--within",
        "blocks.3.attn.qkv:v:h1",
        "-k",
        "2",
        "--format",
        "json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    for n in json["neurons"].as_array().unwrap() {
        let (index, qkv) = (n["id"]["index"].as_u64().unwrap(), &n["id"]["qkv"]);
        // dim 32, 4 heads of 8 rows: v head 1 is rows 72..80.
        assert!((72..80).contains(&index), "{index}");
        assert_eq!(
            (qkv["part"].as_str(), qkv["head"].as_u64(), qkv["row"].as_u64()),
            (Some("v"), Some(1), Some(index - 72))
        );
    }
    let table = common::succeeds(&[
        "intervene",
        "--experiment",
        demo,
        "--criterion",
        "magnitude",
        "--within",
        "blocks.3.attn.qkv:v:h1",
        "-k",
        "2",
    ]);
    assert!(table.contains("blocks.3.attn.qkv:v:h1:"), "{table}");
    let info = common::succeeds(&["info", "--experiment", demo]);
    assert!(info.contains("blocks.3.attn.qkv    linear (q, k, v; 4 heads)      96x32"), "{info}");
    // Imported with data of another size: the error says which size the model takes and how.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("exp");
    let e = common::fails(&[
        "import",
        "--checkpoints",
        demo,
        "--heads",
        "4",
        "--data",
        "digits:32",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        e.contains("model expects 24x24 images but the data set has 32x32")
            && e.contains("--image-size 24, the digits --data digits:24"),
        "{e}"
    );
    assert!(!out.exists());
}

#[test]
fn a_tiny_vit_trains_and_every_parameter_moves() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("vit.ron");
    std::fs::write(
        &config,
        "(model: ViT((img_size: 24, patch_size: 8, dim: 8, depth: 1, heads: 2, num_classes: 2)),
          dataset: SpuriousDigits((train_groups: (40, 8, 4, 12), eval_per_group: 4)),
          training: (epochs: 1, batch_size: 16))",
    )
    .unwrap();
    let exp = tmp.path().join("exp");
    common::succeeds(&["train", "--config", config.to_str().unwrap(), "--out", exp.to_str().unwrap()]);
    let read = |epoch: &str| {
        let bytes = std::fs::read(exp.join(format!("epoch-{epoch}.safetensors"))).unwrap();
        let file = SafeTensors::deserialize(&bytes).unwrap();
        file.iter()
            .map(|(name, view)| (name.to_string(), view.data().to_vec()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let (before, after) = (read("000"), read("001"));
    assert_eq!(before.len(), 4 + 12 + 2 + 2);
    for (name, data) in &before {
        assert_ne!(data, &after[name], "{name} did not change in training");
    }
}
