//! `memscope import --torchscript` against models and runs made by PyTorch
//! (scripts/make-torchscript-runs): a scripted torchvision ResNet-18, a scripted torchvision
//! DenseNet-121 and a traced small CNN whose head is followed by another linear map. memscope's
//! per-group correct counts must equal PyTorch's running the same module on the same pixels, at
//! every epoch and after zeroing the top-k neurons by magnitude (in one layer and over all),
//! PyTorch choosing them by its own norms.
//!
//! The runs need the reference stack (torch 2.9.0, torchvision); they are made once and cached
//! by the script's hash. Without it the tests fail, unless `MEMSCOPE_ALLOW_SKIP=1`.

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

/// The PyTorch runs, made once for every test of this file.
fn runs() -> Option<PathBuf> {
    static RUNS: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let python = common::torch_python()?;
    Some(RUNS.get_or_init(|| make_runs(&python)).clone())
}

fn make_runs(python: &Path) -> PathBuf {
    let cache = common::fixture_cache("torchscript-runs", &["make-torchscript-runs"]).expect("no HOME");
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
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/make-torchscript-runs");
    let ok = std::process::Command::new(python)
        .arg(script)
        .arg(data.path())
        .arg(&staging)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "scripts/make-torchscript-runs failed");
    if std::fs::rename(&staging, &cache).is_err() {
        std::fs::remove_dir_all(&staging).unwrap();
    }
    cache
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn counts(json: &Value) -> Vec<usize> {
    json.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect()
}

/// Imports the run of model `name` into `out` with `extra` arguments; returns what import said.
fn import(runs: &Path, name: &str, out: &Path, extra: &[&str]) -> String {
    let model = runs.join(name).join("model.pt");
    let checkpoints = runs.join(name).join("run");
    let args = [
        "import",
        "--torchscript",
        s(&model),
        "--checkpoints",
        s(&checkpoints),
        "--data",
        DATA,
        "--out",
        s(out),
        "--evaluate",
        "val",
    ];
    let output = common::memscope().args(args).args(extra).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{args:?}: {stderr}");
    stderr
}

/// Every epoch's counts, recorded at import and evaluated again from the experiment, equal
/// PyTorch's; every zero-out picks PyTorch's neurons and gives its counts.
fn gives_pytorchs_counts(runs: &Path, name: &str, extra: &[&str]) -> String {
    let expected: Value =
        serde_json::from_slice(&std::fs::read(runs.join(name).join("counts.json")).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("exp");
    let said = import(runs, name, &exp, extra);
    let experiment = Experiment::open(&exp).unwrap();
    assert_eq!(experiment.epochs().collect::<Vec<_>>(), vec![0, 1, 2]);
    let sizes = counts(&expected["group_sizes"]);
    let dataset = dataset();
    let device = DeviceSpec::Cpu.device().unwrap();
    for entry in &experiment.manifest.checkpoints {
        let torch = counts(&expected["epochs"][entry.epoch.to_string()]);
        let recorded: Vec<usize> = entry
            .val_accuracy
            .iter()
            .zip(&sizes)
            .map(|(a, &n)| (a.unwrap() * n as f64).round() as usize)
            .collect();
        assert_eq!(recorded, torch, "{name}: epoch {} at import", entry.epoch);
    }
    // Opened again from the experiment folder (its copies of the module and the tensors).
    let network = experiment.load_network(2, &device).unwrap();
    let report = evaluate(&network, &dataset, Split::Val, &device, &mut Silent).unwrap();
    let correct: Vec<usize> = report.groups.iter().map(|g| g.correct).collect();
    assert_eq!(correct, counts(&expected["epochs"]["2"]), "{name}: epoch 2 reopened");
    // Not a constant prediction (a pipeline that always answered one class would agree with
    // PyTorch on a network that does): groups G0, G1 are class 0, G2, G3 class 1.
    let last = counts(&expected["epochs"]["2"]);
    let zeros = last[0] + last[1] + (sizes[2] - last[2]) + (sizes[3] - last[3]);
    assert!(zeros > 0 && zeros < sizes.iter().sum(), "{name}: {last:?}");
    for zero in expected["zero"].as_array().unwrap() {
        zero_out_gives_pytorchs_counts(&exp, name, zero, &expected);
    }
    said
}

fn zero_out_gives_pytorchs_counts(exp: &Path, name: &str, zero: &Value, expected: &Value) {
    let k = zero["k"].to_string();
    let epoch = zero["epoch"].to_string();
    let mut args =
        vec!["intervene", "--experiment", s(exp), "--epoch", &epoch, "--criterion", "magnitude", "-k", &k];
    args.extend(["--kind", "zero", "--format", "json"]);
    if let Some(layer) = zero["within"].as_str() {
        args.extend(["--within", layer]);
    }
    let json: Value = serde_json::from_str(&succeeds(&args)).unwrap();
    let chosen: Vec<String> = json["neurons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| format!("{}:{}", n["id"]["layer"].as_str().unwrap(), n["id"]["index"]))
        .collect();
    let mut torch: Vec<String> =
        zero["neurons"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()).collect();
    let mut ours = chosen.clone();
    torch.sort();
    ours.sort();
    assert_eq!(ours, torch, "{name}: the neurons zeroed ({:?})", zero["within"]);
    let after: Vec<usize> = common::correct_after(&json);
    assert_eq!(after, counts(&zero["counts"]), "{name}: zero-out {:?}", zero["within"]);
    assert_ne!(
        after,
        counts(&expected["epochs"][&epoch]),
        "{name}: the zero-out {:?} changes predictions",
        zero["within"]
    );
}

#[test]
fn a_scripted_resnet18_gives_pytorchs_counts() {
    let Some(runs) = runs() else { return };
    let said = gives_pytorchs_counts(&runs, "resnet18", &[]);
    assert!(said.contains("head fc (the last rank-2 weight with one row per class"), "{said}");
}

#[test]
fn a_scripted_densenet121_gives_pytorchs_counts() {
    let Some(runs) = runs() else { return };
    let said = gives_pytorchs_counts(&runs, "densenet121", &[]);
    assert!(said.contains("head classifier"), "{said}");
}

#[test]
fn a_traced_model_with_a_head_inside_a_sequential_gives_pytorchs_counts() {
    let Some(runs) = runs() else { return };
    let said = gives_pytorchs_counts(&runs, "traced", &["--head", "classifier.fc"]);
    assert!(said.contains("head classifier.fc (as --head names it)"), "{said}");
    // Without --head, the rule takes the last rank-2 weight with one row per class.
    let tmp = tempfile::tempdir().unwrap();
    let said = import(&runs, "traced", &tmp.path().join("exp"), &[]);
    assert!(said.contains("head calibrate"), "{said}");
}

#[test]
fn scores_and_studies_run_on_a_scripted_model_and_the_rest_is_refused_in_one_line() {
    let Some(runs) = runs() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("exp");
    import(&runs, "traced", &exp, &["--head", "classifier.fc"]);
    let e = s(&exp);
    // Gradient scores come from libtorch's autograd through the module.
    let out =
        succeeds(&["intervene", "--experiment", e, "--criterion", "gradient", "--group", "0", "-k", "3"]);
    assert!(out.contains("G0"), "{out}");
    let info = succeeds(&["info", "--experiment", e]);
    assert!(info.contains("TorchScript"), "{info}");
    let err = fails(&["mitigate", "--experiment", e, "--out", s(&tmp.path().join("m"))]);
    assert!(err.contains("a TorchScript model cannot be mitigated"), "{err}");
    // A state dict that is not the module's: the one-line errors import gives today.
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::copy(runs.join("resnet18/run/epoch_0.pt"), other.join("epoch_0.pt")).unwrap();
    let model = runs.join("traced/model.pt");
    let err = fails(&[
        "import",
        "--torchscript",
        s(&model),
        "--checkpoints",
        s(&other),
        "--data",
        DATA,
        "--head",
        "classifier.fc",
        "--out",
        s(&tmp.path().join("bad")),
    ]);
    assert!(err.contains("does not fit the TorchScript module"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    let err = fails(&[
        "import",
        "--torchscript",
        s(&model),
        "--checkpoints",
        s(&other),
        "--data",
        DATA,
        "--head",
        "nope",
        "--out",
        s(&tmp.path().join("bad")),
    ]);
    assert!(err.contains("--head nope"), "{err}");
}

/// A module that raises on batches of more than eight images: it passes import's one-image
/// check, then fails in an evaluation pass (import's, and intervene's), which must be a
/// one-line error naming PyTorch's message, not a crash, and leave nothing behind.
const FAILS_ON_BIG_BATCHES: &str = r#"
import sys, torch
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.fc = torch.nn.Linear(4, 2)
    def forward(self, x):
        if x.shape[0] > 8:
            raise RuntimeError("this module takes at most 8 images")
        return self.fc(self.conv(x).mean(dim=(2, 3)))
torch.manual_seed(0)
net = Net().eval()
torch.jit.script(net).save(sys.argv[1] + "/model.pt")
torch.save(net.state_dict(), sys.argv[1] + "/run/epoch_0.pt")
"#;

#[test]
fn a_module_that_fails_in_a_pass_is_a_one_line_error() {
    let Some(python) = common::torch_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("run")).unwrap();
    // From a file: torch.jit.script reads the class's source.
    let script = tmp.path().join("make.py");
    std::fs::write(&script, FAILS_ON_BIG_BATCHES).unwrap();
    let made = std::process::Command::new(&python)
        .args([s(&script), s(tmp.path())])
        .status()
        .is_ok_and(|s| s.success());
    assert!(made, "PyTorch could not make the module");
    let exp = tmp.path().join("exp");
    let (model, run) = (tmp.path().join("model.pt"), tmp.path().join("run"));
    let args = ["import", "--torchscript", s(&model), "--checkpoints", s(&run), "--data", DATA];
    let said = "the TorchScript module failed: builtins.RuntimeError: this module takes at most 8 images";
    let err = fails(&[&args[..], &["--out", s(&exp), "--evaluate", "val"]].concat());
    assert!(err.contains(said), "{err}");
    assert!(!exp.exists(), "a failed import left {}", exp.display());
    succeeds(&[&args[..], &["--out", s(&exp)]].concat());
    let err = fails(&["intervene", "--experiment", s(&exp), "-k", "1"]);
    assert!(err.contains(said), "{err}");
}
