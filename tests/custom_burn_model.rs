//! A burn user's own module (`memscope_core::model::BurnClassifier`), checked against plain
//! burn: a small CNN with BatchNorm, written here, trained a few steps with burn's optimizer,
//! saved with burn's recorder, recorded as an experiment. memscope's zero-out gives the
//! per-group counts of the same zero-out done by hand on the record burn wrote, and its
//! gradient score equals the norm of the loss's finite differences. (The burn-train example,
//! examples/custom-burn-model, is run by scripts/custom-burn-model.)

mod common;

use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::relu;
use memscope_core::data::{DatasetSpec, DigitsSpec, GroupedDataset, Split, batch};
use memscope_core::device::DeviceSpec;
use memscope_core::experiment::Experiment;
use memscope_core::experiment::custom::{CustomRun, create};
use memscope_core::jobs::Silent;
use memscope_core::model::{BurnClassifier, ModelConfig, custom};
use memscope_core::neurons::scores::{Criterion, Sampling};
use memscope_core::neurons::select::Selection;
use memscope_core::session::Session;
use memscope_core::studies::intervention::{self, InterventionSpec};

#[derive(Module, Debug)]
struct Net {
    conv: Conv2d,
    norm: BatchNorm,
    mixer: Conv2d,
    out: Linear,
}

impl Net {
    fn new(device: &Device) -> Net {
        let conv = |i: usize, o: usize| {
            Conv2dConfig::new([i, o], [3, 3])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        Net {
            conv: conv(3, 6),
            norm: BatchNormConfig::new(6).init(device),
            mixer: conv(6, 8),
            out: LinearConfig::new(8, 2).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = relu(self.norm.forward(self.conv.forward(x))); // [b, 6, 12, 12]
        let x = relu(self.mixer.forward(x)); // [b, 8, 6, 6]
        self.out.forward(x.mean_dim(3).mean_dim(2).flatten(1, 3)) // [b, 2]
    }
}

impl BurnClassifier for Net {
    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward(images)
    }
}

fn digits() -> (DatasetSpec, GroupedDataset) {
    let spec = DatasetSpec::SpuriousDigits(DigitsSpec {
        train_groups: [300, 30, 10, 100],
        eval_per_group: 40,
        ..DigitsSpec::default()
    });
    let data = spec.load().unwrap();
    (spec, data)
}

/// Adam for `steps` batches of 64 on the train split (BatchNorm on batch statistics, its
/// running statistics updated), as a burn user trains.
fn trained(data: &GroupedDataset, steps: usize, device: &Device) -> Net {
    let autodiff = device.clone().autodiff();
    let mut model = Net::new(&autodiff);
    let mut optim = AdamConfig::new().init();
    let n = data.split(Split::Train).len();
    for step in 0..steps {
        let chunk: Vec<usize> = (0..64).map(|i| (step * 64 + i * 7) % n).collect();
        let x = batch::images(data, Split::Train, &chunk, &autodiff).unwrap();
        let y = batch::labels_of(data, Split::Train, &chunk, &autodiff);
        let loss = CrossEntropyLossConfig::new().init(&autodiff).forward(model.forward(x), y);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(3e-3, model, grads);
    }
    model
}

/// Per-group correct counts of `model` (plain burn, eval) on `split`.
fn counts(model: &Net, data: &GroupedDataset, split: Split, device: &Device) -> Vec<usize> {
    let all: Vec<usize> = (0..data.split(split).len()).collect();
    let logits = model.forward(batch::images(data, split, &all, device).unwrap());
    let predicted: Vec<i64> =
        logits.argmax(1).flatten::<1>(0, 1).into_data().convert::<i64>().try_to_vec::<i64>().unwrap();
    let mut correct = vec![0; data.group_names.len()];
    for (i, p) in predicted.into_iter().enumerate() {
        if p as usize == data.split(split).labels[i] {
            correct[data.split(split).groups[i]] += 1;
        }
    }
    correct
}

/// `model` with output `index` of the conv `layer` (`conv` or `mixer`) zeroed by hand.
/// Zeroes unit `index` of `layer` by hand: a filter of a conv, a row of the head (burn keeps a
/// Linear's weight as `[in, out]`, so the head's unit is a column there). Weights only, as
/// memscope's zero-out.
fn zero_filter(mut model: Net, layer: &str, index: usize) -> Net {
    if layer == "out" {
        let weight = model.out.weight.val();
        let [i, _] = weight.dims();
        let zeros = Tensor::<2>::zeros([i, 1], &weight.device());
        model.out.weight = Param::from_tensor(weight.slice_assign([0..i, index..index + 1], zeros));
        return model;
    }
    let conv = if layer == "conv" { &mut model.conv } else { &mut model.mixer };
    let weight = conv.weight.val();
    let [_, i, h, w] = weight.dims();
    let zeros = Tensor::<4>::zeros([1, i, h, w], &weight.device());
    conv.weight = Param::from_tensor(weight.slice_assign([index..index + 1, 0..i, 0..h, 0..w], zeros));
    model
}

/// The mean cross-entropy (f64) of `model` over `indices` of the train split.
fn loss(model: &Net, data: &GroupedDataset, indices: &[usize], device: &Device) -> f64 {
    let logits = model.forward(batch::images(data, Split::Train, indices, device).unwrap());
    let logits: Vec<f32> = logits.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    let labels = &data.split(Split::Train).labels;
    let total: f64 = logits
        .chunks(2)
        .zip(indices)
        .map(|(row, &i)| {
            let (a, b) = (f64::from(row[0]), f64::from(row[1]));
            let max = a.max(b);
            let log_sum = max + ((a - max).exp() + (b - max).exp()).ln();
            log_sum - if labels[i] == 0 { a } else { b }
        })
        .sum();
    total / indices.len() as f64
}

/// The L2 norm of the central finite differences of the loss over filter `index` of `layer`
/// (float64 sums of a float32 forward: a step of 1e-2 keeps rounding below the tolerance).
fn finite_difference_norm(
    model: &Net,
    layer: &str,
    index: usize,
    data: &GroupedDataset,
    group: usize,
    device: &Device,
) -> f64 {
    let indices = data.split(Split::Train).indices_of_group(group);
    let weight = if layer == "conv" { model.conv.weight.val() } else { model.mixer.weight.val() };
    let [_, i, h, w] = weight.dims();
    let eps = 1e-2f32;
    let mut sum = 0.0;
    for flat in 0..i * h * w {
        let (c, y, x) = (flat / (h * w), flat / w % h, flat % w);
        let at = |delta: f32| {
            let mut moved = model.clone();
            let bumped = weight.clone().slice_assign(
                [index..index + 1, c..c + 1, y..y + 1, x..x + 1],
                weight.clone().slice([index..index + 1, c..c + 1, y..y + 1, x..x + 1]) + delta,
            );
            match layer {
                "conv" => moved.conv.weight = Param::from_tensor(bumped),
                _ => moved.mixer.weight = Param::from_tensor(bumped),
            }
            loss(&moved, data, &indices, device)
        };
        let g = (at(eps) - at(-eps)) / (2.0 * f64::from(eps));
        sum += g * g;
    }
    sum.sqrt()
}

/// Trains, saves epochs 0 and 1 with burn's recorder, records them as an experiment.
fn experiment(dir: &Path, data: &GroupedDataset, spec: DatasetSpec, device: &Device) -> Experiment {
    custom::register("test-net", Net::new);
    // Burn's initialisers draw from libtorch's generator: seeded, the test sees one model.
    memscope_core::device::seed(device, 0);
    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    Net::new(device).save_file(run.join("0.bpk")).unwrap();
    trained(data, 40, device).save_file(run.join("1.bpk")).unwrap();
    let custom = CustomRun {
        name: "test".into(),
        model: "test-net".into(),
        dataset: spec,
        epochs: vec![(0, run.join("0.bpk")), (1, run.join("1.bpk"))],
    };
    create(&custom, data, &dir.join("exp"), false, device, &mut Silent).unwrap()
}

#[test]
fn a_users_burn_module_gives_plain_burns_counts_and_gradients() {
    let device = DeviceSpec::Cpu.device().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (spec, data) = digits();
    let exp = experiment(tmp.path(), &data, spec, &device);
    let ModelConfig::Custom(config) = &exp.manifest.model else { panic!("{:?}", exp.manifest.model) };
    let names: Vec<&str> = config.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["conv", "mixer", "out"]);
    assert!(config.layers[2].head && !config.features);

    let reopened = Experiment::open(&exp.dir).unwrap();
    let mut session = Session::new(reopened, data.clone(), device.clone()).unwrap();
    let group = 1;
    let spec = InterventionSpec { split: Split::Val, repeats: 1, ..InterventionSpec::neurons(1) }
        .criterion(Criterion::Gradient {
            group: Some(group),
            split: Split::Train,
            sampling: Sampling::All,
            seed: 0,
        })
        .select(Selection::TopK(3));
    let result = intervention::run(&mut session, &spec, &mut Silent).unwrap();

    // burn's own reading of the record burn wrote, zeroed by hand.
    let by_burn = Net::new(&device).load_file(tmp.path().join("run/1.bpk")).valid();
    let before = counts(&by_burn, &data, Split::Val, &device);
    let memscope_before: Vec<usize> = result.before.groups.iter().map(|g| g.correct).collect();
    assert_eq!(memscope_before, before);
    let mut zeroed = by_burn.clone();
    for n in &result.neurons {
        zeroed = zero_filter(zeroed, &n.id.layer, n.id.index);
    }
    let json = serde_json::to_value(&result).unwrap();
    assert_eq!(common::correct_after(&json), counts(&zeroed, &data, Split::Val, &device));

    // The top neuron's gradient score is the norm of the loss's finite differences.
    let top = &result.neurons[0];
    let expected = finite_difference_norm(&by_burn, &top.id.layer, top.id.index, &data, group, &device);
    let got = f64::from(top.score);
    assert!(
        (got - expected).abs() <= 0.02 * expected + 1e-6,
        "gradient score {got}, finite differences {expected}"
    );
}

#[test]
fn an_unregistered_model_and_mitigation_are_refused_in_one_line() {
    let device = DeviceSpec::Cpu.device().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (spec, data) = digits();
    let exp = experiment(tmp.path(), &data, spec, &device);
    let mut manifest = exp.manifest.clone();
    if let ModelConfig::Custom(c) = &mut manifest.model {
        c.name = "not-registered".into();
    }
    let other = Experiment { dir: exp.dir.clone(), manifest };
    let err = format!("{:#}", other.load_network(1, &device).unwrap_err());
    assert!(err.contains("no burn model is registered as 'not-registered'"), "{err}");
    let err =
        memscope_core::mitigate::check_destination(&exp, &tmp.path().join("m")).unwrap_err().to_string();
    assert!(err.contains("FEATURES = false"), "{err}");
}
