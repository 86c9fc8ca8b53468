//! Engine tests on real libtorch and the shipped digits: data set, checkpoints, training.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use burn::prelude::*;
use burn::store::{ModuleStore, SafetensorsStore};
use burn::tensor::TensorData;
use memscope_core::data::{DatasetSpec, DigitsSpec, Split, digits};
use memscope_core::device::DeviceSpec;
use memscope_core::eval;
use memscope_core::experiment::TrainSettings;
use memscope_core::experiment::{Experiment, checkpoint};
use memscope_core::jobs::Silent;
use memscope_core::model::{ModelConfig, SmallResNetConfig};
use memscope_core::train::{TrainPlan, train};

/// Every image of `split`, `[n, c, h, w]` flat.
fn all_images(data: &memscope_core::data::GroupedDataset, split: Split) -> Vec<f32> {
    let all: Vec<usize> = (0..data.split(split).len()).collect();
    data.images(split, &all).unwrap()
}

fn cpu() -> Device {
    DeviceSpec::Cpu.device().unwrap()
}

/// The source file read independently of the generator: (pixels, digit) per row.
fn source_rows() -> Vec<(Vec<u8>, u8)> {
    let raw = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/digits.csv.gz")).unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&raw[..]).read_to_string(&mut text).unwrap();
    text.lines()
        .map(|l| {
            let v: Vec<u8> = l.split(',').map(|x| x.parse().unwrap()).collect();
            (v[..64].to_vec(), v[64])
        })
        .collect()
}

fn tiny_spec() -> DigitsSpec {
    DigitsSpec { train_groups: [120, 16, 8, 56], eval_per_group: 12, ..DigitsSpec::default() }
}

#[test]
fn demo_data_has_the_documented_group_counts() {
    let spec = DigitsSpec::default();
    let data = digits::generate(&spec).unwrap();
    assert_eq!(data.train.group_counts(4), spec.train_groups.to_vec());
    assert_eq!(data.val.group_counts(4), vec![100; 4]);
    assert_eq!(data.test.group_counts(4), vec![100; 4]);
    // Waterbirds-like proportions, smallest group at least 8.
    let p = data.train_proportions();
    for (got, want) in p.iter().zip([0.73, 0.04, 0.01, 0.22]) {
        assert!((got - want).abs() < 0.01, "{p:?}");
    }
    assert!(spec.train_groups.iter().all(|&n| n >= 8));
    assert_eq!(data.image_shape, [3, 24, 24]);
    for split in Split::ALL {
        let images = all_images(&data, split);
        assert_eq!(images.len(), data.split(split).len() * 3 * 24 * 24);
        assert!(images.iter().all(|v| (0.0..=1.0).contains(v)));
    }
}

#[test]
fn labels_and_groups_agree_with_the_source_file() {
    let rows = source_rows();
    assert_eq!(rows.len(), 1797);
    let data = digits::generate(&DigitsSpec::default()).unwrap();
    for split in Split::ALL {
        let s = data.split(split);
        for i in 0..s.len() {
            let digit = rows[s.sources[i]].1;
            assert_eq!(s.labels[i], usize::from(digit >= 5));
            assert_eq!(s.groups[i] / 2, s.labels[i]);
        }
    }
}

#[test]
fn source_digits_are_disjoint_across_splits_and_minorities_are_unique() {
    let data = digits::generate(&DigitsSpec::default()).unwrap();
    let sets: Vec<HashSet<usize>> =
        Split::ALL.iter().map(|&s| data.split(s).sources.iter().copied().collect()).collect();
    assert!(sets[0].is_disjoint(&sets[1]));
    assert!(sets[0].is_disjoint(&sets[2]));
    assert!(sets[1].is_disjoint(&sets[2]));
    // val and test use each digit once.
    assert_eq!(sets[1].len(), data.val.len());
    assert_eq!(sets[2].len(), data.test.len());
    // A minority training digit (G1, G2) appears exactly once in train.
    let mut uses: HashMap<usize, usize> = HashMap::new();
    for &s in &data.train.sources {
        *uses.entry(s).or_default() += 1;
    }
    for (i, &g) in data.train.groups.iter().enumerate() {
        if g == 1 || g == 2 {
            assert_eq!(uses[&data.train.sources[i]], 1);
        }
    }
}

#[test]
fn generation_is_deterministic_in_the_seed() {
    let a = digits::generate(&tiny_spec()).unwrap();
    let b = digits::generate(&tiny_spec()).unwrap();
    assert_eq!(a.train, b.train);
    assert_eq!(a.test, b.test);
    let c = digits::generate(&DigitsSpec { seed: 99, ..tiny_spec() }).unwrap();
    assert_ne!(all_images(&a, Split::Train), all_images(&c, Split::Train));
    assert_eq!(all_images(&a, Split::Val), all_images(&b, Split::Val));
}

#[test]
fn checkpoint_round_trip_gives_identical_logits_and_pytorch_layout() {
    let device = cpu();
    let config = ModelConfig::default();
    memscope_core::device::seed(&device, 5);
    let model = config.init(&device).unwrap();
    let data = digits::generate(&tiny_spec()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let sha = checkpoint::save(&model, &path).unwrap();
    let loaded = checkpoint::load(&config, &path, Some(&sha), &device).unwrap();
    let a = eval::logits(&model, &data, Split::Val, &device, &mut Silent).unwrap();
    let b = eval::logits(&loaded, &data, Split::Val, &device, &mut Silent).unwrap();
    assert_eq!(a, b);
    assert!(a.iter().any(|v| *v != 0.0));

    // PyTorch names and layouts: Linear [out, in], BatchNorm weight/bias.
    let mut store = SafetensorsStore::from_file(&path);
    let tensors = store.get_all_tensors().unwrap();
    assert_eq!(tensors["head.weight"].shape.to_vec(), vec![2, 64]);
    assert_eq!(tensors["stage2.block0.conv1.weight"].shape.to_vec(), vec![32, 16, 3, 3]);
    assert!(tensors.contains_key("stem.bn.weight") && tensors.contains_key("stem.bn.running_var"));
}

/// The evaluation path (channels-last batches of 100, each BatchNorm folded into its
/// convolution) against burn's own modules on a plain NCHW tensor of the whole split.
#[test]
fn fast_evaluation_path_computes_the_plain_forward_pass() {
    let device = cpu();
    let exp = Experiment::open(&memscope_core::experiment::demo::locate().unwrap()).unwrap();
    let data = exp.manifest.dataset.load().unwrap();
    let model = exp.load_network(exp.last_epoch(), &device).unwrap();
    let val = &data.val;
    let [c, h, w] = data.image_shape;

    let all: Vec<usize> = (0..val.len()).collect();
    let batch = memscope_core::data::batch::images(&data, Split::Val, &all, &device).unwrap();
    assert_eq!(batch.dims(), [val.len(), c, h, w]);
    let images = all_images(&data, Split::Val);
    assert_eq!(batch.into_data().try_to_vec::<f32>().unwrap(), images);

    let plain = Tensor::<4>::from_data(TensorData::new(images, [val.len(), c, h, w]), &device);
    let expected =
        model.forward(plain, memscope_core::model::Mode::Auto).into_data().try_to_vec::<f32>().unwrap();
    let fast = eval::logits(&model, &data, Split::Val, &device, &mut Silent).unwrap();
    assert_eq!(fast.len(), expected.len());
    let worst = fast.iter().zip(&expected).map(|(a, b)| (a - b).abs() / b.abs().max(1.0)).fold(0.0, f32::max);
    assert!(worst < 1e-4, "largest relative difference {worst}");
    assert_eq!(eval::predictions(&fast, 2), eval::predictions(&expected, 2));
}

#[test]
fn checkpoint_errors_name_the_problem() {
    let device = cpu();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.safetensors");
    let other =
        ModelConfig::SmallResNet(SmallResNetConfig { stage_channels: [8, 16, 32], ..Default::default() });
    checkpoint::save(&other.init(&device).unwrap(), &path).unwrap();
    let err = checkpoint::load(&ModelConfig::default(), &path, None, &device).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("small.safetensors") && msg.to_lowercase().contains("shape"), "{msg}");

    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"not a checkpoint at all").unwrap();
    let msg = format!("{:#}", checkpoint::load(&ModelConfig::default(), &junk, None, &device).unwrap_err());
    assert!(msg.contains("junk.safetensors"), "{msg}");

    let msg =
        format!("{:#}", checkpoint::load(&ModelConfig::default(), &junk, Some("00"), &device).unwrap_err());
    assert!(msg.contains("corrupt"), "{msg}");
}

#[test]
fn tiny_training_raises_train_accuracy_and_records_what_it_measured() {
    let device = cpu();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("exp");
    let plan = TrainPlan {
        name: "tiny".into(),
        dataset: DatasetSpec::SpuriousDigits(tiny_spec()),
        training: TrainSettings {
            epochs: 3,
            batch_size: 32,
            learning_rate: 3e-3,
            seed: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    let data = plan.dataset.load().unwrap();
    let exp = train(&plan, &data, &out, false, &device, &mut |_| {}, &mut Silent).unwrap();
    assert_eq!(exp.epochs().collect::<Vec<_>>(), vec![0, 1, 2, 3]);

    let reopened = Experiment::open(&out).unwrap();
    assert_eq!(reopened.manifest, exp.manifest);
    let mean_train = |epoch: usize| {
        let model = reopened.load_network(epoch, &device).unwrap();
        let logits = eval::logits(&model, &data, Split::Train, &device, &mut Silent).unwrap();
        let preds = eval::predictions(&logits, 2);
        let correct = preds.iter().zip(&data.train.labels).filter(|(p, l)| p == l).count();
        // The manifest's per-group accuracies, recomputed independently from predictions.
        let entry = reopened.checkpoint(epoch).unwrap();
        for g in 0..4 {
            let idx = data.train.indices_of_group(g);
            let ok = idx.iter().filter(|&&i| preds[i] == data.train.labels[i]).count();
            assert_eq!(entry.train_accuracy[g], Some(ok as f64 / idx.len() as f64));
        }
        correct as f64 / data.train.len() as f64
    };
    let (before, after) = (mean_train(0), mean_train(3));
    assert!(after > before + 0.1, "train accuracy {before} -> {after}");

    // An existing experiment is not overwritten unless asked.
    let manifest_before = std::fs::read(out.join("experiment.ron")).unwrap();
    let err = train(&plan, &data, &out, false, &device, &mut |_| {}, &mut Silent).unwrap_err();
    assert!(format!("{err}").contains("--force"), "{err}");
    assert_eq!(std::fs::read(out.join("experiment.ron")).unwrap(), manifest_before);
}

#[test]
fn export_writes_data_and_checkpoints_other_tools_can_read() {
    use memscope_core::experiment::export::export;
    let device = cpu();
    let exp = Experiment::open(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/checkpoints/spurious-digits"
    )))
    .unwrap();
    let data = exp.manifest.dataset.load().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let index = export(&exp, &data, &[0, 40], &[Split::Val], dir.path(), &mut Silent).unwrap();
    assert_eq!(
        index.checkpoints,
        vec![(0, "epoch-000.safetensors".into()), (40, "epoch-040.safetensors".into())]
    );

    // The data file, read with the safetensors crate alone.
    let bytes = std::fs::read(dir.path().join("data-val.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let images = file.tensor("images").unwrap();
    assert_eq!(images.shape(), &[400, 3, 24, 24]);
    let floats: Vec<f32> =
        images.data().chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(floats, all_images(&data, Split::Val));
    let ints = |name: &str| -> Vec<usize> {
        file.tensor(name)
            .unwrap()
            .data()
            .chunks(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as usize)
            .collect()
    };
    assert_eq!(ints("labels"), data.val.labels);
    assert_eq!(ints("groups"), data.val.groups);

    // The checkpoint: the same logits as the experiment's, and a file others may read.
    let exported =
        checkpoint::load(&exp.manifest.model, &dir.path().join("epoch-040.safetensors"), None, &device)
            .unwrap();
    let original = exp.load_network(40, &device).unwrap();
    assert_eq!(
        eval::logits(&exported, &data, Split::Val, &device, &mut Silent).unwrap(),
        eval::logits(&original, &data, Split::Val, &device, &mut Silent).unwrap()
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("export.json")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644);

    // Never into an experiment folder.
    let err = export(&exp, &data, &[40], &[Split::Val], &exp.dir, &mut Silent).unwrap_err();
    assert!(format!("{err}").contains("holds an experiment"), "{err}");

    // A refused epoch writes nothing; a cancelled export leaves no file behind either.
    let fresh = tempfile::tempdir().unwrap();
    let err = export(&exp, &data, &[0, 99], &[Split::Val], fresh.path(), &mut Silent).unwrap_err();
    assert!(format!("{err}").contains("epoch 99 is not in"), "{err}");
    let mut stop_after_one = |done: usize, _: usize| done < 1;
    let err = export(&exp, &data, &[0, 40], &[Split::Val], fresh.path(), &mut stop_after_one).unwrap_err();
    assert!(memscope_core::jobs::is_cancelled(&err));
    let left: Vec<_> = std::fs::read_dir(fresh.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn features_are_what_the_head_reads() {
    let device = cpu();
    let exp = Experiment::open(&memscope_core::experiment::demo::locate().unwrap()).unwrap();
    let data = exp.manifest.dataset.load().unwrap();
    let memscope_core::model::Network::SmallResNet(model) = exp.load_network(40, &device).unwrap() else {
        panic!("the demo is a SmallResNet")
    };
    let network = memscope_core::model::Network::SmallResNet(model.clone());
    let x = memscope_core::data::batch::images(&data, Split::Val, &[0, 1, 2, 150, 399], &device).unwrap();
    let features = network.features(x.clone(), memscope_core::model::Mode::Eval);
    assert_eq!(features.dims(), [5, 64]);
    let by_hand = model.head.forward(features).into_data().try_to_vec::<f32>().unwrap();
    let logits =
        network.forward(x, memscope_core::model::Mode::Eval).into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(by_hand, logits);
}

#[test]
fn stages_are_declared_by_the_model_and_resume_to_the_same_logits() {
    let device = cpu();
    let exp = Experiment::open(&memscope_core::experiment::demo::locate().unwrap()).unwrap();
    let data = exp.manifest.dataset.load().unwrap();
    let network = exp.load_network(40, &device).unwrap();
    let stages: Vec<(String, Option<usize>)> =
        network.layers().into_iter().map(|l| (l.name, l.stage)).collect();
    let expect =
        |name: &str, stage: Option<usize>| assert!(stages.contains(&(name.into(), stage)), "{stages:?}");
    expect("stem.conv", None);
    expect("stage1.block0.conv1", Some(0));
    expect("stage2.block0.shortcut.conv", Some(1));
    expect("stage3.block0.conv2", Some(2));
    expect("head", Some(3));
    let full = eval::logits(&network, &data, Split::Val, &device, &mut Silent).unwrap();
    let cached = eval::boundaries(&network, &data, Split::Val, 100, &device, &mut Silent).unwrap();
    for k in 0..network.stages().len() {
        assert_eq!(
            eval::logits_from(&network, &cached, k, &mut Silent).unwrap(),
            full,
            "resumed at stage {k}"
        );
    }
}

#[test]
fn a_data_set_with_an_unknown_group_or_label_is_refused() {
    use memscope_core::data::{GroupedDataset, SplitData, memory::MemoryPixels};
    let split =
        |groups: Vec<usize>, labels: Vec<usize>| SplitData { sources: vec![0; groups.len()], groups, labels };
    let pixels =
        std::sync::Arc::new(MemoryPixels::new([1, 1, 1], [vec![0.0; 2], vec![0.0], vec![]]).unwrap());
    let build = |train: SplitData| {
        GroupedDataset::new(
            "toy".into(),
            [1, 1, 1],
            vec!["a".into(), "b".into()],
            vec!["g0".into(), "g1".into()],
            [train, split(vec![0], vec![0]), SplitData::default()],
            pixels.clone(),
        )
    };
    assert!(build(split(vec![0, 1], vec![0, 1])).is_ok());
    let err = build(split(vec![0, 2], vec![0, 1])).unwrap_err().to_string();
    assert_eq!(err, "toy: train example 1 has group 2 (valid: 0..=1)");
    let err = build(split(vec![0, 1], vec![5, 1])).unwrap_err().to_string();
    assert_eq!(err, "toy: train example 0 has label 5 (valid: 0..=1)");
    let err = build(SplitData { labels: vec![0], groups: vec![], sources: vec![] }).unwrap_err().to_string();
    assert!(err.contains("1 labels but 0 group ids"), "{err}");
}

/// The experiment writer: a second writer is refused while the first holds the lock, a
/// writer dropped before `finish` leaves nothing behind, and an install interrupted between
/// its two renames is recovered, never deleted.
#[test]
fn experiment_writer_locks_cleans_up_and_recovers() {
    use memscope_core::experiment::{ExperimentWriter, Manifest, TrainSettings as Settings};
    let device = cpu();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("exp");
    let manifest = Manifest {
        format: memscope_core::experiment::FORMAT,
        name: "w".into(),
        model: ModelConfig::default(),
        dataset: DatasetSpec::default(),
        classes: vec!["a".into(), "b".into()],
        groups: vec!["g".into()],
        training: Some(Settings::default()),
        import: None,
        lineage: None,
        checkpoints: vec![],
    };
    let model = ModelConfig::default().init(&device).unwrap();
    let entry = |epoch| memscope_core::experiment::CheckpointEntry {
        epoch,
        file: String::new(),
        sha256: String::new(),
        imported: None,
        train_loss: None,
        train_accuracy: vec![None],
        val_accuracy: vec![None],
        diagnostics: None,
    };

    let mut first = ExperimentWriter::create(&out, manifest.clone(), false).unwrap();
    first.record(&model, entry(0)).unwrap();
    let err = ExperimentWriter::create(&out, manifest.clone(), false).err().unwrap().to_string();
    assert!(err.contains("is being written by another memscope"), "{err}");
    drop(first);
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "a dropped writer left {left:?}");

    let mut writer = ExperimentWriter::create(&out, manifest.clone(), false).unwrap();
    writer.record(&model, entry(0)).unwrap();
    let exp = writer.finish().unwrap();
    assert_eq!(exp.dir, out);
    assert_eq!(Experiment::open(&out).unwrap().manifest.checkpoints.len(), 1);

    // A crash after `out` was moved aside: the next writer restores it, then refuses to
    // replace it without --force.
    let old = dir.path().join(".exp.old");
    std::fs::rename(&out, &old).unwrap();
    let err = ExperimentWriter::create(&out, manifest.clone(), false).err().unwrap().to_string();
    assert!(err.contains("--force"), "{err}");
    assert!(out.join("experiment.ron").is_file() && !old.exists());
    // An `.old` beside a present experiment is reported, not deleted.
    std::fs::create_dir(&old).unwrap();
    let err = ExperimentWriter::create(&out, manifest, true).err().unwrap().to_string();
    assert!(err.contains(".exp.old") && old.exists(), "{err}");
}

/// An image folder behind the data seam, end to end: the demo written as a Waterbirds folder
/// (JPEG), trained on by `train` through `DatasetSpec::Folder`, reopened and evaluated.
#[test]
fn a_model_trains_and_evaluates_on_a_waterbirds_folder() {
    use memscope_core::data::folder::export::{SplitLabels, write_waterbirds};
    use memscope_core::data::folder::{FolderSpec, Layout, Transform};
    let device = cpu();
    let digits = digits::generate(&tiny_spec()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("waterbirds");
    let labels =
        Split::ALL.map(|s| SplitLabels { labels: &digits.split(s).labels, groups: &digits.split(s).groups });
    let pixels = |s: Split, idx: &[usize]| digits.images(s, idx);
    write_waterbirds(&folder, 32, &digits.class_names, digits.image_shape, labels, &pixels).unwrap();

    let spec =
        FolderSpec { layout: Layout::Waterbirds, path: folder.clone(), transform: Transform::waterbirds(24) };
    let plan = TrainPlan {
        name: "folder".into(),
        dataset: DatasetSpec::Folder(spec),
        training: TrainSettings { epochs: 2, batch_size: 50, seed: 3, ..Default::default() },
        ..Default::default()
    };
    let data = plan.dataset.load().unwrap();
    assert_eq!(data.image_shape, [3, 24, 24]);
    assert_eq!(data.train.group_counts(4), tiny_spec().train_groups.to_vec());
    let out = dir.path().join("exp");
    let exp = train(&plan, &data, &out, false, &device, &mut |_| {}, &mut Silent).unwrap();
    assert_eq!(exp.epochs().collect::<Vec<_>>(), vec![0, 1, 2]);

    // Reopened: the manifest names the folder, and evaluation matches the recorded accuracies.
    let reopened = Experiment::open(&out).unwrap();
    let again = reopened.manifest.dataset.load().unwrap();
    let model = reopened.load_network(2, &device).unwrap();
    let report = eval::evaluate(&model, &again, Split::Val, &device, &mut Silent).unwrap();
    let recorded = &reopened.checkpoint(2).unwrap().val_accuracy;
    assert_eq!(&report.groups.iter().map(|g| g.accuracy).collect::<Vec<_>>(), recorded);
}
