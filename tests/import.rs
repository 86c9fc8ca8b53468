//! `memscope import` against a training run made by PyTorch (scripts/make-torch-run): a
//! torchvision-named ResNet-18 trained for three epochs on spurious digits that memscope
//! exported, saved per epoch as users' code saves it. memscope's per-group correct counts must
//! equal PyTorch's exactly, at every epoch and after zeroing the same filters (chosen by a
//! ranking, or named by hand with `--neurons`); the authors' conventions (fc.0 head, reversed
//! labels) and burn's `.bpk` files give the same networks.
//!
//! The run needs the reference stack (torch 2.9.0: scripts/fetch-reference, or
//! `MEMSCOPE_TORCH_PYTHON`); it is made once and cached by the scripts' hash. Without it the
//! tests fail, unless `MEMSCOPE_ALLOW_SKIP=1`.

mod common;

use common::{fails, succeeds};

use std::path::{Path, PathBuf};

use memscope_core::data::{DatasetSpec, GroupedDataset, Split};
use memscope_core::device::DeviceSpec;
use memscope_core::eval::evaluate;
use memscope_core::experiment::Experiment;
use memscope_core::jobs::Silent;
use serde_json::Value;

const DATA: &str = "digits:32";

fn dataset() -> GroupedDataset {
    DATA.parse::<DatasetSpec>().unwrap().load().unwrap()
}

/// The PyTorch run, made once (the tests of this file share it; it is written beside the
/// cache folder and moved into place when complete) if it is not cached yet.
fn torch_run() -> Option<PathBuf> {
    static RUN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let python = common::torch_python()?;
    Some(RUN.get_or_init(|| make_torch_run(&python)).clone())
}

fn make_torch_run(python: &Path) -> PathBuf {
    let cache = common::fixture_cache("torch-run", &["make-torch-run"]).expect("no HOME");
    if cache.join(".complete").exists() {
        return cache;
    }
    let data = tempfile::tempdir().unwrap();
    let dataset = dataset();
    for split in [Split::Train, Split::Val] {
        let bytes = memscope_core::experiment::export::encode_split(&dataset, split).unwrap();
        std::fs::write(data.path().join(format!("data-{split}.safetensors")), bytes).unwrap();
    }
    let staging = cache.with_extension(common::staging_suffix());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/make-torch-run");
    let ok = std::process::Command::new(python)
        .arg(script)
        .arg(data.path())
        .arg(&staging)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "scripts/make-torch-run failed");
    // Another test binary may have finished first: keep its copy.
    if std::fs::rename(&staging, &cache).is_err() {
        std::fs::remove_dir_all(&staging).unwrap();
    }
    cache
}

fn counts(json: &Value) -> Vec<usize> {
    json.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect()
}

fn correct(experiment: &Experiment, epoch: usize, dataset: &GroupedDataset) -> Vec<usize> {
    let device = DeviceSpec::Cpu.device().unwrap();
    let network = experiment.load_network(epoch, &device).unwrap();
    evaluate(&network, dataset, Split::Val, &device, &mut Silent)
        .unwrap()
        .groups
        .iter()
        .map(|g| g.correct)
        .collect()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn a_pytorch_run_gives_pytorchs_counts_at_every_epoch() {
    let Some(run) = torch_run() else { return };
    let expected: Value = serde_json::from_slice(&std::fs::read(run.join("counts.json")).unwrap()).unwrap();
    let dataset = dataset();
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain");
    let authors = tmp.path().join("authors");
    succeeds(&[
        "import",
        "--checkpoints",
        s(&run.join("run")),
        "--arch",
        "resnet18",
        "--data",
        DATA,
        "--out",
        s(&plain),
        "--evaluate",
        "val",
    ]);
    succeeds(&[
        "import",
        "--checkpoints",
        s(&run.join("authors")),
        "--arch",
        "resnet18",
        "--data",
        DATA,
        "--pattern",
        "epoch_{epoch}_checkpoints.pth.tar",
        "--label-order",
        "reversed",
        "--head",
        "softmax",
        "--out",
        s(&authors),
    ]);
    let sizes = counts(&expected["group_sizes"]);
    for dir in [&plain, &authors] {
        let experiment = Experiment::open(dir).unwrap();
        assert_eq!(experiment.epochs().collect::<Vec<_>>(), vec![0, 1, 2, 3], "{}", dir.display());
        for epoch in 0..=3 {
            let torch = counts(&expected["epochs"][epoch.to_string()]);
            assert_eq!(correct(&experiment, epoch, &dataset), torch, "epoch {epoch} of {}", dir.display());
        }
    }
    // The accuracies recorded at import (--evaluate val) are the same counts.
    let experiment = Experiment::open(&plain).unwrap();
    for entry in &experiment.manifest.checkpoints {
        let torch = counts(&expected["epochs"][entry.epoch.to_string()]);
        let recorded: Vec<f64> = entry.val_accuracy.iter().map(|a| a.unwrap()).collect();
        let from_torch: Vec<f64> = torch.iter().zip(&sizes).map(|(&c, &n)| c as f64 / n as f64).collect();
        assert_eq!(recorded, from_torch, "epoch {}", entry.epoch);
    }
    // Files are referred to, relative to the experiment, with size and sha256.
    let entry = &experiment.manifest.checkpoints[1];
    assert!(entry.file.ends_with("run/epoch_1.pth"), "{}", entry.file);
    let meta = entry.imported.as_ref().unwrap();
    assert_eq!(meta.size, std::fs::metadata(run.join("run/epoch_1.pth")).unwrap().len());
    assert_eq!(meta.wrapper.as_deref(), Some("state_dict"));
    assert_eq!(
        experiment.manifest.checkpoints[2].imported.as_ref().unwrap().stripped_prefix.as_deref(),
        Some("module.")
    );

    // Zeroing the largest-norm filters of a late layer (the forward pass resumes from cached
    // activations) and of the first conv (a whole pass), PyTorch choosing them by its own
    // norms, gives PyTorch's counts in both imports.
    for dir in [&plain, &authors] {
        zero_outs_give_pytorchs_counts(dir, &expected);
    }
}

/// Each of `expected`'s "zero" entries (scripts/make-torch-run: the k largest-norm filters of a
/// layer zeroed at an epoch) chooses the same filters and gives PyTorch's per-group counts on
/// val in the experiment at `dir`, and changes some prediction.
fn zero_outs_give_pytorchs_counts(dir: &Path, expected: &Value) {
    for zero in expected["zero"].as_array().unwrap() {
        let layer = zero["layer"].as_str().unwrap();
        let k = zero["k"].to_string();
        let epoch = zero["epoch"].to_string();
        let filters: Vec<String> =
            zero["filters"].as_array().unwrap().iter().map(|f| format!("{layer}:{f}")).collect();
        let out = succeeds(&[
            "intervene",
            "--experiment",
            s(dir),
            "--epoch",
            &epoch,
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
        let json: Value = serde_json::from_str(&out).unwrap();
        let chosen: Vec<String> = json["neurons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| format!("{}:{}", n["id"]["layer"].as_str().unwrap(), n["id"]["index"]))
            .collect();
        assert_eq!(chosen, filters, "{}", dir.display());
        // One deterministic run: after = correct / examples.
        let after: Vec<usize> = common::correct_after(&json);
        assert_eq!(after, counts(&zero["counts"]), "{layer} in {}", dir.display());
        assert_ne!(after, counts(&expected["epochs"][&epoch]), "{layer}: the zero-out changes predictions");

        // The filters PyTorch zeroed, named by hand (`--neurons`, no ranking choosing them),
        // give PyTorch's counts too.
        let named = filters.join(",");
        let out = succeeds(&[
            "intervene",
            "--experiment",
            s(dir),
            "--epoch",
            &epoch,
            "--criterion",
            "magnitude",
            "--neurons",
            &named,
            "--kind",
            "zero",
            "--format",
            "json",
        ]);
        let json: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(json["spec"]["selection"]["by-hand"].as_array().map(Vec::len), Some(filters.len()));
        let by_hand: Vec<usize> = common::correct_after(&json);
        assert_eq!(by_hand, counts(&zero["counts"]), "{layer} named by hand in {}", dir.display());
    }
}

/// The spurious digits as a Waterbirds folder of JPEGs (`memscope export --format waterbirds
/// --size 32`) and a PyTorch run trained on it as PyTorch code reads such a folder: PIL
/// decoding and torchvision's evaluation transform at 32 px (scripts/pil-folder-tensors), then
/// scripts/make-torch-run with the zero-outs at epoch 3. Made once and cached; needs the
/// reference stack (torch, Pillow, numpy).
fn folder_run() -> Option<PathBuf> {
    let run = torch_run()?;
    let python = common::torch_python()?;
    let scripts = ["make-torch-run", "pil-folder-tensors"];
    let cache = common::fixture_cache("torch-folder-run", &scripts).expect("no HOME");
    if cache.join(".complete").exists() {
        return Some(cache);
    }
    let tmp = tempfile::tempdir().unwrap();
    let digits = tmp.path().join("digits");
    succeeds(&["import", "--checkpoints", s(&run.join("run")), "--data", DATA, "--out", s(&digits)]);
    let staging = cache.with_extension(common::staging_suffix());
    let folder = staging.join("folder");
    let tensors = tmp.path().join("tensors");
    succeeds(&[
        "export",
        "--format",
        "waterbirds",
        "--size",
        "32",
        "--experiment",
        s(&digits),
        "--out",
        s(&folder),
    ]);
    for (script, args) in [
        ("pil-folder-tensors", [s(&folder), "32", s(&tensors)]),
        ("make-torch-run", [s(&tensors), s(&staging), "3"]),
    ] {
        let path = format!("{}/scripts/{script}", env!("CARGO_MANIFEST_DIR"));
        let ok = std::process::Command::new(&python).arg(path).args(args).status().is_ok_and(|s| s.success());
        assert!(ok, "scripts/{script} failed");
    }
    if std::fs::rename(&staging, &cache).is_err() {
        std::fs::remove_dir_all(&staging).unwrap();
    }
    Some(cache)
}

/// End to end on JPEG files: the folder loader, the transform, normalisation, batching and
/// evaluation together give the per-group counts PyTorch gets from PIL and torchvision on the
/// same files with the same weights, at every epoch and after zeroing filters.
#[test]
fn a_jpeg_folder_gives_pytorchs_counts_end_to_end() {
    let Some(run) = folder_run() else { return };
    let expected: Value = serde_json::from_slice(&std::fs::read(run.join("counts.json")).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("exp");
    let data = format!("waterbirds:{}", s(&run.join("folder")));
    let args = ["--arch", "resnet18", "--data", &data, "--image-size", "32", "--evaluate", "val"];
    succeeds(&[&["import", "--checkpoints", s(&run.join("run")), "--out", s(&exp)], &args[..]].concat());
    let experiment = Experiment::open(&exp).unwrap();
    let sizes = counts(&expected["group_sizes"]);
    assert_eq!(experiment.epochs().collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    for entry in &experiment.manifest.checkpoints {
        let torch = counts(&expected["epochs"][entry.epoch.to_string()]);
        let recorded: Vec<usize> = entry
            .val_accuracy
            .iter()
            .zip(&sizes)
            .map(|(a, &n)| (a.unwrap() * n as f64).round() as usize)
            .collect();
        assert_eq!(recorded, torch, "epoch {}", entry.epoch);
    }
    // The last epoch is not a constant prediction (a pipeline that always answered one class
    // would agree with PyTorch on a network that does).
    let last = counts(&expected["epochs"]["3"]);
    assert!(last.iter().zip(&sizes).any(|(&c, &n)| c > 0 && c < n), "{last:?}");
    zero_outs_give_pytorchs_counts(&exp, &expected);
    // The transform --image-size chose is recorded and said.
    let info: Value =
        serde_json::from_str(&succeeds(&["info", "--experiment", s(&exp), "--format", "json"])).unwrap();
    let said =
        format!("{data} (Resize((36, 36), interpolation=bilinear) · CenterCrop(32) · Normalize(ImageNet))");
    assert_eq!(info["data"], said.as_str());
    assert_eq!(info["provenance"]["dataset"], said.as_str());
}

/// PyTorch's per-group counts for the folder run's checkpoints evaluated by a user's own
/// transform, `Resize((64, 64))` without a crop and ImageNet's `Normalize`, on the same JPEG
/// files: torchvision's ResNet-18 and transforms (scripts/torchvision-folder-counts). Made
/// once and cached.
fn resize64_counts(run: &Path) -> Option<Value> {
    let python = common::torch_python()?;
    let scripts =
        ["make-torch-run", "pil-folder-tensors", "torchvision-reference", "torchvision-folder-counts"];
    let cache = common::fixture_cache("torch-folder-resize64", &scripts).expect("no HOME");
    let file = cache.join("counts.json");
    if !file.exists() {
        std::fs::create_dir_all(&cache).unwrap();
        let staging = cache.join(format!("counts.json.{}", common::staging_suffix()));
        let spec = r#"{"steps": [["resize", [64, 64], "bilinear"]], "normalize": "imagenet"}"#;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/torchvision-folder-counts");
        let ok = std::process::Command::new(&python)
            .arg(script)
            .args([s(&run.join("folder")), s(&run.join("run")), spec, s(&staging)])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "scripts/torchvision-folder-counts failed");
        std::fs::rename(&staging, &file).unwrap();
    }
    Some(serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap())
}

/// Issue 28's run: a torchvision ResNet-18 evaluated with `Resize((64, 64))`, no crop,
/// ImageNet normalisation, on a JPEG folder in Waterbirds layout, imported with
/// `--transform`, gives PyTorch's per-group counts at every epoch.
#[test]
fn a_users_own_transform_gives_pytorchs_counts_on_a_jpeg_folder() {
    let Some(run) = folder_run() else { return };
    let Some(expected) = resize64_counts(&run) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("exp");
    let data = format!("waterbirds:{}", s(&run.join("folder")));
    let transform = "resize=64x64,normalize=imagenet";
    let args = ["--arch", "resnet18", "--data", &data, "--transform", transform, "--evaluate", "val"];
    succeeds(&[&["import", "--checkpoints", s(&run.join("run")), "--out", s(&exp)], &args[..]].concat());
    let experiment = Experiment::open(&exp).unwrap();
    let sizes = counts(&expected["group_sizes"]);
    assert_eq!(experiment.epochs().collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    for entry in &experiment.manifest.checkpoints {
        let torch = counts(&expected["epochs"][entry.epoch.to_string()]);
        let recorded: Vec<usize> = entry
            .val_accuracy
            .iter()
            .zip(&sizes)
            .map(|(a, &n)| (a.unwrap() * n as f64).round() as usize)
            .collect();
        assert_eq!(recorded, torch, "epoch {}", entry.epoch);
    }
    // Trained at 32 px, the network answers one class at some epochs at 64; not at all (a
    // pipeline that always answered one class would agree with PyTorch where it does).
    let split = |e: &str| counts(&expected["epochs"][e]).iter().zip(&sizes).any(|(&c, &n)| c > 0 && c < n);
    assert!(["0", "1", "2", "3"].into_iter().any(split), "{expected}");
    // The filters PyTorch zeroed, named by hand, give PyTorch's counts at every epoch; at some
    // epoch the zero-out changes them.
    let mut changed = false;
    for epoch in ["0", "1", "2", "3"] {
        let zero = &expected["zero"][epoch];
        let named: Vec<String> =
            zero["filters"].as_array().unwrap().iter().map(|i| format!("layer4.1.conv2:{i}")).collect();
        let named = named.join(",");
        let args = ["--epoch", epoch, "--neurons", &named, "--kind", "zero", "--format", "json"];
        let out = succeeds(&[&["intervene", "--experiment", s(&exp)], &args[..]].concat());
        let json: Value = serde_json::from_str(&out).unwrap();
        let after: Vec<usize> = common::correct_after(&json);
        assert_eq!(after, counts(&zero["counts"]), "epoch {epoch}");
        changed |= after != counts(&expected["epochs"][epoch]);
    }
    assert!(changed, "zeroing the named filters changed no prediction: {expected}");
    // Recorded in experiment.ron, said in torchvision's words.
    let info: Value =
        serde_json::from_str(&succeeds(&["info", "--experiment", s(&exp), "--format", "json"])).unwrap();
    let said = format!("{data} (Resize((64, 64), interpolation=bilinear) · Normalize(ImageNet))");
    assert_eq!(info["data"], said.as_str());
    assert_eq!(info["provenance"]["dataset"], said.as_str());
}

#[test]
fn burn_checkpoints_import_like_pytorchs() {
    use burn::store::{BurnpackStore, ModuleSnapshot};
    use memscope_core::model::Network;
    let Some(run) = torch_run() else { return };
    let expected: Value = serde_json::from_slice(&std::fs::read(run.join("counts.json")).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain");
    succeeds(&[
        "import",
        "--checkpoints",
        s(&run.join("run")),
        "--arch",
        "resnet18",
        "--data",
        DATA,
        "--out",
        s(&plain),
    ]);
    let experiment = Experiment::open(&plain).unwrap();
    let device = DeviceSpec::Cpu.device().unwrap();
    // A burn-train artifact folder: checkpoint/model-<epoch>.bpk beside optim- and scheduler-
    // files. Epoch 1 is a user's burn ResNet struct; epoch 3 memscope's own network enum.
    let artifact = tmp.path().join("burn-run");
    let checkpoints = artifact.join("checkpoint");
    std::fs::create_dir_all(&checkpoints).unwrap();
    for epoch in [1, 3] {
        let network = experiment.load_network(epoch, &device).unwrap();
        let mut store = BurnpackStore::from_file(checkpoints.join(format!("model-{epoch}.bpk")));
        match (&network, epoch) {
            (Network::ResNet(inner), 1) => inner.save_into(&mut store).unwrap(),
            _ => network.save_into(&mut store).unwrap(),
        }
        std::fs::write(checkpoints.join(format!("optim-{epoch}.bpk")), b"not a model").unwrap();
    }
    std::fs::write(artifact.join("experiment.log"), b"log").unwrap();
    let burn = tmp.path().join("burn");
    succeeds(&[
        "import",
        "--checkpoints",
        s(&artifact),
        "--arch",
        "resnet18",
        "--data",
        DATA,
        "--out",
        s(&burn),
    ]);
    let imported = Experiment::open(&burn).unwrap();
    assert_eq!(imported.epochs().collect::<Vec<_>>(), vec![1, 3]);
    assert_eq!(imported.manifest.checkpoints[0].imported.as_ref().unwrap().format, "burnpack");
    let dataset = dataset();
    for epoch in [1, 3] {
        assert_eq!(
            correct(&imported, epoch, &dataset),
            counts(&expected["epochs"][epoch.to_string()]),
            "epoch {epoch}"
        );
    }
}

#[test]
fn import_errors_name_the_file_and_the_fix() {
    let Some(run) = torch_run() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("run");
    std::fs::create_dir(&copy).unwrap();
    for file in ["init.pt", "epoch_1.pth"] {
        std::fs::copy(run.join("run").join(file), copy.join(file)).unwrap();
    }
    let out = tmp.path().join("exp");
    let import = |extra: &[&str]| {
        let mut args = vec!["import", "--checkpoints", s(&copy), "--data", DATA, "--out", s(&out)];
        if !extra.contains(&"--arch") {
            args.extend(["--arch", "resnet18"]);
        }
        args.extend(extra);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let fails_with = |extra: &[&str], wanted: &[&str]| {
        let args = import(extra);
        let err = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
        for w in wanted {
            assert!(err.contains(w), "{extra:?}: {err}");
        }
        assert!(!out.exists(), "a failed import left {}", out.display());
    };

    // Another architecture: ResNet-18 files opened as ResNet-50.
    fails_with(
        &["--arch", "resnet50"],
        &["init.pt", "does not fit ResNet-50 with 2 classes", "another architecture?"],
    );
    // The authors' Linear+Softmax head, or a plain head read as theirs.
    fails_with(&["--head", "softmax"], &["init.pt", "pass --head linear"]);
    // No file matches the pattern; a pattern without {epoch}.
    fails_with(
        &["--pattern", "ep{epoch}.ckpt"],
        &["matches --pattern 'ep{epoch}.ckpt'", "found: epoch_1.pth, init.pt"],
    );
    fails_with(&["--pattern", "epoch_1.pth"], &["must contain {epoch} once"]);
    // A run folder that does not exist.
    let err = fails(&["import", "--checkpoints", "/nonexistent/run", "--arch", "resnet18", "--out", s(&out)]);
    assert!(err.contains("run folder /nonexistent/run does not exist"), "{err}");
    // An ImageNet head.
    let (bytes, _) = memscope_core::experiment::foreign::read(&copy.join("init.pt")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let big = vec![0u8; 1000 * 512 * 4];
    let bias = vec![0u8; 1000 * 4];
    let mut views: Vec<(String, safetensors::tensor::TensorView)> =
        file.iter().filter(|(n, _)| !n.starts_with("fc.")).map(|(n, v)| (n.to_string(), v)).collect();
    views.push((
        "fc.weight".into(),
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![1000, 512], &big).unwrap(),
    ));
    views.push((
        "fc.bias".into(),
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![1000], &bias).unwrap(),
    ));
    std::fs::write(copy.join("epoch_2.safetensors"), safetensors::serialize(views, None).unwrap()).unwrap();
    fails_with(
        &[],
        &["epoch_2.safetensors", "'fc.weight' [2, 512] expected, [1000, 512] found", "pass --classes 1000"],
    );
    std::fs::remove_file(copy.join("epoch_2.safetensors")).unwrap();
    // A file that is no checkpoint; two files for one epoch.
    std::fs::write(copy.join("epoch_2.pth"), b"just text\n").unwrap();
    fails_with(&[], &["epoch_2.pth is neither a PyTorch checkpoint nor a safetensors file"]);
    std::fs::remove_file(copy.join("epoch_2.pth")).unwrap();
    std::fs::copy(copy.join("epoch_1.pth"), copy.join("epoch-001.pt")).unwrap();
    fails_with(&[], &["give epoch 1: epoch-001.pt and epoch_1.pth", "--pattern"]);
    std::fs::remove_file(copy.join("epoch-001.pt")).unwrap();
    // A label order that is no ordering of the classes.
    fails_with(&["--label-order", "1,1"], &["--label-order '1,1' must give each of the 2 classes once"]);

    // After import: a changed file and a missing file are named when opened.
    succeeds(&["import", "--checkpoints", s(&copy), "--arch", "resnet18", "--data", DATA, "--out", s(&out)]);
    succeeds(&["info", "--experiment", s(&out), "--epoch", "1"]);
    let mut bytes = std::fs::read(copy.join("epoch_1.pth")).unwrap();
    bytes.push(0);
    std::fs::write(copy.join("epoch_1.pth"), &bytes).unwrap();
    let err = fails(&["info", "--experiment", s(&out), "--epoch", "1"]);
    assert!(err.contains("epoch_1.pth") && err.contains("changed since it was imported"), "{err}");
    std::fs::remove_file(copy.join("epoch_1.pth")).unwrap();
    let err = fails(&["info", "--experiment", s(&out), "--epoch", "1"]);
    assert!(err.contains("epoch_1.pth") && err.contains("is missing"), "{err}");
    // The other epoch still opens.
    succeeds(&["info", "--experiment", s(&out), "--epoch", "0"]);
}
