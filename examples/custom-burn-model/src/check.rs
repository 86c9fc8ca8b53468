//! `check RUN EPOCH SPLIT NEURONS`: the per-group correct counts of epoch EPOCH's burn record
//! (read from the run folder by burn itself, not from memscope's copy) on SPLIT, before and
//! after the neurons `layer:index,...` are zeroed by hand (a conv's output filter, a linear
//! layer's output unit; weights only, as memscope's zero-out), as one JSON line. The script
//! compares it with what `custom-burn-model intervene --format json` says.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use memscope_core::data::Split;
use memscope_core::device::DeviceSpec;

use crate::data::correct_per_group;
use crate::model::TinyCnn;

pub fn run(args: &[String]) -> Result<()> {
    let [run, epoch, split, neurons] = args else {
        bail!("usage: custom-burn-model check RUN EPOCH SPLIT LAYER:INDEX[,LAYER:INDEX...]");
    };
    let epoch: usize = epoch.parse().with_context(|| format!("EPOCH '{epoch}'"))?;
    let split: Split = split.parse()?;
    let device = DeviceSpec::Cpu.device()?;
    let dataset = crate::dataset_spec().load()?;
    let path = crate::train::record_path(&PathBuf::from(run), epoch);
    let model = TinyCnn::new(dataset.image_shape[0], dataset.class_names.len(), &device)
        .try_load_file(&path)
        .map_err(|e| anyhow!("{}: {e}", path.display()))?
        .valid();
    let before = correct_per_group(&dataset, split, &device, |x| model.forward(x))?;
    let mut zeroed = model;
    for id in neurons.split(',') {
        let (layer, index) =
            id.split_once(':').with_context(|| format!("neuron '{id}' is not LAYER:INDEX"))?;
        let index: usize = index.parse().with_context(|| format!("neuron '{id}'"))?;
        zeroed = zero(zeroed, layer, index)?;
    }
    let after = correct_per_group(&dataset, split, &device, |x| zeroed.forward(x))?;
    println!("{{\"before\": {before:?}, \"after\": {after:?}}}");
    Ok(())
}

/// `model` with output `index` of `layer` zeroed.
fn zero(mut model: TinyCnn, layer: &str, index: usize) -> Result<TinyCnn> {
    match layer {
        "conv1" => model.conv1 = zero_filter(model.conv1, index),
        "conv2" => model.conv2 = zero_filter(model.conv2, index),
        "conv3" => model.conv3 = zero_filter(model.conv3, index),
        "head" => model.head = zero_unit(model.head, index),
        other => bail!("no layer '{other}' in TinyCnn (conv1, conv2, conv3, head)"),
    }
    Ok(model)
}

/// A conv weight is `[out, in, kh, kw]`: filter `index` is row `index`.
fn zero_filter(mut conv: Conv2d, index: usize) -> Conv2d {
    let weight = conv.weight.val();
    let [_, i, h, w] = weight.dims();
    let zeros = Tensor::<4>::zeros([1, i, h, w], &weight.device());
    conv.weight = Param::from_tensor(weight.slice_assign([index..index + 1, 0..i, 0..h, 0..w], zeros));
    conv
}

/// burn keeps a linear weight as `[in, out]`: output `index` is column `index`.
fn zero_unit(mut linear: Linear, index: usize) -> Linear {
    let weight = linear.weight.val();
    let [i, _] = weight.dims();
    let zeros = Tensor::<2>::zeros([i, 1], &weight.device());
    linear.weight = Param::from_tensor(weight.slice_assign([0..i, index..index + 1], zeros));
    linear
}
