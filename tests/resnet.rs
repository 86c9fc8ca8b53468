//! torchvision ResNets against PyTorch: networks built, initialised and run by PyTorch
//! (scripts/make-torch-fixtures), their state dicts loaded by memscope, logits compared.
//!
//! The fixtures need the reference stack (torch 2.9.0: scripts/fetch-reference, or
//! `MEMSCOPE_TORCH_PYTHON`); they are made once and cached by the script's hash. Without it the
//! tests fail, unless `MEMSCOPE_ALLOW_SKIP=1`.

mod common;

use std::path::PathBuf;
use std::process::Command;

use burn::prelude::*;
use memscope_core::data::batch;
use memscope_core::device::DeviceSpec;
use memscope_core::experiment::checkpoint;
use memscope_core::model::resnet::{Depth, HeadKind};
use memscope_core::model::{Mode, ModelConfig, ResNetConfig};
use safetensors::SafeTensors;

/// The fixture folder, made by PyTorch if it is not cached yet.
fn fixtures() -> Option<PathBuf> {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let python = common::torch_python()?;
    Some(DIR.get_or_init(|| make_fixtures(&python)).clone())
}

/// Made once for the tests of this file (they run in parallel), then cached.
fn make_fixtures(python: &std::path::Path) -> PathBuf {
    let cache = common::fixture_cache("torch-resnets", &["make-torch-fixtures"]).expect("no HOME");
    if cache.join(".complete").exists() {
        return cache;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/make-torch-fixtures");
    let ok = Command::new(python).arg(script).arg(&cache).status().is_ok_and(|s| s.success());
    assert!(ok, "scripts/make-torch-fixtures failed");
    cache
}

fn floats(path: &std::path::Path, name: &str) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let t = file.tensor(name).unwrap();
    let values = t.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    (t.shape().to_vec(), values)
}

#[test]
fn resnets_give_pytorchs_logits_from_pytorchs_weights() {
    let device = DeviceSpec::Cpu.device().unwrap();
    let Some(dir) = fixtures() else { return };
    let (shape, images) = floats(&dir.join("inputs.safetensors"), "images");
    let n = shape[0];
    for (name, depth, head) in [
        ("resnet18", Depth::ResNet18, HeadKind::Linear),
        ("resnet34", Depth::ResNet34, HeadKind::Linear),
        ("resnet50", Depth::ResNet50, HeadKind::LinearSoftmax),
    ] {
        let config = ModelConfig::ResNet(ResNetConfig { depth, head, ..Default::default() });
        let bytes = std::fs::read(dir.join(format!("{name}.safetensors"))).unwrap();
        let model = checkpoint::decode(&config, bytes, &device).unwrap();
        let x = batch::from_chw(&images, n, [shape[1], shape[2], shape[3]], &device);
        let ours = model.forward(x, Mode::Eval).into_data().try_to_vec::<f32>().unwrap();
        let (_, theirs) = floats(&dir.join(format!("{name}-logits.safetensors")), "logits");
        let worst =
            ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs() / b.abs().max(1.0)).fold(0.0, f32::max);
        assert!(worst < 1e-4, "{name}: largest difference {worst}\nours {ours:?}\ntheirs {theirs:?}");

        // The layer list uses torchvision's names, with stages for the activation cache.
        let layers = model.layers();
        let find = |n: &str| layers.iter().find(|l| l.name == n).unwrap_or_else(|| panic!("{name}: no {n}"));
        assert_eq!(find("conv1").stage, None);
        assert_eq!(find("layer1.0.conv1").stage, Some(0));
        assert!(find("layer2.0.downsample.0").shortcut);
        assert_eq!(find("layer4.1.conv2").stage, Some(3));
        let head = if head == HeadKind::Linear { "fc" } else { "fc.0" };
        assert!(find(head).head);
        assert_eq!(find(head).stage, Some(4));
        // Resuming from every stage gives the same logits.
        let x = batch::from_chw(&images, n, [shape[1], shape[2], shape[3]], &device);
        let cached = model.boundaries(x);
        for (k, activation) in cached.into_iter().enumerate() {
            let resumed = model.forward_from(k, activation).unwrap().into_data().try_to_vec::<f32>().unwrap();
            assert_eq!(resumed, ours, "{name}: resumed at stage {k}");
        }
    }
}

#[test]
fn a_resnet_checkpoint_round_trips_with_torchvision_names() {
    let device = DeviceSpec::Cpu.device().unwrap();
    let config = ModelConfig::ResNet(ResNetConfig::default());
    let model = config.init(&device).unwrap();
    let bytes = checkpoint::encode(&model).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<&str> = file.names();
    names.sort();
    for expected in [
        "conv1.weight",
        "bn1.running_var",
        "layer1.0.conv1.weight",
        "layer2.0.downsample.0.weight",
        "layer2.0.downsample.1.weight",
        "fc.weight",
    ] {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }
    assert_eq!(file.tensor("fc.weight").unwrap().shape(), &[2, 512]);
    let again = checkpoint::decode(&config, bytes, &device).unwrap();
    let x = Tensor::<4>::ones([2, 3, 32, 32], &device);
    assert_eq!(
        model.forward(x.clone(), Mode::Eval).into_data().try_to_vec::<f32>().unwrap(),
        again.forward(x, Mode::Eval).into_data().try_to_vec::<f32>().unwrap()
    );
}

/// PyTorch's logits for `name` on the fixture inputs, and memscope's from the network `model`.
fn compare(dir: &std::path::Path, model: &memscope_core::model::Network, logits_file: &str, what: &str) {
    let device = DeviceSpec::Cpu.device().unwrap();
    let (shape, images) = floats(&dir.join("inputs.safetensors"), "images");
    let x = batch::from_chw(&images, shape[0], [shape[1], shape[2], shape[3]], &device);
    let ours = model.forward(x, Mode::Eval).into_data().try_to_vec::<f32>().unwrap();
    let (_, theirs) = floats(&dir.join(logits_file), "logits");
    let worst = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs() / b.abs().max(1.0)).fold(0.0, f32::max);
    assert!(worst < 1e-4, "{what}: largest difference {worst}");
}

#[test]
fn torch_save_files_load_in_every_layout_users_have() {
    use memscope_core::experiment::foreign;
    let device = DeviceSpec::Cpu.device().unwrap();
    let Some(dir) = fixtures() else { return };
    let r18 = ModelConfig::ResNet(ResNetConfig::default());
    for (file, wrapper, prefix, logits) in [
        ("r18-zip.pth", None, None, "resnet18-logits.safetensors"),
        ("r18-legacy.pt", None, None, "resnet18-logits.safetensors"),
        ("r18-wrapped.pth.tar", Some("state_dict"), None, "resnet18-logits.safetensors"),
        ("r18-dataparallel.bin", None, Some("module."), "resnet18-logits.safetensors"),
        ("r18-fp16.pth", None, None, "r18-fp16-logits.safetensors"),
    ] {
        let (bytes, notes) = foreign::read(&dir.join(file)).unwrap();
        assert_eq!(
            (notes.format.as_str(), notes.wrapper.as_deref(), notes.stripped_prefix.as_deref()),
            ("pytorch", wrapper, prefix),
            "{file}"
        );
        let model = checkpoint::decode(&r18, bytes, &device).unwrap();
        compare(&dir, &model, logits, file);
    }
    // The authors' checkpoint: model_state_dict beside the optimizer's state, head fc.0.
    let r50 = ModelConfig::ResNet(ResNetConfig {
        depth: Depth::ResNet50,
        head: HeadKind::LinearSoftmax,
        ..Default::default()
    });
    let (bytes, notes) = foreign::read(&dir.join("epoch_3_checkpoints.pth.tar")).unwrap();
    assert_eq!(notes.wrapper.as_deref(), Some("model_state_dict"));
    assert!(notes.ignored > 0, "the optimizer's tensors are set aside");
    let model = checkpoint::decode(&r50, bytes, &device).unwrap();
    compare(&dir, &model, "resnet50-authors-logits.safetensors", "authors' checkpoint");

    // What users get wrong, each a message naming the problem.
    let err = foreign::read(&dir.join("not-a-checkpoint.pth")).unwrap_err().to_string();
    assert!(
        err.contains("not-a-checkpoint.pth is neither a PyTorch checkpoint nor a safetensors file"),
        "{err}"
    );
    let (bytes, _) = foreign::read(&dir.join("r18-zip.pth")).unwrap();
    let r18_five = ModelConfig::ResNet(ResNetConfig { num_classes: 5, ..Default::default() });
    let err = format!("{:#}", checkpoint::decode(&r18_five, bytes.clone(), &device).unwrap_err());
    assert!(
        err.contains(
            "does not fit ResNet-18 with 5 classes: shapes differ: 'fc.weight' [5, 512] expected, [2, 512] found; \
             'fc.bias' [5] expected, [2] found: a 2-class head? pass --classes 2"
        ),
        "{err}"
    );
    let r50_plain = ModelConfig::ResNet(ResNetConfig { depth: Depth::ResNet50, ..Default::default() });
    let err = format!("{:#}", checkpoint::decode(&r50_plain, bytes, &device).unwrap_err());
    assert!(err.contains("another architecture?"), "{err}");
}

/// The rule every comparison follows, shown on this file's first: without the reference stack
/// (`MEMSCOPE_TORCH_PYTHON=/nonexistent`) it fails, naming what is missing; with
/// `MEMSCOPE_ALLOW_SKIP=1` it passes and leaves the mark `make test` counts as skipped.
#[test]
fn without_the_reference_stack_a_comparison_fails_or_is_counted_as_skipped() {
    let marks = tempfile::tempdir().unwrap();
    let run = |allow: bool| {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", "resnets_give_pytorchs_logits_from_pytorchs_weights"])
            .env("MEMSCOPE_TORCH_PYTHON", "/nonexistent")
            .env("MEMSCOPE_CHECK_MARKS", marks.path())
            .env_remove("MEMSCOPE_ALLOW_SKIP");
        if allow {
            cmd.env("MEMSCOPE_ALLOW_SKIP", "1");
        }
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    };
    let (passed, said) = run(false);
    assert!(!passed, "passed without PyTorch: {said}");
    assert!(said.contains("needs PyTorch: MEMSCOPE_TORCH_PYTHON=/nonexistent does not run"), "{said}");
    assert!(said.contains("set MEMSCOPE_ALLOW_SKIP=1 to skip it on purpose"), "{said}");
    let (passed, said) = run(true);
    assert!(passed, "{said}");
    let mark = marks.path().join("skipped/resnet--resnets_give_pytorchs_logits_from_pytorchs_weights");
    assert_eq!(
        std::fs::read_to_string(&mark).unwrap(),
        "resnet::resnets_give_pytorchs_logits_from_pytorchs_weights (needs PyTorch)\n"
    );
    assert!(!marks.path().join("ran").exists());
}
