//! Evaluation: logits, predictions and per-group accuracy with the labelled summaries
//! (worst group, training-weighted mean, example-weighted average).

use anyhow::{Context, Result, anyhow};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::batch::{self, EVAL_BATCH};
use crate::data::{GroupedDataset, Split, SplitData};
use crate::device::{Pass, guard};
use crate::jobs::Progress;
use crate::model::{Activation, Mode, Network};

/// Logits of the examples `indices` of `split`, row-major `[n, classes]`, in passes of
/// `batch` examples; `progress` hears of each pass and may stop them. The model must be on a
/// plain (non-autodiff) device.
pub fn logits_of(
    model: &Network,
    dataset: &GroupedDataset,
    split: Split,
    indices: &[usize],
    batch: usize,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<Vec<f32>> {
    let passes = indices.len().div_ceil(batch.max(1));
    let mut out = Vec::with_capacity(passes);
    batch::prefetched(
        dataset,
        split,
        indices.chunks(batch.max(1)),
        |_, _| {},
        |chunk, pixels| {
            out.push(guard(Pass::Evaluation, chunk.len(), device, || {
                model.forward(batch::from_chw(pixels, chunk.len(), dataset.image_shape, device), Mode::Eval)
            })?);
            Ok(progress.report(out.len(), passes)?)
        },
    )?;
    guard(Pass::Evaluation, batch, device, || read(out))?
}

/// Logits of every example of `split` in passes of [`EVAL_BATCH`].
pub fn logits(
    model: &Network,
    dataset: &GroupedDataset,
    split: Split,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<Vec<f32>> {
    let all: Vec<usize> = (0..dataset.split(split).len()).collect();
    logits_of(model, dataset, split, &all, EVAL_BATCH, device, progress)
}

/// The logits of every pass, row after row: kept on the device until all are computed and
/// read at once (on CUDA a read per pass would make each wait for the GPU).
fn read(passes: Vec<Tensor<2>>) -> Result<Vec<f32>> {
    if passes.is_empty() {
        return Ok(Vec::new());
    }
    let logits = Tensor::cat(passes, 0);
    logits.into_data().try_to_vec::<f32>().map_err(|e| anyhow!("cannot read logits: {e:?}"))
}

/// Per pass of `batch` examples over `split`, the activations entering the model's stages.
pub fn boundaries(
    model: &Network,
    dataset: &GroupedDataset,
    split: Split,
    batch: usize,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<Vec<Vec<Activation>>> {
    let all: Vec<usize> = (0..dataset.split(split).len()).collect();
    let passes = all.len().div_ceil(batch.max(1));
    let mut out = Vec::with_capacity(passes);
    for chunk in all.chunks(batch.max(1)) {
        let pass = || -> Result<_> { Ok(model.boundaries(batch::images(dataset, split, chunk, device)?)) };
        out.push(guard(Pass::Evaluation, chunk.len(), device, pass)??);
        progress.report(out.len(), passes)?;
    }
    Ok(out)
}

/// Logits resumed from cached boundary activations (`k` as in `Network::forward_from`), one
/// report to `progress` per cached pass. Identical to [`logits`] when the layers before stage
/// `k` are unchanged.
pub fn logits_from(
    model: &Network,
    cached: &[Vec<Activation>],
    k: usize,
    progress: &mut dyn Progress,
) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(cached.len());
    let mut largest = 0;
    for batch in cached {
        let x = batch.get(k).with_context(|| format!("no cached activation for stage {k}"))?;
        let (examples, device) = (x.examples(), x.device());
        largest = largest.max(examples);
        out.push(guard(Pass::Evaluation, examples, &device, || model.forward_from(k, x.clone()))??);
        progress.report(out.len(), cached.len())?;
    }
    match out.first() {
        Some(first) => {
            let device = first.device();
            guard(Pass::Evaluation, largest, &device, || read(out))?
        }
        None => Ok(Vec::new()),
    }
}

/// The arg-max class of each row of `logits` (ties go to the lower class).
pub fn predictions(logits: &[f32], classes: usize) -> Vec<usize> {
    logits
        .chunks(classes)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (i, &v)| if v > best.1 { (i, v) } else { best })
                .0
        })
        .collect()
}

/// Accuracy on one group of one split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupAccuracy {
    pub group: usize,
    pub name: String,
    pub examples: usize,
    pub correct: usize,
    /// `correct / examples`; `None` when the split has no example of this group.
    pub accuracy: Option<f64>,
}

/// Per-group accuracy on a split with its summaries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccuracyReport {
    pub split: Split,
    pub groups: Vec<GroupAccuracy>,
    /// The group with the lowest accuracy among non-empty groups.
    pub worst_group: Option<usize>,
    pub worst_group_accuracy: Option<f64>,
    /// Group accuracies weighted by the TRAINING split's group proportions, on every split
    /// (the convention of GroupDRO, WILDS `adj_acc_avg`, DFR and the authors' code).
    pub mean_accuracy_train_weighted: Option<f64>,
    /// Plain accuracy over all examples of this split.
    pub average_accuracy: Option<f64>,
}

/// The worst group (index, accuracy) among groups with an accuracy, and the mean of the
/// accuracies weighted by `weights`, re-normalised over the groups present.
pub fn summarize(accuracies: &[Option<f64>], weights: &[f64]) -> (Option<(usize, f64)>, Option<f64>) {
    let present: Vec<(usize, f64, f64)> =
        accuracies.iter().zip(weights).enumerate().filter_map(|(g, (a, &w))| a.map(|a| (g, a, w))).collect();
    let worst = present.iter().map(|&(g, a, _)| (g, a)).min_by(|a, b| a.1.total_cmp(&b.1));
    let weight: f64 = present.iter().map(|p| p.2).sum();
    let mean = (weight > 0.0).then(|| present.iter().map(|&(_, a, w)| a * w).sum::<f64>() / weight);
    (worst, mean)
}

/// Scores `predictions` of the examples of `split` against their labels.
pub(crate) fn accuracy_report(
    split: Split,
    data: &SplitData,
    predictions: &[usize],
    group_names: &[String],
    train_proportions: &[f64],
) -> AccuracyReport {
    let mut groups: Vec<GroupAccuracy> = group_names
        .iter()
        .enumerate()
        .map(|(group, name)| GroupAccuracy {
            group,
            name: name.clone(),
            examples: 0,
            correct: 0,
            accuracy: None,
        })
        .collect();
    for ((&g, &label), &pred) in data.groups.iter().zip(&data.labels).zip(predictions) {
        if let Some(group) = groups.get_mut(g) {
            group.examples += 1;
            group.correct += usize::from(label == pred);
        }
    }
    for g in &mut groups {
        g.accuracy = (g.examples > 0).then(|| g.correct as f64 / g.examples as f64);
    }
    let accuracies: Vec<Option<f64>> = groups.iter().map(|g| g.accuracy).collect();
    let (worst, mean) = summarize(&accuracies, train_proportions);
    let total: usize = groups.iter().map(|g| g.examples).sum();
    let correct: usize = groups.iter().map(|g| g.correct).sum();
    AccuracyReport {
        split,
        worst_group: worst.map(|w| w.0),
        worst_group_accuracy: worst.map(|w| w.1),
        mean_accuracy_train_weighted: mean,
        average_accuracy: (total > 0).then(|| correct as f64 / total as f64),
        groups,
    }
}

/// Scores the arg-max of `logits` (every example of `split`, in order) against the labels.
pub(crate) fn report_from_logits(dataset: &GroupedDataset, split: Split, logits: &[f32]) -> AccuracyReport {
    let preds = predictions(logits, dataset.class_names.len());
    accuracy_report(split, dataset.split(split), &preds, &dataset.group_names, &dataset.train_proportions())
}

/// Evaluates `model` on `split` of `dataset`; `progress` hears of each pass.
pub fn evaluate(
    model: &Network,
    dataset: &GroupedDataset,
    split: Split,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<AccuracyReport> {
    Ok(report_from_logits(dataset, split, &logits(model, dataset, split, device, progress)?))
}
