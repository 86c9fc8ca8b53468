//! A torch-free round trip through memscope's own formats: the demo's digits exported as a
//! Waterbirds folder of JPEGs (`memscope export --format waterbirds`), its checkpoints as
//! PyTorch-named safetensors (`memscope export --all`), then `memscope import` of both, the
//! architecture told by the tensor names. The imported experiment's per-group correct counts,
//! at every epoch and after zero-outs, must equal those of the demo's own checkpoints
//! evaluated on the same folder: one side loads memscope's checkpoints natively, the other
//! reads exported files through detection and import.

mod common;

use std::path::{Path, PathBuf};

use common::{DEMO, demo_copy, memscope, succeeds};
use memscope_core::data::folder::{FolderSpec, Layout, Transform};
use memscope_core::data::{DatasetSpec, GroupedDataset, OpenOptions, Split};
use memscope_core::device::DeviceSpec;
use memscope_core::eval::{evaluate, logits};
use memscope_core::experiment::Experiment;
use memscope_core::jobs::Silent;
use serde_json::Value;

/// The side the demo model sees: Waterbirds' evaluation transform at 24 resizes to
/// int(24 * 256 / 224) = 27 and centre-crops 24.
const SIDE: &str = "24";
/// The side of the folder's images: 27, which that resize leaves as it is.
const EXPORTED: &str = "27";

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Correct predictions per group of `experiment` at `epoch` on `split`.
fn correct(experiment: &Experiment, dataset: &GroupedDataset, epoch: usize, split: Split) -> Vec<usize> {
    let device = DeviceSpec::Cpu.device().unwrap();
    let network = experiment.load_network(epoch, &device).unwrap();
    evaluate(&network, dataset, split, &device, &mut Silent)
        .unwrap()
        .groups
        .iter()
        .map(|g| g.correct)
        .collect()
}

fn opened(experiment: &Experiment) -> GroupedDataset {
    experiment.manifest.dataset.open(&experiment.dir, &OpenOptions::default()).unwrap()
}

/// A copy of the demo whose data set is the Waterbirds folder at `folder` (absolute), read at
/// the demo model's side, as `memscope import --data waterbirds:FOLDER --image-size 24` records it.
fn demo_on_folder(folder: &Path) -> (tempfile::TempDir, Experiment) {
    let (tmp, dir) = demo_copy();
    let mut experiment = Experiment::open(&dir).unwrap();
    experiment.manifest.dataset = DatasetSpec::Folder(FolderSpec {
        layout: Layout::Waterbirds,
        path: folder.to_path_buf(),
        transform: Transform::waterbirds(24),
    });
    experiment.save().unwrap();
    (tmp, Experiment::open(&dir).unwrap())
}

/// The demo exported both ways into `tmp` and imported: (the image folder, the imported
/// experiment, what import said on stderr).
fn export_and_import(tmp: &Path) -> (PathBuf, PathBuf, String) {
    let (folder, files, imported) = (tmp.join("wb"), tmp.join("files"), tmp.join("imported"));
    succeeds(&["export", "--format", "waterbirds", "--size", EXPORTED, "--out", s(&folder)]);
    succeeds(&["export", "--all", "--out", s(&files)]);
    let data = format!("waterbirds:{}", folder.display());
    let out = memscope()
        .args(["import", "--checkpoints", s(&files), "--data", &data, "--image-size", SIDE])
        .args(["--evaluate", "val", "--out", s(&imported)])
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "import failed: {stderr}");
    (folder, imported, stderr)
}

/// `memscope intervene` zeroing the top `k` filters of `layer` at `epoch`, by `criterion`:
/// (the filters chosen, the correct counts per group on val after the zero-out).
fn zero_out(experiment: &Path, epoch: &str, criterion: &str, layer: &str) -> (Vec<u64>, Vec<usize>) {
    let args = ["intervene", "--experiment", s(experiment), "--epoch", epoch, "--criterion", criterion];
    let out = succeeds(
        &[&args[..], &["--within", layer, "-k", "3", "--kind", "zero", "--format", "json"]].concat(),
    );
    let json: Value = serde_json::from_str(&out).unwrap();
    let filters =
        json["neurons"].as_array().unwrap().iter().map(|n| n["id"]["index"].as_u64().unwrap()).collect();
    // One deterministic run: after = correct / examples.
    (filters, common::correct_after(&json))
}

#[test]
fn the_demo_exported_then_imported_gives_the_demos_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let (folder, imported_dir, said) = export_and_import(tmp.path());
    let imported = Experiment::open(&imported_dir).unwrap();
    let (_native_tmp, native) = demo_on_folder(&std::path::absolute(folder).unwrap());

    // Told from the names alone: the demo's architecture, on the folder at the demo's side.
    let demo = Experiment::open(Path::new(DEMO)).unwrap();
    assert_eq!(imported.manifest.model, demo.manifest.model);
    assert_eq!(imported.manifest.dataset, native.manifest.dataset);
    let architecture = "memscope's small ResNet: 3 input channels, stem 16, stages of 16/32/64 channels \
                        with 1/1/1 blocks, 2 classes";
    assert!(said.contains(architecture), "{said}");
    assert!(said.contains("imported 41 checkpoints (epochs 0..=40)"), "{said}");

    // Every epoch: what `import --evaluate val` measured on the imported files and recorded
    // (100 examples a group), against the demo's own checkpoints.
    let native_data = opened(&native);
    let mut seen = std::collections::BTreeSet::new();
    for (entry, epoch) in imported.manifest.checkpoints.iter().zip(0..) {
        assert_eq!(entry.epoch, epoch);
        let recorded: Vec<usize> =
            entry.val_accuracy.iter().map(|a| (a.unwrap() * 100.0).round() as usize).collect();
        let want = correct(&native, &native_data, epoch, Split::Val);
        assert_eq!(recorded, want, "epoch {epoch}");
        seen.insert(want);
    }
    assert!(seen.len() >= 8, "the counts change over training: {seen:?}");

    // Opened again (the files read back and checked by sha256), on its own copy of the data:
    // the same logits to the bit, on val and test, so the same counts.
    let imported_data = opened(&imported);
    let device = DeviceSpec::Cpu.device().unwrap();
    for epoch in [1, 5, 40] {
        let a = imported.load_network(epoch, &device).unwrap();
        let b = native.load_network(epoch, &device).unwrap();
        for split in [Split::Val, Split::Test] {
            let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
            let got = bits(logits(&a, &imported_data, split, &device, &mut Silent).unwrap());
            assert_eq!(
                got,
                bits(logits(&b, &native_data, split, &device, &mut Silent).unwrap()),
                "epoch {epoch} {split}"
            );
            let (x, y) = (imported_data.split(split), native_data.split(split));
            assert_eq!((&x.labels, &x.groups), (&y.labels, &y.groups), "{split}");
        }
    }

    // Zero-outs by magnitude and by a group's gradient choose the same filters and give the
    // same counts, which differ from the counts before.
    for (criterion, layer) in [("magnitude", "stage2.block0.conv2"), ("gradient", "stage3.block0.conv1")] {
        let want = zero_out(&native.dir, "5", criterion, layer);
        assert_eq!(zero_out(&imported.dir, "5", criterion, layer), want, "{criterion}");
        assert_ne!(
            want.1,
            correct(&native, &native_data, 5, Split::Val),
            "{criterion}: no prediction changed"
        );
    }
}
