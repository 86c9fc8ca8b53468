//! Evaluation: logits, predictions and per-group accuracy with the labelled summaries
//! (worst group, training-weighted mean, example-weighted average).

use anyhow::{Result, anyhow};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{GroupedDataset, Split, SplitData, batch};
use crate::model::Network;

/// Examples per forward pass during evaluation: on the demo (3x24x24, channels-last, 2 threads)
/// 100 and 200 were fastest and 400 a quarter slower (see BENCHMARKS.md). Larger images will
/// want a budget in pixels rather than examples.
pub const EVAL_BATCH: usize = 100;

/// Logits of every example of `split`, row-major `[n, classes]`. The model must be on a
/// plain (non-autodiff) device so BatchNorm uses its running statistics.
pub fn logits(model: &Network, split: &SplitData, shape: [usize; 3], device: &Device) -> Result<Vec<f32>> {
    let mut out = Vec::new();
    for start in (0..split.len()).step_by(EVAL_BATCH) {
        let end = (start + EVAL_BATCH).min(split.len());
        let x = batch::images(split, shape, start..end, device);
        let data = model.forward(x).into_data();
        out.extend(data.try_to_vec::<f32>().map_err(|e| anyhow!("cannot read logits: {e:?}"))?);
    }
    Ok(out)
}

/// Per batch of [`EVAL_BATCH`] examples, the activations at the model's stage boundaries.
pub fn boundaries(
    model: &Network,
    split: &SplitData,
    shape: [usize; 3],
    device: &Device,
) -> Vec<[Tensor<4>; 4]> {
    (0..split.len())
        .step_by(EVAL_BATCH)
        .map(|start| {
            let end = (start + EVAL_BATCH).min(split.len());
            model.boundaries(batch::images(split, shape, start..end, device))
        })
        .collect()
}

/// Logits resumed from cached boundary activations (`k` as in `Network::forward_from`).
/// Identical to [`logits`] when the layers before boundary `k` are unchanged.
pub fn logits_from(model: &Network, cached: &[[Tensor<4>; 4]], k: usize) -> Result<Vec<f32>> {
    let mut out = Vec::new();
    for batch in cached {
        let data = model.forward_from(k, batch[k].clone()).into_data();
        out.extend(data.try_to_vec::<f32>().map_err(|e| anyhow!("cannot read logits: {e:?}"))?);
    }
    Ok(out)
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
pub fn accuracy_report(
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
        groups[g].examples += 1;
        groups[g].correct += usize::from(label == pred);
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

/// Evaluates `model` on `split` of `dataset`.
pub fn evaluate(
    model: &Network,
    dataset: &GroupedDataset,
    split: Split,
    device: &Device,
) -> Result<AccuracyReport> {
    let data = dataset.split(split);
    let logits = logits(model, data, dataset.image_shape, device)?;
    let preds = predictions(&logits, dataset.class_names.len());
    Ok(accuracy_report(split, data, &preds, &dataset.group_names, &dataset.train_proportions()))
}
