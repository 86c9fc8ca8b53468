//! Every tensor the engine makes is on the session's device, and nothing comes back to the host
//! but results, checked on the source, as tests/architecture.rs checks imports (this machine
//! has only a CPU, where a tensor on the wrong device computes the same numbers; on CUDA it
//! would be a libtorch error or a silent run on the CPU, and a host read per batch would make
//! every batch wait for the GPU).
//!
//! burn asks for a device on every tensor it makes, so what can go wrong is a device made up
//! outside `device.rs` (`Device::libtorch()`, `Device::default()`, a default
//! `TensorCreationOptions`), a raw libtorch tensor (tch, with its own devices), and a host read
//! or upload where a loop runs. Reads and uploads are counted per file against the list below,
//! each with why it is not per batch; a new one fails here until it is added with its reason.
//! At run time, `device::assert_on` and `device::assert_module_on` check the places where
//! tensors of different origins meet.

mod common;

use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// What chooses a device, or makes a tensor without the session's: only `device` may.
const DEVICE_CHOICES: &[&str] = &[
    "Device::libtorch",
    "Device::default()",
    "LibTorchDevice",
    "Device::cpu(",
    "Device::flex(",
    "Device::ndarray(",
    "TensorCreationOptions::default()",
    "&Default::default()",
    "DeviceSpec::",
    "tch::",
    "burn_tch::",
];

/// Device choices outside `device`, with why they are right.
const CHOICES_ALLOWED: &[(&str, &str, &str)] = &[
    (
        "experiment/export.rs",
        "DeviceSpec::",
        "an imported checkpoint re-encoded as a file on the CPU: no result is computed",
    ),
    (
        "model/scripted.rs",
        "tch::",
        "a TorchScript module runs on libtorch itself, on the session's device (device::torch_device)",
    ),
    ("model/scripted.rs", "burn_tch::", "the TorchScript binding and its tensors, on the session's device"),
];

/// Host reads of a tensor (burn's `one_hot` reads its indices back to check them).
const READS: &[&str] =
    &["into_data(", "into_scalar", "to_data(", "into_primitive", "try_into_primitive", "one_hot("];

/// Host reads per file, and why none runs once per batch.
const READS_ALLOWED: &[(&str, usize, &str)] = &[
    ("eval.rs", 1, "the logits of every pass, read once after the last"),
    ("train/fit.rs", 1, "the epoch's loss, summed on the device, read once per epoch"),
    ("neurons/weights.rs", 1, "weights once per epoch; gradients summed on the device, read once per score"),
    ("mitigate/dfr.rs", 1, "the features of every pass, read once after the last"),
    ("mitigate/silent_majority.rs", 1, "the diagnostic terms, summed on the device, read once per epoch"),
    (
        "model/scripted.rs",
        2,
        "try_into_primitive unwraps a batch's libtorch tensor where it is: no read; weights and summed \
         gradients come to the host once per epoch or score (`host`)",
    ),
    (
        "mitigate/group_dro.rs",
        2,
        "group losses per batch on the CPU only (no wait there; on CUDA q is updated on the device); q on request",
    ),
];

/// Tensors made from host values.
const UPLOADS: &[&str] = &["from_data(", "from_floats(", "from_ints(", "from_bool("];

/// Uploads per file, and why none makes a CUDA batch wait.
const UPLOADS_ALLOWED: &[(&str, usize, &str)] = &[
    ("data/batch.rs", 2, "images and labels on the CPU; CUDA takes device::upload_floats / upload_ints"),
    ("neurons/weights.rs", 1, "the changed layers of an intervention, once per intervention"),
    ("mitigate/prune.rs", 1, "the pruning masks, once per mask"),
    (
        "mitigate/group_dro.rs",
        2,
        "q per batch on the CPU only; on CUDA q and the adjustments move there once",
    ),
];

/// The engine's files outside `device`, as (path below crates/memscope-core/src, code).
fn engine() -> Vec<(String, String)> {
    let src = Path::new(ROOT).join("crates/memscope-core/src");
    common::rust_sources(&src)
        .into_iter()
        .map(|file| {
            (file.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/"), common::rust_code(&file))
        })
        .filter(|(name, _)| name != "device.rs" && !name.starts_with("device/"))
        .collect()
}

/// Where `pattern` occurs in `code` as a name of its own (`tch::` but not `batch::`,
/// `to_data(` but not `into_data(`).
fn occurrences(code: &str, pattern: &str) -> usize {
    let is_name = |c: char| c.is_alphanumeric() || c == '_';
    code.match_indices(pattern)
        .filter(|(at, _)| !pattern.starts_with(is_name) || !code[..*at].ends_with(is_name))
        .count()
}

fn count(code: &str, patterns: &[&str]) -> usize {
    patterns.iter().map(|p| occurrences(code, p)).sum()
}

#[test]
fn only_the_device_module_chooses_a_device() {
    let mut wrong = Vec::new();
    for (name, code) in engine() {
        for choice in DEVICE_CHOICES {
            let allowed = CHOICES_ALLOWED.iter().any(|(file, what, _)| *file == name && what == choice);
            if occurrences(&code, choice) > 0 && !allowed {
                wrong.push(format!("{name}: {choice}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "devices chosen outside crates/memscope-core/src/device* (take the session's device, \
         or add the case to CHOICES_ALLOWED with its reason):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn host_reads_and_uploads_are_the_listed_ones() {
    let engine = engine();
    let mut wrong = Vec::new();
    for (what, patterns, allowed) in
        [("host reads", READS, READS_ALLOWED), ("uploads from the host", UPLOADS, UPLOADS_ALLOWED)]
    {
        for (name, code) in &engine {
            let found = count(code, patterns);
            let listed = allowed.iter().find(|(file, ..)| file == name).map_or(0, |(_, n, _)| *n);
            if found != listed {
                wrong.push(format!("{name}: {found} {what}, {listed} listed"));
            }
        }
        for (file, _, _) in allowed {
            assert!(engine.iter().any(|(name, _)| name == file), "{file} is listed but not in the engine");
        }
    }
    assert!(
        wrong.is_empty(),
        "tensors read to or made from the host outside the list in tests/device_placement.rs \
         (keep per-batch values on the device; list a new one with why it is not per batch):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_scanner_sees_what_it_looks_for() {
    let code = "let d = Device::default();\nlet x = t.into_data(); // into_scalar\nTensor::from_data(v, &d)";
    assert_eq!(occurrences(code, DEVICE_CHOICES[1]), 1);
    assert_eq!(occurrences("batch::images(); tch::Tensor", "tch::"), 1);
    let without: String = code.lines().map(|l| l.split("//").next().unwrap()).collect::<Vec<_>>().join("\n");
    assert_eq!(count(&without, READS), 1);
    assert_eq!(count(&without, UPLOADS), 1);
}
