//! Hostile inputs the engine must refuse with a one-line error (naming the file, tensor or
//! value), a non-zero exit, no panic, no hang, and nothing changed on disk.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

mod common;

use common::{DEMO, demo_copy};
const BIN: &str = env!("CARGO_BIN_EXE_memscope");

/// Every file under `dir` with its bytes, sorted.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect();
    files.sort();
    files
}

/// Runs memscope (killed after 60 s: a hang fails the test); returns (success, stdout, stderr).
fn run(args: &[&str]) -> (bool, String, String) {
    let mut child = Command::new("timeout")
        .arg("60")
        .arg(BIN)
        .args(args)
        .env_remove("MEMSCOPE_DEMO")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let _ = &mut child;
    let out = child.wait_with_output().unwrap();
    assert_ne!(out.status.code(), Some(124), "{args:?} hung");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Runs memscope expecting one line of error; returns it.
fn fails(args: &[&str]) -> String {
    let (ok, _, stderr) = run(args);
    assert!(!ok, "{args:?} succeeded");
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "not one line: {stderr}");
    assert!(stderr.starts_with("memscope: error: "), "{stderr}");
    stderr
}

/// Rewrites the checkpoint of `epoch` with `edit` applied to each (name, f32 values), stored
/// as `dtype`, and records its new sha256 in experiment.ron.
fn rewrite_checkpoint(exp: &Path, epoch: usize, dtype: Dtype, edit: impl Fn(&str, &mut Vec<f32>)) {
    let path = exp.join(format!("epoch-{epoch:03}.safetensors"));
    let bytes = std::fs::read(&path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in file.iter() {
        if view.dtype() != Dtype::F32 {
            tensors.push((name.into(), view.dtype(), view.shape().to_vec(), view.data().to_vec()));
            continue;
        }
        let mut values: Vec<f32> =
            view.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        edit(name, &mut values);
        let data: Vec<u8> = match dtype {
            Dtype::F64 => values.iter().flat_map(|&v| f64::from(v).to_le_bytes()).collect(),
            Dtype::F16 => values.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect(),
            _ => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        };
        tensors.push((name.into(), dtype, view.shape().to_vec(), data));
    }
    let views: Vec<(String, TensorView)> =
        tensors.iter().map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap())).collect();
    let new = safetensors::serialize(views, None).unwrap();
    std::fs::write(&path, &new).unwrap();
    let manifest = exp.join("experiment.ron");
    let old_sha = memscope_core::experiment::checkpoint::sha256_hex(&bytes);
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(text.contains(&old_sha));
    let new_sha = memscope_core::experiment::checkpoint::sha256_hex(&new);
    std::fs::write(&manifest, text.replace(&old_sha, &new_sha)).unwrap();
}

fn info_json(exp: &Path) -> serde_json::Value {
    let (ok, stdout, stderr) = run(&["info", "--experiment", exp.to_str().unwrap(), "--format", "json"]);
    assert!(ok, "{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

#[test]
fn float64_and_float16_checkpoints_are_read_as_float32() {
    let reference = info_json(Path::new(DEMO));
    let (_tmp, exp) = demo_copy();
    rewrite_checkpoint(&exp, 40, Dtype::F64, |_, _| {});
    // float64 holds every float32 exactly: the same counts.
    assert_eq!(info_json(&exp)["accuracy"], reference["accuracy"]);
    rewrite_checkpoint(&exp, 40, Dtype::F16, |_, _| {});
    let half = info_json(&exp);
    assert_eq!(half["accuracy"]["groups"].as_array().unwrap().len(), 4);
}

#[test]
fn non_finite_weights_and_negative_variances_are_refused_by_name() {
    let (_tmp, exp) = demo_copy();
    rewrite_checkpoint(&exp, 40, Dtype::F32, |name, v| {
        if name == "stage2.block0.conv1.weight" {
            v[7] = f32::NAN;
        }
    });
    let before = snapshot(&exp);
    let err = fails(&["info", "--experiment", exp.to_str().unwrap()]);
    assert!(err.contains("'stage2.block0.conv1.weight' holds a non-finite value"), "{err}");
    assert_eq!(snapshot(&exp), before);

    let (_tmp, exp) = demo_copy();
    rewrite_checkpoint(&exp, 40, Dtype::F32, |name, v| {
        if name == "stem.bn.running_var" {
            v[0] = -1.0;
        }
    });
    let err = fails(&["info", "--experiment", exp.to_str().unwrap()]);
    assert!(err.contains("'stem.bn.running_var' holds a negative BatchNorm running variance"), "{err}");
}

#[test]
fn a_shape_mismatch_names_both_shapes_in_pytorch_layout() {
    let (_tmp, exp) = demo_copy();
    // head.weight stored transposed: [64, 2] where PyTorch (and the file format) needs [2, 64].
    let path = exp.join("epoch-040.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let tensors: Vec<(String, TensorView)> = file
        .iter()
        .map(|(n, v)| {
            let shape = if n == "head.weight" { vec![64, 2] } else { v.shape().to_vec() };
            (n.to_string(), TensorView::new(v.dtype(), shape, v.data()).unwrap())
        })
        .collect();
    let new = safetensors::serialize(tensors, None).unwrap();
    std::fs::write(&path, &new).unwrap();
    let manifest = exp.join("experiment.ron");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let text = text.replace(
        &memscope_core::experiment::checkpoint::sha256_hex(&bytes),
        &memscope_core::experiment::checkpoint::sha256_hex(&new),
    );
    std::fs::write(&manifest, text).unwrap();
    let err = fails(&["info", "--experiment", exp.to_str().unwrap()]);
    assert!(err.contains("shapes differ: 'head.weight' [2, 64] expected, [64, 2] found"), "{err}");
}

#[test]
fn impossible_manifests_are_refused() {
    let cases: [(&str, &str, &str); 3] = [
        ("epoch: 40,", "epoch: 39,", "epoch 39 is listed twice"),
        ("epoch: 40,", "epoch: 18446744073709551615,", "epoch 18446744073709551615 is out of range"),
        (
            "\"epoch-040.safetensors\"",
            "\"../outside/epoch-040.safetensors\"",
            "must be a file name inside the experiment folder",
        ),
    ];
    for (from, to, expected) in cases {
        let (_tmp, exp) = demo_copy();
        let path = exp.join("experiment.ron");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{from}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
        let before = snapshot(&exp);
        let err = fails(&["info", "--experiment", exp.to_str().unwrap()]);
        assert!(err.contains(expected), "{err}");
        assert_eq!(snapshot(&exp), before);
    }
}

#[test]
fn pipes_devices_and_plain_files_are_never_read_as_experiments() {
    // A named pipe as experiment.ron: refused at once, not a hang.
    let (_tmp, exp) = demo_copy();
    let manifest = exp.join("experiment.ron");
    std::fs::remove_file(&manifest).unwrap();
    let status = Command::new("mkfifo").arg(&manifest).status().unwrap();
    assert!(status.success());
    let err = fails(&["info", "--experiment", exp.to_str().unwrap()]);
    assert!(err.contains("not a regular file"), "{err}");

    // A checkpoint that links to /dev/zero.
    let (_tmp, exp) = demo_copy();
    let ckpt = exp.join("epoch-040.safetensors");
    std::fs::remove_file(&ckpt).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &ckpt).unwrap();
    let err = fails(&["info", "--experiment", exp.to_str().unwrap()]);
    assert!(err.contains("epoch-040.safetensors is not a regular file"), "{err}");

    // A sparse 2 GB checkpoint is refused by its size before it is read.
    let (_tmp, exp) = demo_copy();
    let ckpt = exp.join("epoch-040.safetensors");
    std::fs::OpenOptions::new().write(true).open(&ckpt).unwrap().set_len(2 << 30).unwrap();
    let started = std::time::Instant::now();
    let err = fails(&["info", "--experiment", exp.to_str().unwrap()]);
    assert!(err.contains("bytes, more than the"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));

    // --experiment naming a file.
    let err = fails(&["info", "--experiment", manifest_of_demo().to_str().unwrap()]);
    assert!(err.contains("is a file, not an experiment folder"), "{err}");
}

#[test]
fn symbolic_link_loops_are_said_to_be_loops() {
    // experiment.ron -> loop -> experiment.ron: there is a manifest, it cannot be reached.
    let (_tmp, exp) = demo_copy();
    let manifest = exp.join("experiment.ron");
    std::fs::remove_file(&manifest).unwrap();
    std::os::unix::fs::symlink("loop", &manifest).unwrap();
    std::os::unix::fs::symlink("experiment.ron", exp.join("loop")).unwrap();
    let err = fails(&["info", "--experiment", exp.to_str().unwrap()]);
    let want = format!("experiment file {} is a symbolic link loop", manifest.display());
    assert!(err.contains(&want) && !err.contains("not an experiment folder"), "{err}");

    // A checkpoint that is one says the same.
    let (_tmp, exp) = demo_copy();
    let ckpt = exp.join("epoch-040.safetensors");
    std::fs::remove_file(&ckpt).unwrap();
    std::os::unix::fs::symlink("epoch-040.safetensors", &ckpt).unwrap();
    let err = fails(&["info", "--experiment", exp.to_str().unwrap()]);
    assert!(err.contains(&format!("checkpoint {} is a symbolic link loop", ckpt.display())), "{err}");

    // --experiment naming a link to itself.
    let looped = _tmp.path().join("looped");
    std::os::unix::fs::symlink("looped", &looped).unwrap();
    let err = fails(&["info", "--experiment", looped.to_str().unwrap()]);
    assert!(
        err.contains(&format!("experiment folder {} is a symbolic link loop", looped.display())),
        "{err}"
    );

    // A folder with no experiment.ron at all is still not an experiment folder.
    let (_tmp, exp) = demo_copy();
    std::fs::remove_file(exp.join("experiment.ron")).unwrap();
    let err = fails(&["info", "--experiment", exp.to_str().unwrap()]);
    assert!(err.contains("has no experiment.ron: it is not an experiment folder"), "{err}");
}

fn manifest_of_demo() -> PathBuf {
    Path::new(DEMO).join("experiment.ron")
}

#[test]
fn plans_asking_for_more_data_than_exists_are_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    for (plan, expected) in [
        (
            "(dataset: SpuriousDigits((eval_per_group: 100000000000)))",
            "eval_per_group 100000000000 is out of range",
        ),
        (
            "(dataset: SpuriousDigits((train_groups: (1, 1, 1, 900000000))))",
            "train_groups[3] = 900000000 is out of range",
        ),
        ("(dataset: SpuriousDigits((train_groups: (900000, 900000, 1, 1), image_size: 128)))", "would take"),
    ] {
        let path = dir.path().join("plan.ron");
        std::fs::write(&path, format!("TrainPlan{plan}")).unwrap();
        let out = dir.path().join("exp");
        let err = fails(&["train", "--config", path.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert!(err.contains(expected), "{err}");
        assert!(!out.exists());
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }
}

/// Starts `memscope train` on a tiny plan into `out`, many epochs (it runs until stopped).
fn start_training(dir: &Path, out: &Path, epochs: usize) -> std::process::Child {
    let plan = dir.join("tiny.ron");
    std::fs::write(
        &plan,
        "TrainPlan(dataset: SpuriousDigits((train_groups: (60, 8, 4, 28), eval_per_group: 8)), training: (batch_size: 50))",
    )
    .unwrap();
    Command::new(BIN)
        .args(["train", "--config", plan.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .args(["--epochs", &epochs.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for(path: &Path) {
    let started = std::time::Instant::now();
    while !path.exists() {
        assert!(started.elapsed() < Duration::from_secs(60), "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    names.sort();
    names
}

#[test]
fn an_interrupted_or_concurrent_train_leaves_nothing_behind_and_mixes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("exp");
    let partial = dir.path().join(".exp.partial");

    // A second run into the same folder is refused, naming the first; Ctrl-C (SIGINT) then
    // stops the first and removes its staging folder and lock.
    let mut first = start_training(dir.path(), &out, 1000);
    wait_for(&partial.join("epoch-001.safetensors"));
    let err = fails(&["train", "--out", out.to_str().unwrap(), "--epochs", "1"]);
    assert!(err.contains("is being written by another memscope (process"), "{err}");
    assert!(err.contains(&first.id().to_string()), "{err}");
    Command::new("kill").args(["-INT", &first.id().to_string()]).status().unwrap();
    let status = first.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(names(dir.path()), vec!["tiny.ron".to_string()]);

    // SIGKILL leaves a stale lock and staging folder: the next run takes both over.
    let mut killed = start_training(dir.path(), &out, 1000);
    wait_for(&partial.join("epoch-001.safetensors"));
    killed.kill().unwrap();
    killed.wait().unwrap();
    assert!(dir.path().join(".exp.lock").exists());
    let mut again = start_training(dir.path(), &out, 2);
    assert!(again.wait().unwrap().success());
    assert_eq!(names(dir.path()), vec!["exp".to_string(), "tiny.ron".to_string()]);
    let exp = memscope_core::experiment::Experiment::open(&out).unwrap();
    assert_eq!(exp.epochs().collect::<Vec<_>>(), vec![0, 1, 2]);
    for epoch in 0..=2 {
        let bytes = std::fs::read(exp.checkpoint_path(epoch).unwrap()).unwrap();
        assert_eq!(
            memscope_core::experiment::checkpoint::sha256_hex(&bytes),
            exp.checkpoint(epoch).unwrap().sha256
        );
    }
}

/// A 1 MB tmpfs (needs root, as CI has: without it the test fails, unless
/// `MEMSCOPE_ALLOW_SKIP=1`).
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount() -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs", dir.path().to_str().unwrap()])
            .output();
        let mounted = match out {
            Ok(o) if o.status.success() => Ok(SmallDisk(dir)),
            Ok(o) => Err(format!("mount -t tmpfs failed: {}", String::from_utf8_lossy(&o.stderr).trim())),
            Err(e) => Err(format!("mount does not run: {e}")),
        };
        common::requires("root (to mount a 1 MB tmpfs)", mounted)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn a_full_disk_fails_with_one_line_and_leaves_the_disk_as_it_was() {
    let Some(disk) = SmallDisk::mount() else { return };
    let root = disk.0.path();
    // Training: each checkpoint is about 310 kB, so the fourth does not fit.
    let work = tempfile::tempdir().unwrap();
    let out = root.join("exp");
    let mut child = start_training(work.path(), &out, 10);
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    let last = stderr.trim_end().lines().last().unwrap_or_default();
    assert!(last.starts_with("memscope: error: ") && last.contains("No space left"), "{stderr}");
    assert!(names(root).is_empty(), "left on the disk: {:?}", names(root));

    // Export: the same, and nothing half-written in --out.
    let target = root.join("export");
    let err = fails(&["export", "--all", "--out", target.to_str().unwrap()]);
    assert!(err.contains("No space left"), "{err}");
    assert!(names(&target).is_empty(), "{:?}", names(&target));
}

#[test]
fn out_never_replaces_an_experiments_files_devices_or_links() {
    let (_tmp, exp) = demo_copy();
    let before = snapshot(&exp);
    for file in ["experiment.ron", "epoch-040.safetensors"] {
        let target = exp.join(file);
        let err = fails(&["info", "--experiment", exp.to_str().unwrap(), "--out", target.to_str().unwrap()]);
        assert!(err.contains("would replace a file of the experiment"), "{err}");
    }
    assert_eq!(snapshot(&exp), before);

    // A device is written into (and stays a device); a link stays a link.
    let (ok, _, stderr) = run(&["info", "--out", "/dev/null"]);
    assert!(ok, "{stderr}");
    assert!(!std::fs::metadata("/dev/null").unwrap().is_file());
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.json");
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let (ok, _, stderr) = run(&["info", "--format", "json", "--out", link.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    let written: serde_json::Value = serde_json::from_slice(&std::fs::read(&real).unwrap()).unwrap();
    assert_eq!(written["name"], "spurious-digits");
    // A folder as --out: one line naming the user's path, no hidden temporary file.
    let err = fails(&["info", "--out", dir.path().to_str().unwrap()]);
    assert!(err.contains(&format!("cannot write {}: it is a folder", dir.path().display())), "{err}");
    assert!(!err.contains(".memscope-"), "{err}");
}

#[test]
fn junk_experiment_files_give_short_messages() {
    for size in [20 << 20, 1 << 20] {
        let (_tmp, exp) = demo_copy();
        std::fs::write(exp.join("experiment.ron"), "z".repeat(size)).unwrap();
        let err = fails(&["info", "--experiment", exp.to_str().unwrap()]);
        assert!(err.len() < 600, "{} bytes: {err:.300}", err.len());
    }
}

#[test]
fn ctrl_c_during_export_leaves_no_file_in_out() {
    // Signalled while its staging folder exists: nothing may remain. (A run that finished
    // before the signal proves nothing, so it is tried again.)
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("export");
        let mut child = Command::new(BIN)
            .args(["export", "--all", "--splits", "train,val,test", "--out", out.to_str().unwrap()])
            .env_remove("MEMSCOPE_DEMO")
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        let staged = loop {
            let staging = std::fs::read_dir(&out).ok().and_then(|mut d| {
                d.find(|e| {
                    e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().starts_with(".memscope-"))
                })
            });
            if staging.is_some() {
                break true;
            }
            if child.try_wait().unwrap().is_some() || started.elapsed() > Duration::from_secs(30) {
                break false;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        if !staged {
            continue;
        }
        Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
        let status = child.wait().unwrap();
        if status.success() {
            continue; // finished first
        }
        assert_eq!(status.code(), Some(130));
        // Nothing, or (when the signal came while the finished files were being moved in,
        // which the handler waits for) the whole export; never a part or a staging folder.
        let left = names(&out);
        let whole = left.contains(&"export.json".to_string()) && !left.iter().any(|n| n.starts_with('.'));
        assert!(left.is_empty() || whole, "left in --out: {left:?}");
        return;
    }
    panic!("the export always finished before it could be interrupted");
}

#[test]
fn train_never_writes_over_a_file_a_device_or_a_link() {
    let (_tmp, exp) = demo_copy();
    let before = snapshot(&exp);
    let manifest = exp.join("experiment.ron");
    let err = fails(&["train", "--epochs", "1", "--out", manifest.to_str().unwrap()]);
    assert!(err.contains("exists and is not a folder"), "{err}");
    assert_eq!(snapshot(&exp), before);
    let err = fails(&["train", "--epochs", "1", "--out", "/dev/null"]);
    assert!(err.contains("/dev/null exists and is not a folder"), "{err}");
    assert!(!std::fs::metadata("/dev/null").unwrap().is_file());
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&exp, &link).unwrap();
    let err = fails(&["train", "--epochs", "1", "--force", "--out", link.to_str().unwrap()]);
    assert!(err.contains("is a symbolic link; pass the folder it points to"), "{err}");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(snapshot(&exp), before);
}
