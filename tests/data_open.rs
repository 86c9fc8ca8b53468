//! An experiment's data opened at run time: the digits exported as a Waterbirds folder and
//! read back by the real loader, a moved folder found through --data-root, bad images
//! refused or skipped, and seeded subsets per group.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use memscope_core::data::folder::{FolderSpec, Layout, Transform};
use memscope_core::data::{DatasetSpec, GroupedDataset, Split};
use memscope_core::experiment::Experiment;
use serde_json::Value;

mod common;

use common::{DEMO, demo_copy, memscope};

/// Runs memscope; (success, stdout, stderr).
fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.success(), text(out.stdout), text(out.stderr))
}

/// Runs memscope expecting failure; returns its one-line error.
fn fails(cmd: &mut Command) -> String {
    let (ok, _, stderr) = run(cmd);
    assert!(!ok, "succeeded: {cmd:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "not one line: {stderr}");
    assert!(stderr.starts_with("memscope: error: "), "{stderr}");
    stderr
}

fn succeeds(cmd: &mut Command) -> (String, String) {
    let (ok, stdout, stderr) = run(cmd);
    assert!(ok, "{cmd:?} failed: {stderr}");
    (stdout, stderr)
}

fn demo_digits() -> GroupedDataset {
    Experiment::open(Path::new(DEMO)).unwrap().manifest.dataset.load().unwrap()
}

/// `memscope export --format waterbirds` of the demo's digits into `out`.
fn export_digits(out: &Path, size: usize) {
    let size = size.to_string();
    let out = out.to_str().unwrap();
    succeeds(memscope().args(["export", "--format", "waterbirds", "--size", &size, "--out", out]));
}

/// A copy of the demo experiment whose data set is the Waterbirds folder at `recorded`
/// (24 px, the demo model's input).
fn folder_experiment(recorded: &str) -> (tempfile::TempDir, PathBuf) {
    let (tmp, exp) = demo_copy();
    let ron_path = exp.join("experiment.ron");
    let text = std::fs::read_to_string(&ron_path).unwrap();
    let start = text.find("    dataset: SpuriousDigits(").unwrap();
    let end = start + text[start..].find("    classes:").unwrap();
    let spec = DatasetSpec::Folder(FolderSpec {
        layout: Layout::Waterbirds,
        path: PathBuf::from(recorded),
        transform: Transform::waterbirds(24),
    });
    let line = format!("    dataset: {},\n", ron::to_string(&spec).unwrap());
    std::fs::write(&ron_path, format!("{}{line}{}", &text[..start], &text[end..])).unwrap();
    (tmp, exp)
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn exported_digits_read_back_through_the_folder_loader() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("wb");
    export_digits(&out, 24);
    let spec: FolderSpec = format!("waterbirds:{}", out.display()).parse().unwrap();
    let folder = memscope_core::data::folder::load(&spec, 2).unwrap();
    let digits = demo_digits();
    for split in Split::ALL {
        let (a, b) = (folder.split(split), digits.split(split));
        assert_eq!(a.group_counts(4), b.group_counts(4), "{split}");
        assert_eq!(a.labels, b.labels, "{split}");
        assert_eq!(a.groups, b.groups, "{split}");
    }
    assert_eq!(folder.train.group_counts(4), [1460, 80, 20, 440]);
    assert_eq!(folder.val.group_counts(4), [100; 4]);
    let first = std::fs::read_to_string(out.join("metadata.csv")).unwrap();
    assert!(first.starts_with("img_id,img_filename,y,split,place,place_filename\n"), "{first}");

    // An existing folder is replaced only with --force, whole, and nothing is left beside it.
    let e = fails(memscope().args(["export", "--format", "waterbirds", "--out", arg(&out)]));
    assert!(e.contains("exists and is not empty; pass --force"), "{e}");
    succeeds(memscope().args([
        "export",
        "--format",
        "waterbirds",
        "--size",
        "8",
        "--force",
        "--out",
        arg(&out),
    ]));
    let img = memscope_core::data::folder::decode::decode_file(&out.join("000.digit_0-4/train_000001.jpg"))
        .unwrap();
    assert_eq!((img.width, img.height), (8, 8));
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into())
        .collect();
    assert_eq!(names, ["wb"], "no staging folder or old copy left");

    // Refused: a file, an experiment, options of the other format, a size out of range.
    let file = tmp.path().join("f");
    std::fs::write(&file, "x").unwrap();
    let e = fails(memscope().args(["export", "--format", "waterbirds", "--out", arg(&file)]));
    assert!(e.contains("exists and is not a folder"), "{e}");
    let (_keep, exp) = demo_copy();
    let e = fails(memscope().args(["export", "--format", "waterbirds", "--force", "--out", arg(&exp)]));
    assert!(e.contains("holds an experiment"), "{e}");
    assert!(exp.join("experiment.ron").is_file());
    let e = fails(memscope().args(["export", "--format", "waterbirds", "--all", "--out", "/tmp/x"]));
    assert!(e.contains("--epochs, --all and --splits apply to --format safetensors"), "{e}");
    let e = fails(memscope().args(["export", "--format", "waterbirds", "--size", "0", "--out", "/tmp/x"]));
    assert!(e.contains("--size 0 must be in 1..=4096"), "{e}");
    let (_keep, folder_exp) = folder_experiment(arg(&out));
    let e = fails(
        memscope()
            .args(["export", "--format", "waterbirds", "--experiment", arg(&folder_exp)])
            .args(["--out", arg(&tmp.path().join("again"))]),
    );
    assert!(e.contains("already reads an image folder"), "{e}");
}

#[test]
fn a_moved_folder_is_found_through_the_data_root() {
    let (tmp, exp) = folder_experiment("/nowhere/wb");
    let data = tmp.path().join("data");
    export_digits(&data.join("wb"), 24);
    let info = |cmd: &mut Command| cmd.args(["info", "--experiment", arg(&exp)]).output().unwrap();

    let e = fails(memscope().args(["info", "--experiment", arg(&exp)]));
    assert!(
        e.contains("the experiment's waterbirds folder /nowhere/wb does not exist")
            && e.contains("pass --data-root DIR (or set MEMSCOPE_DATA_ROOT)"),
        "{e}"
    );
    let by_flag = info(memscope().args(["--data-root", arg(&data.join("wb"))]));
    assert!(by_flag.status.success(), "{}", String::from_utf8_lossy(&by_flag.stderr));
    let table = String::from_utf8(by_flag.stdout).unwrap();
    assert!(table.contains("G2 waterbird on land") && !table.contains("data:"), "{table}");
    // A folder that holds the data set, the flag after the command, the environment variable.
    let by_parent =
        memscope().args(["info", "--experiment", arg(&exp), "--data-root", arg(&data)]).output().unwrap();
    assert_eq!(String::from_utf8(by_parent.stdout).unwrap(), table);
    let by_env = info(memscope().env("MEMSCOPE_DATA_ROOT", &data));
    assert_eq!(String::from_utf8(by_env.stdout).unwrap(), table);
    // A root without the data names where it looked and what was recorded.
    let e = fails(memscope().args(["info", "--experiment", arg(&exp), "--data-root", arg(&exp)]));
    assert!(
        e.contains("no waterbirds folder there") && e.contains("the experiment recorded /nowhere/wb"),
        "{e}"
    );
    let e = fails(memscope().env("MEMSCOPE_DATA_ROOT", &exp).args(["info", "--experiment", arg(&exp)]));
    assert!(e.contains("MEMSCOPE_DATA_ROOT"), "{e}");

    // A relative recorded path is taken from the experiment folder, not the working directory.
    let (tmp2, exp2) = folder_experiment("../data/wb");
    std::fs::rename(&data, tmp2.path().join("data")).unwrap();
    let out = memscope().current_dir("/").args(["info", "--experiment", arg(&exp2)]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let relative = String::from_utf8(out.stdout).unwrap();
    // All but the lines naming the experiment's folder and the recorded data path.
    let strip = |t: &str| {
        t.lines()
            .filter(|l| !l.starts_with("experiment  ") && !l.starts_with("data  "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        relative.contains(
            "\ndata        waterbirds:../data/wb (Resize((27, 27), interpolation=bilinear) · CenterCrop(24)"
        ),
        "{relative}"
    );
    assert_eq!(strip(&relative), strip(&table), "the same results, another experiment path");

    let e = fails(memscope().args(["train", "--out", "/tmp/never", "--data-root", "/x"]));
    assert!(e.contains("--data-root is for commands that open an experiment"), "{e}");
}

/// The `metadata.csv` line and path of the `k`-th val image of a Waterbirds folder.
fn val_image(folder: &Path, k: usize) -> (usize, String) {
    let text = std::fs::read_to_string(folder.join("metadata.csv")).unwrap();
    let (i, line) =
        text.lines().enumerate().filter(|(_, l)| l.split(',').nth(3) == Some("1")).nth(k).unwrap();
    (i + 1, line.split(',').nth(1).unwrap().to_string())
}

#[test]
fn bad_images_fail_naming_file_and_line_or_are_skipped_and_said() {
    let (tmp, exp) = folder_experiment("../data/wb");
    let folder = tmp.path().join("data/wb");
    export_digits(&folder, 24);
    let (corrupt_line, corrupt) = val_image(&folder, 3);
    let (missing_line, missing) = val_image(&folder, 250);
    let bytes = std::fs::read(folder.join(&corrupt)).unwrap();
    std::fs::write(folder.join(&corrupt), &bytes[..bytes.len() / 2]).unwrap();

    // Without the flag: a corrupt image stops the run when it is decoded, naming file and row.
    let e = fails(memscope().args(["info", "--experiment", arg(&exp)]));
    assert!(e.contains(&format!("metadata.csv line {corrupt_line}")) && e.contains(&corrupt), "{e}");
    assert!(e.contains("truncated") && e.contains("--skip-bad-images"), "{e}");
    // A missing one when the data set is opened.
    std::fs::remove_file(folder.join(&missing)).unwrap();
    let e = fails(memscope().args(["info", "--experiment", arg(&exp)]));
    assert!(e.contains(&format!("metadata.csv line {missing_line}: image {missing} not found")), "{e}");

    // With it: both left out, listed on stderr, and every output says so.
    let (table, stderr) = succeeds(memscope().args(["info", "--experiment", arg(&exp), "--skip-bad-images"]));
    assert!(stderr.contains("skipped 2 images of waterbirds (--skip-bad-images)"), "{stderr}");
    assert!(stderr.contains(&format!("line {corrupt_line} (val): {corrupt}: ")), "{stderr}");
    assert!(stderr.contains(&format!("line {missing_line} (val): {missing}: not found")), "{stderr}");
    assert!(
        table.starts_with(
            "data: 2 images skipped (--skip-bad-images; 2 val): every count is of the images kept\n"
        ),
        "{table}"
    );
    let (json, _) = succeeds(memscope().args([
        "info",
        "--experiment",
        arg(&exp),
        "--skip-bad-images",
        "--format",
        "json",
    ]));
    let json: Value = serde_json::from_str(&json).unwrap();
    let val: u64 = json["groups"].as_array().unwrap().iter().map(|g| g["val"].as_u64().unwrap()).sum();
    assert_eq!(val, 398);
    let skipped = json["provenance"]["data"]["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 2);
    assert_eq!(skipped[0]["line"].as_u64(), Some(corrupt_line.min(missing_line) as u64));
    let (csv, _) = succeeds(memscope().args([
        "info",
        "--experiment",
        arg(&exp),
        "--skip-bad-images",
        "--format",
        "csv",
    ]));
    assert!(csv.starts_with("# data: 2 images skipped"), "{csv}");

    // The library: the same two left out, in metadata order.
    let spec: FolderSpec = format!("waterbirds:{}", folder.display()).parse().unwrap();
    let ds = memscope_core::data::folder::load_with(&spec, 2, true).unwrap();
    assert_eq!(ds.val.len(), 398);
    let lines: Vec<usize> = ds.changes.skipped.iter().map(|s| s.line).collect();
    let mut want = vec![corrupt_line, missing_line];
    want.sort();
    assert_eq!(lines, want);
    assert!(ds.val.sources.iter().all(|l| !want.contains(l)));
}

/// The subset computed here, apart from the library: per group, its indices shuffled by
/// ChaCha8 (seed, stream split << 32 | group), the first `n`, in split order.
fn hand_subset(full: &GroupedDataset, n: usize, seed: u64) -> GroupedDataset {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let mut out = full.clone();
    for (k, split) in Split::ALL.into_iter().enumerate() {
        let data = full.split(split);
        let mut keep = Vec::new();
        for g in 0..full.num_groups() {
            let mut members: Vec<usize> = (0..data.len()).filter(|&i| data.groups[i] == g).collect();
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(((k as u64) << 32) + g as u64);
            members.shuffle(&mut rng);
            keep.extend(members.into_iter().take(n));
        }
        keep.sort();
        out = out.restrict(split, &keep);
    }
    out
}

#[test]
fn max_per_group_takes_a_seeded_stratified_subset_everywhere() {
    let full = demo_digits();
    let sub = full.subset_per_group(50, 9);
    for split in Split::ALL {
        let want: Vec<usize> = full.split(split).group_counts(4).iter().map(|&c| c.min(50)).collect();
        assert_eq!(sub.split(split).group_counts(4), want, "{split}");
    }
    assert_eq!(sub.train.group_counts(4), [50, 50, 20, 50], "the 20 of G2 are all kept");
    assert_eq!(sub.train_proportions(), full.train_proportions(), "weights of the whole training split");
    let again = full.subset_per_group(50, 9);
    assert_eq!((&again.train, &again.val, &again.test), (&sub.train, &sub.val, &sub.test));
    assert_ne!(full.subset_per_group(50, 10).val, sub.val, "another seed, another subset");
    let hand = hand_subset(&full, 50, 9);
    assert_eq!((&hand.train, &hand.val, &hand.test), (&sub.train, &sub.val, &sub.test));
    let images = |d: &GroupedDataset| d.images(Split::Val, &[0, 7, 49]).unwrap();
    assert_eq!(images(&hand), images(&sub));

    // intervene --max-per-group: the same counts as the engine on the hand-restricted data,
    // the same output on every run, and the subset said in every format.
    let args = ["intervene", "--max-per-group", "30", "--subset-seed", "4"];
    let (json, _) = succeeds(memscope().args(args).args(["--format", "json"]));
    let (json2, _) = succeeds(memscope().args(args).args(["--format", "json"]));
    assert_eq!(json, json2);
    let json: Value = serde_json::from_str(&json).unwrap();
    let subset = &json["provenance"]["data"]["subset"];
    assert_eq!((subset["max_per_group"].as_u64(), subset["seed"].as_u64()), (Some(30), Some(4)));
    assert_eq!(subset["kept"], serde_json::json!([110, 120, 120]));
    let spec: memscope_core::studies::intervention::InterventionSpec =
        serde_json::from_value(json["provenance"]["spec"].clone()).unwrap();
    let exp = Experiment::open(Path::new(DEMO)).unwrap();
    let device = memscope_core::device::DeviceSpec::Cpu.device().unwrap();
    let mut session = memscope_core::session::Session::new(exp, hand_subset(&full, 30, 4), device).unwrap();
    let want =
        memscope_core::studies::intervention::run(&mut session, &spec, &mut memscope_core::jobs::Silent)
            .unwrap();
    let groups = json["groups"].as_array().unwrap();
    for (g, (got, want)) in groups.iter().zip(&want.groups).enumerate() {
        assert_eq!(got["examples"].as_u64(), Some(want.examples as u64));
        assert_eq!(want.examples, 30);
        for key in ["before", "after"] {
            let got = got[key].as_f64().unwrap();
            let want = if key == "before" { want.before } else { want.after }.unwrap();
            assert_eq!((got * 30.0).round(), (want * 30.0).round(), "G{g} {key}");
        }
    }
    let (table, _) = succeeds(memscope().args(args));
    assert!(
        table
            .starts_with("data: train: at most 30 per group (seeded subset, seed 4): 110 of 2000 examples\n")
    );
    assert!(table.contains("data: val: at most 30 per group (seeded subset, seed 4): 120 of 400 examples\n"));
    let (csv, _) = succeeds(memscope().args(args).args(["--format", "csv"]));
    assert!(csv.starts_with("# data: train: at most 30 per group"), "{csv}");
    for cmd in [
        &["info"][..],
        &["scores"],
        &["rewind", "--layer", "head"],
        &["ranks"],
        &["sensitivity", "--epochs-back", "5"],
        &["control", "--repeats", "1"],
    ] {
        let (out, _) = succeeds(memscope().args(cmd).args(["--max-per-group", "5"]));
        assert!(
            out.starts_with("data: train: at most 5 per group (seeded subset, seed 0): 20 of 2000"),
            "{cmd:?}: {out}"
        );
    }
    let e = fails(memscope().args(["info", "--subset-seed", "3"]));
    assert!(e.contains("--max-per-group"), "{e}");
    let e = fails(memscope().args(["info", "--max-per-group", "0"]));
    assert!(e.contains("--max-per-group 0 must be at least 1"), "{e}");
}

#[test]
fn the_pixel_cache_returns_the_uncached_pixels_and_is_rebuilt_when_its_inputs_change() {
    use memscope_core::data::PixelSource;
    use memscope_core::data::folder::cache::open_or_build;
    use memscope_core::data::folder::{FolderPixels, read_manifest};
    use memscope_core::jobs::Silent;

    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("wb");
    export_digits(&folder, 24);
    let cache_dir = tmp.path().join("cache");
    let spec: FolderSpec = format!("waterbirds:{}", folder.display()).parse().unwrap();
    let spec = FolderSpec { transform: Transform::waterbirds(24), ..spec };
    let manifest = read_manifest(&spec).unwrap();
    let pixels = FolderPixels::new(&manifest, spec.transform.clone(), 2);
    let (cached, built) = open_or_build(&cache_dir, &manifest, &pixels, &mut Silent).unwrap();
    assert!(built);
    for split in Split::ALL {
        let all: Vec<usize> = (0..manifest.split(split).len()).collect();
        let want = pixels.images(split, &all).unwrap();
        assert_eq!(PixelSource::images(&cached, split, &all).unwrap(), want, "{split}");
        // Any order, any subset.
        let some = [all.len() - 1, 0, 3];
        assert_eq!(PixelSource::images(&cached, split, &some).unwrap(), pixels.images(split, &some).unwrap());
    }
    let (_, built) = open_or_build(&cache_dir, &manifest, &pixels, &mut Silent).unwrap();
    assert!(!built, "an unchanged folder must reuse its cache");
    let caches = || std::fs::read_dir(&cache_dir).unwrap().count();
    assert_eq!(caches(), 1);

    // Another transform: another cache.
    let smaller = FolderPixels::new(&manifest, Transform::waterbirds(20), 2);
    let (other, built) = open_or_build(&cache_dir, &manifest, &smaller, &mut Silent).unwrap();
    assert!(built && other.info.image_shape == [20, 20, 3]);
    assert_eq!(caches(), 2);

    // A changed metadata file (one label flipped): another cache, with that label's pixels
    // unchanged and the rest of the folder read again.
    let metadata = folder.join("metadata.csv");
    let text = std::fs::read_to_string(&metadata).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let y = header.iter().position(|c| *c == "y").unwrap();
    let mut row: Vec<String> = lines[1].split(',').map(String::from).collect();
    row[y] = if row[y] == "0" { "1".into() } else { "0".into() };
    lines[1] = row.join(",");
    std::fs::write(&metadata, lines.join("\n") + "\n").unwrap();
    let changed = read_manifest(&spec).unwrap();
    let (_, built) =
        open_or_build(&cache_dir, &changed, &FolderPixels::new(&changed, spec.transform, 2), &mut Silent)
            .unwrap();
    assert!(built, "a changed metadata file must not reuse the old cache");
    assert_eq!(caches(), 3);
    // No staging folder is left behind.
    assert!(
        std::fs::read_dir(&cache_dir).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with('.'))
    );
}

#[test]
fn commands_read_a_folder_through_the_pixel_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("wb");
    export_digits(&folder, 24);
    let (_exp_tmp, exp) = folder_experiment(arg(&folder));
    let cache = tmp.path().join("pixels");
    let info = |cache: Option<&Path>| {
        let mut cmd = memscope();
        cmd.args(["info", "--experiment", arg(&exp), "--split", "test", "--format", "json"]);
        if let Some(c) = cache {
            cmd.args(["--pixel-cache", arg(c)]);
        }
        let (stdout, _) = succeeds(&mut cmd);
        let v: Value = serde_json::from_str(&stdout).unwrap();
        v["accuracy"].clone()
    };
    let plain = info(None);
    assert_eq!(info(Some(&cache)), plain, "cached pixels gave other accuracies");
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1);
    assert_eq!(info(Some(&cache)), plain);
}
