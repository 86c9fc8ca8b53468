//! The real `memscope` binary against the bundled demo and against broken inputs.

use std::path::Path;

use memscope_core::data::{Split, batch};
use memscope_core::device::DeviceSpec;
use memscope_core::experiment::{Experiment, checkpoint};
use memscope_core::model::{ModelConfig, SmallResNetConfig};
use serde_json::Value;

mod common;

use common::{DEMO, demo_copy, fails, memscope};

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn info_json_matches_an_independent_count_of_predictions() {
    let out =
        memscope().args(["info", "--format", "json", "--split", "test", "--epoch", "40"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();

    assert_eq!(json["epoch"], 40);
    assert_eq!(json["epochs"].as_array().unwrap().len(), 41);
    let layers = json["layers"].as_array().unwrap();
    assert!(layers.iter().any(|l| l["name"] == "stage2.block0.conv1" && l["neurons"] == 32));
    for l in layers {
        for key in ["name", "kind", "shape", "neurons", "shortcut", "head"] {
            assert!(!l[key].is_null(), "layer lacks {key}");
        }
    }
    let groups = json["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 4);
    let acc = &json["accuracy"];
    assert_eq!(acc["split"], "test");

    // Independently: one forward pass over the whole test split, arg-max by tensor op,
    // per-group counts by hand.
    let device = DeviceSpec::Cpu.device().unwrap();
    let exp = Experiment::open(Path::new(DEMO)).unwrap();
    let data = exp.manifest.dataset.load().unwrap();
    let model = exp.load_network(40, &device).unwrap();
    let test = data.split(Split::Test);
    let all: Vec<usize> = (0..test.len()).collect();
    let x = batch::images(&data, Split::Test, &all, &device).unwrap();
    let preds: Vec<i64> = model
        .forward(x, memscope_core::model::Mode::Eval)
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .try_to_vec()
        .unwrap();
    let train_counts = data.train.group_counts(4);
    let train_total: usize = train_counts.iter().sum();
    let mut worst = f64::INFINITY;
    let mut mean = 0.0;
    for g in 0..4 {
        let idx: Vec<usize> = (0..test.len()).filter(|&i| test.groups[i] == g).collect();
        let correct = idx.iter().filter(|&&i| preds[i] as usize == test.labels[i]).count();
        let a = correct as f64 / idx.len() as f64;
        let row = &acc["groups"][g];
        assert_eq!(row["examples"], idx.len());
        assert_eq!(row["correct"], correct);
        assert!((row["accuracy"].as_f64().unwrap() - a).abs() < 1e-12);
        assert_eq!(groups[g]["train"], train_counts[g]);
        worst = worst.min(a);
        mean += a * train_counts[g] as f64 / train_total as f64;
    }
    assert!((acc["worst_group_accuracy"].as_f64().unwrap() - worst).abs() < 1e-12);
    assert!((acc["mean_accuracy_train_weighted"].as_f64().unwrap() - mean).abs() < 1e-12);
}

#[test]
fn info_finds_the_demo_from_any_directory() {
    let elsewhere = tempfile::tempdir().unwrap();
    let out = memscope().current_dir(elsewhere.path()).args(["info", "--format", "csv"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("epoch,split,group,name,examples,correct,accuracy\n"), "{text}");
    assert_eq!(text.lines().count(), 5);
}

#[test]
fn bad_arguments_give_one_line_errors() {
    assert!(fails(&["info", "--epoch", "99"]).contains("epoch 99 is not in"));
    assert!(fails(&["info", "--epoch", "99"]).contains("valid: 0..=40"));
    assert!(fails(&["info", "--split", "dev"]).contains("unknown split 'dev' (valid: train, val, test)"));
    assert!(fails(&["info", "--device", "tpu"]).contains("unknown device 'tpu'"));
    assert!(fails(&["info", "--device", "cuda:0"]).contains("cuda:0 is not available"));
    assert!(fails(&["info", "--format", "xml"]).contains("unknown format 'xml'"));
    assert!(fails(&["info", "--experiment", "/no/such/folder"]).contains("/no/such/folder does not exist"));
}

#[test]
fn broken_experiment_files_give_one_line_errors_and_change_nothing() {
    // A typo in a field name and an unknown field: reported with the file and position.
    for (from, to) in [("training:", "trainig:"), ("checkpoints:", "colour: 3,\n    checkpoints:")] {
        let (_tmp, exp) = demo_copy();
        let path = exp.join("experiment.ron");
        let text = std::fs::read_to_string(&path).unwrap().replacen(from, to, 1);
        std::fs::write(&path, &text).unwrap();
        let before = snapshot(&exp);
        let err = fails(&["info", "--experiment", exp.to_str().unwrap()]);
        assert!(err.contains("experiment.ron:") && err.contains("Unexpected field"), "{err}");
        assert_eq!(snapshot(&exp), before);
    }

    // A corrupt checkpoint.
    let (_tmp, exp) = demo_copy();
    let ckpt = exp.join("epoch-040.safetensors");
    let mut bytes = std::fs::read(&ckpt).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&ckpt, &bytes).unwrap();
    let before = snapshot(&exp);
    let err = fails(&["info", "--experiment", exp.to_str().unwrap()]);
    assert!(err.contains("epoch-040.safetensors is corrupt"), "{err}");
    assert_eq!(snapshot(&exp), before);

    // A missing checkpoint.
    std::fs::remove_file(&ckpt).unwrap();
    let err = fails(&["info", "--experiment", exp.to_str().unwrap()]);
    assert!(err.contains("cannot read checkpoint") && err.contains("epoch-040.safetensors"), "{err}");

    // A checkpoint of another architecture whose hash the manifest was updated to.
    let device = DeviceSpec::Cpu.device().unwrap();
    let other =
        ModelConfig::SmallResNet(SmallResNetConfig { stage_channels: [16, 32, 48], ..Default::default() });
    let sha = checkpoint::save(&other.init(&device).unwrap(), &ckpt).unwrap();
    let manifest = Experiment::open(&exp).unwrap();
    let old_sha = &manifest.manifest.checkpoints[40].sha256;
    let path = exp.join("experiment.ron");
    let text = std::fs::read_to_string(&path).unwrap().replace(old_sha.as_str(), &sha);
    std::fs::write(&path, text).unwrap();
    let err = fails(&["info", "--experiment", exp.to_str().unwrap()]);
    assert!(err.contains("does not fit the model") && err.contains("stage3"), "{err}");
}

#[test]
fn train_never_overwrites_an_experiment_unless_forced() {
    let (_tmp, exp) = demo_copy();
    let before = snapshot(&exp);
    let err = fails(&["train", "--out", exp.to_str().unwrap(), "--epochs", "1"]);
    assert!(err.contains("already exists; pass --force"), "{err}");
    assert_eq!(snapshot(&exp), before);

    let err = fails(&["train", "--out", exp.to_str().unwrap(), "--epochs", "0"]);
    assert!(err.contains("epochs 0 out of range"), "{err}");

    // A bad training config names its file and the offending field.
    let config = exp.parent().unwrap().join("plan.ron");
    std::fs::write(&config, "TrainPlan(training: (epoch: 3))").unwrap();
    let out = exp.parent().unwrap().join("new");
    let err = fails(&["train", "--config", config.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(err.contains("plan.ron:") && err.contains("epoch"), "{err}");
    assert!(!out.exists());
}

#[test]
fn without_a_terminal_the_explorer_says_what_to_run_instead() {
    for args in [vec![], vec!["explore"]] {
        let err = fails(&args);
        assert!(err.contains("needs a terminal") && err.contains("memscope intervene"), "{err}");
    }
}

fn json(args: &[&str]) -> Value {
    let out = memscope().args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn intervene_json_records_its_settings_and_agrees_with_info() {
    let r = json(&[
        "intervene",
        "--kind",
        "noise",
        "-k",
        "2",
        "--repeats",
        "3",
        "--seed",
        "5",
        "--format",
        "json",
    ]);
    let spec = &r["spec"];
    assert_eq!(spec["seed"], 5);
    assert_eq!(spec["repeats"], 3);
    assert_eq!(spec["epoch"], 40);
    assert_eq!(spec["intervention"]["noise"]["sigma"], 0.01);
    assert_eq!(spec["selection"]["top-k"], 2);
    // Default criterion: gradient of the smallest training group (G2) on train, authors' sampling.
    assert_eq!(spec["criterion"]["gradient"]["group"], 2);
    assert_eq!(spec["criterion"]["gradient"]["split"], "train");
    assert_eq!(r["neurons"].as_array().unwrap().len(), 2);
    assert_eq!(r["runs"], 3);
    assert_eq!(r["run_accuracy"].as_array().unwrap().len(), 3);

    // "before" is the unchanged model: the same numbers `info` reports.
    let info = json(&["info", "--format", "json"]);
    for g in 0..4 {
        assert_eq!(r["groups"][g]["before"], info["accuracy"]["groups"][g]["accuracy"]);
        let runs: Vec<f64> = (0..3).map(|i| r["run_accuracy"][i][g].as_f64().unwrap()).collect();
        let mean = runs.iter().sum::<f64>() / 3.0;
        assert!((r["groups"][g]["after"].as_f64().unwrap() - mean).abs() < 1e-12);
    }
    // The same command gives the same answer.
    let again = json(&[
        "intervene",
        "--kind",
        "noise",
        "-k",
        "2",
        "--repeats",
        "3",
        "--seed",
        "5",
        "--format",
        "json",
    ]);
    assert_eq!(again, r);
}

#[test]
fn the_activation_cache_changes_speed_not_results() {
    // A layer after a cached boundary (resumes there) and the sensitivity study (every layer).
    for args in [
        vec!["intervene", "--within", "stage3.block0.conv1", "--kind", "noise", "--repeats", "3"],
        vec!["sensitivity", "--epochs-back", "5,20"],
    ] {
        let with = |mb: &str| json(&[args.clone(), vec!["--cache-mb", mb, "--format", "json"]].concat());
        let (cached, uncached) = (with("256"), with("0"));
        assert_eq!(cached, uncached, "{args:?}");
    }
    assert!(fails(&["intervene", "--cache-mb", "lots"]).contains("--cache-mb"));
}

/// Batches of 7 and 13 (every batch boundary somewhere else, a last batch short) count the same
/// predictions and choose the same neurons as the defaults (100 and 256); the scores differ
/// only in their last float digits (gradients summed in another order).
#[test]
fn batch_sizes_change_no_count() {
    for args in [vec!["intervene"], vec!["intervene", "--within", "stage2.block0.conv2", "--group", "G1"]] {
        let run = |extra: &[&str]| {
            let out = json(&[args.clone(), extra.to_vec(), vec!["--format", "json"]].concat());
            let neurons = out["neurons"].as_array().unwrap().clone();
            let ids: Vec<Value> = neurons.iter().map(|n| n["id"].clone()).collect();
            let scores: Vec<f64> = neurons.iter().map(|n| n["score"].as_f64().unwrap()).collect();
            (ids, out["groups"].clone(), scores)
        };
        let (ids, groups, scores) = run(&[]);
        let (small_ids, small_groups, small_scores) =
            run(&["--eval-batch", "7", "--grad-batch", "13", "--cache-mb", "0"]);
        assert_eq!((ids, groups), (small_ids, small_groups), "{args:?}");
        for (a, b) in scores.iter().zip(&small_scores) {
            assert!((a - b).abs() <= 1e-5 * a.abs(), "{args:?}: {a} vs {b}");
        }
    }
}

/// `memscope-bench` hands bench/reference.py the numbers to check PyTorch against: they must
/// be the ones the commands report for the same requests.
#[test]
fn bench_reports_the_numbers_the_commands_give() {
    let out = assert_cmd::Command::cargo_bin("memscope-bench")
        .unwrap()
        .env_remove("MEMSCOPE_DEMO")
        .env_remove("MEMSCOPE_DATA_ROOT")
        .args(["--runs", "1", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bench: Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<&str> =
        bench["timings"].as_array().unwrap().iter().map(|t| t["key"].as_str().unwrap()).collect();
    for key in ["cold", "warm", "grads", "sens"] {
        assert!(keys.contains(&key), "{keys:?}");
    }
    let intervene = json(&["intervene", "--format", "json"]);
    let after: Vec<&Value> = intervene["groups"].as_array().unwrap().iter().map(|g| &g["after"]).collect();
    assert_eq!(bench["intervention_after"].as_array().unwrap().iter().collect::<Vec<_>>(), after);
    let study = json(&["sensitivity", "--format", "json"]);
    let changes: Vec<&Value> = study["rows"].as_array().unwrap().iter().map(|r| &r["change"]).collect();
    assert_eq!(changes.len(), 50);
    assert_eq!(bench["sensitivity_changes"].as_array().unwrap().iter().collect::<Vec<_>>(), changes);
    assert_eq!(
        bench["warm_rss_growth_mb"].as_f64().map(|mb| mb < 20.0),
        Some(true),
        "{}",
        bench["warm_rss_growth_mb"]
    );
}

#[test]
fn every_study_runs_on_the_demo_in_each_format() {
    let rewind =
        json(&["rewind", "--layer", "stage3.block0.conv2", "--epochs-back", "40", "--format", "json"]);
    assert_eq!(rewind["layers_changed"][0], "stage3.block0.conv2");
    let ranks = json(&["ranks", "--fraction", "0.05", "--format", "json"]);
    assert_eq!(ranks["selected"], 17);
    let sens = json(&["sensitivity", "--epochs-back", "5,40", "--format", "json"]);
    assert_eq!(sens["rows"].as_array().unwrap().len(), 20);
    // With 100 val examples per group, the 1-point threshold is one example.
    for t in sens["threshold_in_examples"].as_array().unwrap() {
        assert_eq!((t["examples"].as_u64(), t["min_examples"].as_u64()), (Some(100), Some(1)));
    }
    let control = json(&["control", "--fractions", "0.01", "--repeats", "2", "--format", "json"]);
    assert_eq!(control["rows"][0]["count"], 4);
    let scores = json(&["scores", "--criterion", "magnitude", "--top", "5", "--format", "json"]);
    let list = scores["neurons"].as_array().unwrap();
    assert_eq!(list.len(), 5);
    assert!(list.windows(2).all(|w| w[0]["score"].as_f64() >= w[1]["score"].as_f64()));
    assert_eq!(list[0]["magnitude_percentile"], 100.0);

    for args in [
        vec!["intervene", "--format", "csv"],
        vec!["scores", "--format", "csv"],
        vec!["ranks", "--format", "csv"],
        vec!["control", "--fractions", "0.01", "--repeats", "1", "--format", "csv"],
        vec!["sensitivity", "--epochs-back", "5", "--format", "csv"],
    ] {
        let out = memscope().args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let widths: Vec<usize> = text.lines().map(|l| l.split(',').count()).collect();
        assert!(widths.len() > 1 && widths.iter().all(|&w| w == widths[0]), "{args:?}: {text}");
    }
    let control = json(&["intervene", "--random-control", "-k", "3", "--repeats", "4", "--format", "json"]);
    assert_eq!(control["runs"], 4);
    assert_eq!(control["spec"]["selection"]["random"]["count"], 3);
    let out = memscope().args(["intervene", "--kind", "reinit"]).output().unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("re-init N(0, 0.02²)") && table.contains("mean of 10 runs"), "{table}");
}

#[test]
fn bad_study_requests_give_one_line_errors() {
    assert!(
        fails(&["intervene", "--within", "stage9"])
            .contains("'stage9' is not a candidate layer (valid: stem.conv,")
    );
    assert!(fails(&["intervene", "--group", "G7"]).contains("unknown group 'G7' (valid: G0 (0-4 on land)"));
    assert!(
        fails(&["intervene", "-k", "1000"]).contains("k = 1000 is larger than the 338 candidate neurons")
    );
    assert!(fails(&["intervene", "--fraction", "0"]).contains("--fraction 0 must be in (0, 1]"));
    assert!(fails(&["intervene", "--fraction", "1.5"]).contains("--fraction 1.5 must be in (0, 1]"));
    assert!(
        fails(&["intervene", "--kind", "rewind", "--epochs-back", "50"])
            .contains("cannot rewind 50 epochs from epoch 40")
    );
    assert!(
        fails(&["intervene", "--kind", "noise", "--sigma", "-1"])
            .contains("--sigma -1 must be a number >= 0")
    );
    assert!(
        fails(&["intervene", "--sigma", "0.1"]).contains("--sigma applies to --kind reinit or noise only")
    );
    assert!(fails(&["intervene", "--kind", "shake"]).contains("unknown intervention kind 'shake'"));
    assert!(fails(&["intervene", "--sampling", "top:3"]).contains("unknown sampling 'top:3'"));
    assert!(fails(&["intervene", "--granularity", "atom"]).contains("unknown granularity 'atom'"));
    assert!(fails(&["rewind", "--layer", "nope"]).contains("unknown layer 'nope' (valid: stem.conv,"));
    assert!(fails(&["sensitivity", "--epochs-back", "5,60"]).contains("cannot rewind 60 epochs"));
    assert!(fails(&["intervene", "--layers", "stem.con"]).contains("unknown layer 'stem.con'"));
}

#[test]
fn argument_errors_are_one_line_too() {
    assert!(fails(&["info", "--colour"]).contains("unexpected argument '--colour'"));
    assert!(fails(&["intervene", "-k", "three"]).contains("-k three must be at least 1"));
    assert!(fails(&["frobnicate"]).contains("unrecognized subcommand 'frobnicate'"));
    let help = memscope().arg("--help").output().unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(help.contains("intervene"));
    // The benchmarks are memscope-bench's, not the product's.
    assert!(!help.contains("bench"), "{help}");
    assert!(fails(&["bench"]).contains("unrecognized subcommand 'bench'"));
}

/// Negative numbers are read as values, then refused with the option's own range.
#[test]
fn out_of_range_numbers_name_the_option_and_its_range() {
    let err = |args: &[&str]| fails(args).trim_end().to_string();
    assert_eq!(
        err(&["intervene", "--fraction", "-0.1"]),
        "memscope: error: --fraction -0.1 must be in (0, 1] (see memscope --help)"
    );
    assert_eq!(
        err(&["info", "--epoch", "-1"]),
        "memscope: error: --epoch -1 must be a whole number >= 0 (see memscope --help)"
    );
    assert!(err(&["intervene", "-k", "0"]).contains("-k 0 must be at least 1"));
    assert!(
        err(&["intervene", "--kind", "noise", "--sigma", "-1"]).contains("--sigma -1 must be a number >= 0")
    );
    assert!(err(&["info", "--threads", "5000"]).contains("--threads 5000 must be in 0..=1024"));
    assert!(err(&["info", "--threads", "-2"]).contains("--threads -2 must be in 0..=1024"));
    assert!(err(&["intervene", "--repeats", "0"]).contains("--repeats 0 must be in 1..=1000"));
    assert!(err(&["control", "--fractions", "0.01,-1"]).contains("--fractions -1 must be in (0, 1]"));
    assert!(err(&["sensitivity", "--threshold", "-0.5"]).contains("--threshold -0.5 must be a number >= 0"));
    assert!(err(&["intervene", "--kind", "zero", "--sigma", "0.5"]).contains("--sigma applies to"));
    assert!(err(&["info", "--split", "dev"]).contains("unknown split 'dev'"));
    assert!(err(&["intervene", "--eval-batch", "0"]).contains("--eval-batch 0 must be at least 1"));
    let import = ["import", "--checkpoints", "/nonexistent", "--out", "/nonexistent-out", "--image-size"];
    assert!(
        err(&[&import[..], &["0"]].concat()).contains("--image-size 0 must be in 1..=4096 (pixels on a side")
    );
    // The digits have their own size; the flag is refused before any file is looked at.
    assert!(
        err(&[&import[..], &["32"]].concat())
            .contains("--image-size, --transform and --attributes are for an image folder")
    );
    assert!(
        err(&["train", "--out", "/nonexistent-out", "--image-size", "32"])
            .contains("not the spurious digits")
    );
    // --transform: one line naming the key or value and what is valid.
    let transform =
        |spec: &str| err(&["import", "--checkpoints", "/nonexistent", "--out", "/x", "--transform", spec]);
    for (spec, says) in [
        ("resize=64x64,interp=lanczos", "interp=lanczos: valid: bilinear, bicubic, nearest"),
        ("resize=64x64,normalize=cifar", "normalize=cifar: valid: imagenet, none"),
        ("resize=64", "end it with crop=N (or HxW), or resize to HxW"),
        ("resize=64x0", "'0' is not a side in 1..=8192 pixels"),
        ("size=64", "unknown key 'size' (valid: resize, crop, interp, normalize, mean, std)"),
        ("vit", "not a preset (waterbirds, celeba, timm-deit"),
        ("@/nonexistent.ron", "cannot read /nonexistent.ron"),
    ] {
        let said = transform(spec);
        assert!(said.contains(says), "{spec}: {said}");
        assert_eq!(said.trim_end().lines().count(), 1, "{spec}: {said}");
    }
    // A RON file is read (here refused next because the digits are no folder).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("deit.ron");
    let ron = "Compose((steps: [Resize(size: Shorter(256), interpolation: bicubic), \
               CenterCrop(height: 224, width: 224)], normalize: ImageNet))";
    std::fs::write(&file, ron).unwrap();
    assert!(
        transform(&format!("@{}", file.display()))
            .contains("--transform and --attributes are for an image folder")
    );
    std::fs::write(&file, "Compose((steps: [], normalise: None))").unwrap();
    let said = transform(&format!("@{}", file.display()));
    assert!(said.contains("deit.ron: 1:") && said.contains("`normalise`"), "{said}");
    let attributes =
        |value: &str| err(&["import", "--checkpoints", "/nonexistent", "--out", "/x", "--attributes", value]);
    for bad in ["Blond_Hair", "Male,Male", "Blond_Hair,", "a,b,c"] {
        assert!(
            attributes(bad).contains("must be two different attribute columns, TARGET,SPURIOUS"),
            "{bad}"
        );
    }
    let wb = ["import", "--checkpoints", "/nonexistent", "--out", "/x", "--data", "waterbirds:/x"];
    assert!(
        err(&[&wb[..], &["--attributes", "Smiling,Male"]].concat())
            .contains("--attributes chooses CelebA's columns")
    );
}

/// JSON results carry where they came from; tables and CSV do not.
#[test]
fn json_results_carry_their_provenance() {
    let demo = Experiment::open(Path::new(DEMO)).unwrap();
    let entry = demo.checkpoint(40).unwrap();
    for args in [
        vec!["intervene", "-k", "2", "--seed", "9"],
        vec!["rewind", "--layer", "head"],
        vec!["info"],
        vec!["scores", "--top", "3"],
        vec!["ranks", "--fraction", "0.05"],
        vec!["control", "--fractions", "0.01", "--repeats", "1"],
    ] {
        let r = json(&[args.clone(), vec!["--format", "json"]].concat());
        let p = &r["provenance"];
        assert_eq!(p["memscope"], env!("CARGO_PKG_VERSION"), "{args:?}");
        assert_eq!(p["name"], demo.manifest.name.as_str(), "{args:?}");
        assert_eq!(p["epoch"], 40, "{args:?}");
        assert_eq!(p["checkpoint"], entry.file.as_str(), "{args:?}");
        assert_eq!(p["sha256"], entry.sha256.as_str(), "{args:?}");
        assert!(p["experiment"].as_str().unwrap().ends_with("spurious-digits"), "{args:?}");
        assert!(p["spec"].is_object(), "{args:?}");
        assert_eq!(p["device"]["device"], "cpu", "{args:?}");
        assert_eq!(p["device"]["libtorch"], memscope_core::device::LIBTORCH, "{args:?}");
        assert_eq!(p["numerics"], "cpu", "{args:?}");
    }
    let r = json(&["intervene", "-k", "2", "--seed", "9", "--format", "json"]);
    assert_eq!(r["provenance"]["spec"], r["spec"]);
    assert_eq!(r["provenance"]["spec"]["seed"], 9);
    let out = memscope().args(["intervene", "--format", "csv"]).output().unwrap();
    assert!(!String::from_utf8(out.stdout).unwrap().contains("provenance"));
}

/// `--tf32` is for CUDA: on the CPU it is accepted and changes nothing, provenance included.
#[test]
fn tf32_changes_nothing_on_the_cpu() {
    let plain = json(&["intervene", "-k", "2", "--format", "json"]);
    let tf32 = json(&["intervene", "-k", "2", "--format", "json", "--tf32"]);
    assert_eq!(plain, tf32);
    assert_eq!(tf32["provenance"]["numerics"], "cpu");
}

#[test]
fn info_counts_trainable_parameters_as_pytorch_does_and_buffers_apart() {
    // Independently: every float tensor of the checkpoint file, as PyTorch would load it.
    let bytes = std::fs::read(Path::new(DEMO).join("epoch-040.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (mut trainable, mut buffers) = (0, 0);
    for (name, view) in tensors.tensors() {
        use safetensors::Dtype::{BF16, F16, F32, F64};
        if !matches!(view.dtype(), F16 | BF16 | F32 | F64) {
            continue;
        }
        let n: usize = view.shape().iter().product();
        if name.ends_with("running_mean") || name.ends_with("running_var") {
            buffers += n;
        } else if !name.ends_with("num_batches_tracked") {
            trainable += n;
        }
    }
    let info = json(&["info", "--format", "json"]);
    assert_eq!(info["trainable_parameters"].as_u64().unwrap() as usize, trainable);
    assert_eq!(info["buffers"].as_u64().unwrap() as usize, buffers);
    // What sum(p.numel() for p in model.parameters()) gives in PyTorch on the demo.
    assert_eq!(trainable, 77_522);
    assert!(info.get("parameters").is_none(), "the ambiguous total is gone");

    let out = memscope().args(["info"]).output().unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("77522 trainable parameters (PyTorch's model.parameters())"), "{table}");
    assert!(table.contains("+ 672 buffer values (BatchNorm running_mean, running_var"), "{table}");
    assert!(
        table.contains("\ndata        spurious digits 24x24 (bundled, generated from seed 2024)\n"),
        "{table}"
    );
}

/// The cells of a printed table's rows (not the header), split on runs of 2+ spaces.
fn table_column(table: &str, header: &str) -> Vec<String> {
    let lines: Vec<&str> = table.lines().filter(|l| l.starts_with('│')).collect();
    let cells = |line: &str| -> Vec<String> {
        line.trim_matches('│')
            .split("   ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect()
    };
    let column = cells(lines[0]).iter().position(|c| c == header).unwrap_or_else(|| panic!("{table}"));
    lines[1..].iter().map(|l| cells(l)[column].clone()).collect()
}

#[test]
fn with_normalize_layers_the_printed_ranking_column_is_sorted() {
    let args = ["scores", "--normalize-layers", "--group", "G2", "--top", "30"];
    let out = memscope().args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    let ranked: Vec<f64> =
        table_column(&table, "score / layer mean").iter().map(|c| c.parse().unwrap()).collect();
    assert_eq!(ranked.len(), 30, "{table}");
    assert!(ranked.windows(2).all(|w| w[0] >= w[1]), "not sorted: {ranked:?}\n{table}");
    assert!(table.contains("ranked by score / layer mean"), "{table}");

    // The JSON's ranking_score is the raw score over its layer's mean, and sorted; the raw
    // score alone is not (the rank 1 at 5.4e-3 above rank 2 at 2.2e-2).
    let mut args = args.to_vec();
    args.extend(["--format", "json"]);
    let list = json(&args);
    let neurons = list["neurons"].as_array().unwrap();
    let ranking: Vec<f64> = neurons.iter().map(|n| n["ranking_score"].as_f64().unwrap()).collect();
    let raw: Vec<f64> = neurons.iter().map(|n| n["score"].as_f64().unwrap()).collect();
    assert!(ranking.windows(2).all(|w| w[0] >= w[1]), "{ranking:?}");
    assert!(!raw.windows(2).all(|w| w[0] >= w[1]), "raw scores happen to be sorted: {raw:?}");
}

#[test]
fn every_percentile_names_its_scope() {
    let within = json(&["intervene", "--within", "stage2.block0.conv2", "--format", "json"]);
    for n in within["neurons"].as_array().unwrap() {
        assert_eq!(n["score_percentile_scope"], "within layer stage2.block0.conv2");
        assert_eq!(n["magnitude_percentile_scope"], "all candidates");
        assert_eq!(n["ranking_score"], n["score"]);
    }
    let global = json(&["scores", "--top", "3", "--format", "json"]);
    for n in global["neurons"].as_array().unwrap() {
        assert_eq!(n["score_percentile_scope"], "all candidates");
        assert_eq!(n["magnitude_percentile_scope"], "all candidates");
    }
    let out = memscope().args(["intervene", "--within", "stage2.block0.conv2"]).output().unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("score pct: within layer stage2.block0.conv2; magnitude pct: all candidates"),
        "{table}"
    );
}

/// `info` names the device as the system does (the processor's model from /proc/cpuinfo,
/// libtorch's threads as --threads set them) and the libtorch that `--version` names.
#[test]
fn info_names_the_device_and_the_libtorch() {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap();
    let model =
        cpuinfo.lines().find(|l| l.starts_with("model name")).unwrap().split_once(':').unwrap().1.trim();
    let version = memscope().arg("--version").output().unwrap();
    let version = String::from_utf8(version.stdout).unwrap();
    let libtorch =
        version.trim().strip_prefix("memscope 0.1.0 (libtorch ").unwrap().strip_suffix(')').unwrap();
    for (threads, said) in [("1", "1 thread"), ("2", "2 threads")] {
        let out = memscope().args(["--threads", threads, "info"]).output().unwrap();
        let table = String::from_utf8(out.stdout).unwrap();
        let want = format!("device      cpu ({model}, {said}) · libtorch {libtorch}");
        assert!(table.lines().any(|l| l == want), "no line {want:?} in:\n{table}");
    }
    let r = json(&["--threads", "1", "info", "--format", "json"]);
    assert_eq!(
        r["device"],
        serde_json::json!({"device": "cpu", "name": model, "threads": 1, "libtorch": libtorch})
    );
    assert_eq!(r["device"], r["provenance"]["device"]);
}

/// `train --help` and `mitigate --help` describe the fine-tuning numbers with the defaults the
/// engine applies: the plan's for train, the released fine-tuning for every method that
/// fine-tunes (and say which method ignores them).
#[test]
fn fit_options_say_their_engine_defaults() {
    use memscope_core::mitigate::{MitigationPlan, method::METHODS};
    use memscope_core::train::TrainPlan;
    let help = |command: &str| {
        let out = memscope().args([command, "--help"]).output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    // The number after "default " in the help of `flag` (its own line, or the next ones).
    let default_of = |help: &str, flag: &str, about: &str| -> f64 {
        let at = help.find(&format!("{flag} <")).unwrap_or_else(|| panic!("{flag} in {help}"));
        let text = &help[at..];
        let text = &text[..text[2..].find("\n  -").map_or(text.len(), |end| end + 2)];
        assert!(text.contains(about), "{flag}: {text}");
        let number = text.split("default ").nth(1).unwrap_or_else(|| panic!("{flag}: {text}"));
        let number: String = number.chars().take_while(|c| !matches!(c, ' ' | ',' | ')' | ';')).collect();
        number.parse().unwrap_or_else(|_| panic!("{flag}: {number}"))
    };
    for (command, t) in
        [("train", TrainPlan::default().training), ("mitigate", MitigationPlan::default().training)]
    {
        let help = help(command);
        assert_eq!(default_of(&help, "--lr", "Learning rate"), t.learning_rate, "{command}");
        assert_eq!(default_of(&help, "--weight-decay", "Weight decay"), t.weight_decay, "{command}");
        assert_eq!(default_of(&help, "--batch-size", "examples per batch"), t.batch_size as f64, "{command}");
        assert_eq!(default_of(&help, "--epochs", "Epochs to train"), t.epochs as f64, "{command}");
    }
    // Every method's default plan fine-tunes with those settings, or is named as ignoring them.
    let mitigate = help("mitigate");
    for m in METHODS {
        let digits = memscope_core::data::DatasetSpec::default();
        let plan = MitigationPlan::released(m.defaults(), &digits, MitigationPlan::default().training.seed);
        if plan.method.mitigation().fine_tunes() {
            assert_eq!(plan.training, MitigationPlan::default().training, "{}", m.name);
        } else {
            assert!(
                mitigate.contains(&format!("{} does not fine-tune and ignores it", m.name)),
                "{}",
                m.name
            );
        }
    }
}

/// `memscope --help` lists every figure the engine draws, and `figure` offers exactly those.
#[test]
fn top_level_help_lists_every_figure_kind() {
    let help = |args: &[&str]| String::from_utf8(memscope().args(args).output().unwrap().stdout).unwrap();
    let top = help(&["--help"]);
    let line = top.lines().find(|l| l.trim_start().starts_with("figure ")).unwrap_or_else(|| panic!("{top}"));
    let listed = format!("({})", memscope_core::figure::KINDS.join(", "));
    assert!(line.contains(&listed), "{line}");
    let figure = help(&["figure", "--help"]);
    let commands: Vec<&str> = figure
        .split("Commands:\n")
        .nth(1)
        .unwrap_or("")
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|&name| name != "help")
        .collect();
    assert_eq!(commands, memscope_core::figure::KINDS, "{figure}");
}
