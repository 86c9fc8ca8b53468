//! Several experiments side by side (a parent ERM run, its mitigations, over seeds):
//! worst-group, train-weighted mean and average accuracy on val and test at two model
//! selections (the last epoch; the epoch with the best val worst-group accuracy), per
//! experiment and as mean ± std per method.

use anyhow::{Result, ensure};
use burn::prelude::*;
use serde::Serialize;

use crate::data::{GroupedDataset, Split};
use crate::eval::{AccuracyReport, evaluate, summarize};
use crate::experiment::Experiment;
use crate::jobs::{Progress, Within};

/// How the epoch of an experiment is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Selection {
    /// The last epoch (no model selection).
    LastEpoch,
    /// The epoch with the highest worst-group accuracy on val (uses val group labels;
    /// ties to the earliest).
    BestValWorstGroup,
}

impl Selection {
    pub const ALL: [Selection; 2] = [Selection::LastEpoch, Selection::BestValWorstGroup];

    pub fn describe(self) -> &'static str {
        match self {
            Selection::LastEpoch => "last epoch",
            Selection::BestValWorstGroup => "best val worst-group",
        }
    }
}

/// One experiment at one selected epoch.
#[derive(Clone, Debug, Serialize)]
pub struct Selected {
    pub selection: Selection,
    pub epoch: usize,
    pub val: AccuracyReport,
    pub test: AccuracyReport,
}

/// One experiment's rows.
#[derive(Clone, Debug, Serialize)]
pub struct ExperimentRow {
    pub experiment: String,
    pub name: String,
    /// "erm (parent)" for an experiment no mitigation wrote.
    pub method: String,
    /// Group labels the training read ("none", "train groups", "val groups").
    pub labels: String,
    pub seed: Option<u64>,
    /// The parent and its start epoch, for a mitigated experiment.
    pub parent: Option<String>,
    pub start_epoch: Option<usize>,
    pub epochs: usize,
    /// The method's settings and the training settings without the seed (runs pool into one
    /// method row only when these agree).
    pub settings: String,
    pub selected: Vec<Selected>,
}

/// Mean and sample standard deviation (n − 1; none for one run) of a metric over runs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Spread {
    pub mean: f64,
    pub std: Option<f64>,
}

impl Spread {
    fn of(values: &[f64]) -> Option<Spread> {
        if values.is_empty() {
            return None;
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std = (values.len() > 1)
            .then(|| (values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0)).sqrt());
        Some(Spread { mean, std })
    }
}

/// The three summaries of one split.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SplitSpread {
    pub worst_group: Option<Spread>,
    pub mean_train_weighted: Option<Spread>,
    pub average: Option<Spread>,
}

/// A method over its runs (seeds), at one selection.
#[derive(Clone, Debug, Serialize)]
pub struct MethodRow {
    pub method: String,
    pub labels: String,
    /// Checkpoints after the start (fine-tuning epochs; DFR: 1).
    pub epochs: usize,
    pub selection: Selection,
    pub runs: usize,
    pub seeds: Vec<u64>,
    pub val: SplitSpread,
    pub test: SplitSpread,
}

/// The comparison.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub data: String,
    pub val_examples: usize,
    pub test_examples: usize,
    pub methods: Vec<MethodRow>,
    pub experiments: Vec<ExperimentRow>,
}

/// Worst-group accuracy of per-group accuracies (None where a group is empty).
fn worst(accuracies: &[Option<f64>]) -> Option<f64> {
    summarize(accuracies, &vec![1.0; accuracies.len()]).0.map(|w| w.1)
}

/// The epoch with the best val worst-group accuracy: from the accuracies each experiment
/// recorded when every epoch has them, else by evaluating every epoch.
fn best_val_epoch(
    experiment: &Experiment,
    (dataset, device): (&GroupedDataset, &Device),
    cache: &mut Vec<(usize, AccuracyReport)>,
    progress: &mut dyn Progress,
) -> Result<usize> {
    let mut best: Option<(usize, f64)> = None;
    for entry in &experiment.manifest.checkpoints {
        let accuracy = if entry.val_accuracy.is_empty() {
            let network = experiment.load_network(entry.epoch, device)?;
            let report = evaluate(&network, dataset, Split::Val, device, progress)?;
            let w = report.worst_group_accuracy;
            cache.push((entry.epoch, report));
            w
        } else {
            worst(&entry.val_accuracy)
        };
        let w = accuracy.unwrap_or(f64::NEG_INFINITY);
        if best.is_none_or(|(_, b)| w > b) {
            best = Some((entry.epoch, w));
        }
    }
    Ok(best.map(|b| b.0).unwrap_or_else(|| experiment.last_epoch()))
}

/// Compares `experiments` (which must share one data set and its groups) on `dataset`.
pub fn compare(
    experiments: &[Experiment],
    dataset: &GroupedDataset,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<Comparison> {
    ensure!(!experiments.is_empty(), "nothing to compare");
    let first = &experiments[0];
    for other in &experiments[1..] {
        ensure!(
            other.manifest.dataset == first.manifest.dataset
                && other.manifest.groups == first.manifest.groups,
            "{} and {} were trained on different data: compare needs one data set",
            first.dir.display(),
            other.dir.display()
        );
    }
    let mut rows = Vec::new();
    let n = experiments.len();
    for (i, experiment) in experiments.iter().enumerate() {
        let lineage = experiment.manifest.lineage.as_ref();
        let mut cache = Vec::new();
        let mut selected = Vec::new();
        for selection in Selection::ALL {
            let epoch = match selection {
                Selection::LastEpoch => experiment.last_epoch(),
                Selection::BestValWorstGroup => best_val_epoch(
                    experiment,
                    (dataset, device),
                    &mut cache,
                    &mut Within::new(progress, i, n),
                )?,
            };
            let network = experiment.load_network(epoch, device)?;
            let mut pass = Within::new(progress, i, n);
            selected.push(Selected {
                selection,
                epoch,
                val: evaluate(&network, dataset, Split::Val, device, &mut pass)?,
                test: evaluate(&network, dataset, Split::Test, device, &mut pass)?,
            });
        }
        rows.push(ExperimentRow {
            experiment: experiment.dir.display().to_string(),
            name: experiment.manifest.name.clone(),
            method: lineage.map(|l| l.method.label()).unwrap_or_else(|| "erm (parent)".into()),
            labels: lineage.map(|l| l.labels.to_string()).unwrap_or_else(|| "none".into()),
            seed: lineage.map(|l| l.seed).or_else(|| experiment.manifest.training.as_ref().map(|t| t.seed)),
            parent: lineage.map(|l| l.parent.clone()),
            start_epoch: lineage.map(|l| l.start_epoch),
            epochs: experiment.manifest.checkpoints.len(),
            settings: settings_key(experiment),
            selected,
        });
        progress.report(i + 1, experiments.len())?;
    }
    Ok(Comparison {
        data: dataset.name.clone(),
        val_examples: dataset.val.len(),
        test_examples: dataset.test.len(),
        methods: method_rows(&rows),
        experiments: rows,
    })
}

/// The method and training settings of `experiment` without its seed, as text.
fn settings_key(experiment: &Experiment) -> String {
    let lineage = experiment.manifest.lineage.as_ref().map(|l| &l.method);
    let training = experiment
        .manifest
        .training
        .as_ref()
        .map(|t| crate::experiment::TrainSettings { seed: 0, ..t.clone() });
    let mut text = serde_json::to_string(&(lineage, training)).unwrap_or_default();
    if lineage.is_none() {
        // A parent ERM run: its own settings are part of what it is.
        text.push_str(&experiment.manifest.name);
    }
    text
}

/// Runs of one method (same label, group labels, parent, start and settings but the seed)
/// pooled per selection.
fn method_rows(rows: &[ExperimentRow]) -> Vec<MethodRow> {
    type Key = (String, String, Option<String>, Option<usize>, String, usize);
    let key_of = |r: &ExperimentRow| -> Key {
        (r.method.clone(), r.labels.clone(), r.parent.clone(), r.start_epoch, r.settings.clone(), r.epochs)
    };
    let mut keys: Vec<Key> = Vec::new();
    for r in rows {
        let key = key_of(r);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    let mut out = Vec::new();
    for key in keys {
        let runs: Vec<&ExperimentRow> = rows.iter().filter(|r| key_of(r) == key).collect();
        for (s, selection) in Selection::ALL.into_iter().enumerate() {
            let split = |get: &dyn Fn(&Selected) -> &AccuracyReport| {
                let collect = |metric: &dyn Fn(&AccuracyReport) -> Option<f64>| {
                    Spread::of(&runs.iter().filter_map(|r| metric(get(&r.selected[s]))).collect::<Vec<_>>())
                };
                SplitSpread {
                    worst_group: collect(&|a| a.worst_group_accuracy),
                    mean_train_weighted: collect(&|a| a.mean_accuracy_train_weighted),
                    average: collect(&|a| a.average_accuracy),
                }
            };
            out.push(MethodRow {
                method: key.0.clone(),
                labels: key.1.clone(),
                epochs: key.5.saturating_sub(1),
                selection,
                runs: runs.len(),
                seeds: runs.iter().filter_map(|r| r.seed).collect(),
                val: split(&|x| &x.val),
                test: split(&|x| &x.test),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_the_mean_and_sample_deviation() {
        let s = Spread::of(&[0.5, 0.7, 0.9]).unwrap();
        assert!((s.mean - 0.7).abs() < 1e-12);
        assert!((s.std.unwrap() - 0.2).abs() < 1e-12);
        assert_eq!(Spread::of(&[0.4]).unwrap().std, None);
    }
}
