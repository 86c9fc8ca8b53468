//! Several experiments side by side (a parent ERM run, its mitigations, over seeds):
//! worst-group, train-weighted mean and average accuracy on val and test at two model
//! selections (the last epoch; the epoch with the best val worst-group accuracy), per
//! experiment and as mean ± std per method.

use std::path::Path;

use anyhow::{Result, ensure};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{GroupedDataset, Split};
use crate::eval::{AccuracyReport, evaluate, summarize};
use crate::experiment::Experiment;
use crate::experiment::lineage::{LabelUse, Method};
use crate::jobs::{Progress, Within};

/// How the epoch of an experiment is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Selection {
    /// The last epoch (no model selection).
    LastEpoch,
    /// The epoch with the highest worst-group accuracy on val (uses val group labels;
    /// ties to the earliest). A mitigated run's epoch 0 is its unchanged parent, not a
    /// candidate: the parent has its own row.
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
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Selected {
    pub selection: Selection,
    pub epoch: usize,
    pub val: AccuracyReport,
    pub test: AccuracyReport,
}

/// One experiment's rows.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExperimentRow {
    pub experiment: String,
    pub name: String,
    /// "erm (parent)" for an experiment no mitigation wrote.
    pub method: String,
    /// Group labels the training read ("none", "train groups", "val groups"); best-val
    /// selection reads val group labels whatever this says.
    pub labels: String,
    /// The augmentation of its training ("none" for DFR, which does not train).
    pub augment: String,
    /// Its val accuracies are in-sample: the method fitted on val (DFR).
    pub val_in_sample: bool,
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
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitSpread {
    pub worst_group: Option<Spread>,
    pub mean_train_weighted: Option<Spread>,
    pub average: Option<Spread>,
}

/// A method over its runs (seeds), at one selection.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MethodRow {
    pub method: String,
    pub labels: String,
    /// The augmentation of its training (runs that differ in it are different rows).
    pub augment: String,
    /// Checkpoints after the start (fine-tuning epochs; DFR: 1).
    pub epochs: usize,
    pub selection: Selection,
    pub runs: usize,
    pub seeds: Vec<u64>,
    /// Its val accuracies are in-sample: the method fitted on val (DFR).
    pub val_in_sample: bool,
    pub val: SplitSpread,
    pub test: SplitSpread,
}

/// The comparison.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Comparison {
    pub data: String,
    pub val_examples: usize,
    pub test_examples: usize,
    pub methods: Vec<MethodRow>,
    pub experiments: Vec<ExperimentRow>,
    /// What a reader must know of these numbers (DFR's in-sample val, identical refits).
    pub notes: Vec<String>,
}

/// Worst-group accuracy of per-group accuracies (None where a group is empty).
fn worst(accuracies: &[Option<f64>]) -> Option<f64> {
    summarize(accuracies, &vec![1.0; accuracies.len()]).0.map(|w| w.1)
}

/// The epoch up to `until` with the best val worst-group accuracy: from the accuracies each
/// experiment recorded when every epoch has them, else by evaluating every epoch.
fn best_val_epoch(
    experiment: &Experiment,
    until: usize,
    (dataset, device): (&GroupedDataset, &Device),
    cache: &mut Vec<(usize, AccuracyReport)>,
    progress: &mut dyn Progress,
) -> Result<usize> {
    let mitigated = experiment.manifest.lineage.is_some();
    let mut worsts = Vec::new();
    for entry in experiment.manifest.checkpoints.iter().filter(|e| e.epoch <= until) {
        if mitigated && entry.epoch == 0 && experiment.last_epoch() > 0 {
            continue;
        }
        let accuracy = if entry.val_accuracy.is_empty() {
            let network = experiment.load_network(entry.epoch, device)?;
            let report = evaluate(&network, dataset, Split::Val, device, progress)?;
            let w = report.worst_group_accuracy;
            cache.push((entry.epoch, report));
            w
        } else {
            worst(&entry.val_accuracy)
        };
        worsts.push((entry.epoch, accuracy));
    }
    Ok(best_of(&worsts, mitigated).unwrap_or(until))
}

/// Where each of `experiments` ends for this comparison: a mitigated run at its last epoch; a
/// parent at the checkpoint its mitigations here started from, when they all started from one
/// earlier than its last (its later epochs are not what they fine-tuned), else at its last.
fn ends(experiments: &[Experiment]) -> Vec<usize> {
    let folder = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    experiments
        .iter()
        .map(|parent| {
            let last = parent.last_epoch();
            if parent.manifest.lineage.is_some() {
                return last;
            }
            let me = folder(&parent.dir);
            let mut starts = experiments
                .iter()
                .filter_map(|e| e.manifest.lineage.as_ref())
                .filter(|l| folder(Path::new(&l.parent)) == me)
                .map(|l| l.start_epoch);
            match starts.next() {
                Some(s) if s < last && starts.all(|t| t == s) => s,
                _ => last,
            }
        })
        .collect()
}

/// The epoch of the highest val worst-group accuracy in `(epoch, accuracy)` (ties to the
/// earliest; an empty group's `None` never wins). A `mitigated` run's epoch 0 is its
/// unchanged parent: not a candidate when a later epoch is.
fn best_of(worsts: &[(usize, Option<f64>)], mitigated: bool) -> Option<usize> {
    let later = worsts.iter().any(|&(e, _)| e > 0);
    let mut best: Option<(usize, f64)> = None;
    for &(epoch, accuracy) in worsts {
        if mitigated && epoch == 0 && later {
            continue;
        }
        let w = accuracy.unwrap_or(f64::NEG_INFINITY);
        if best.is_none_or(|(_, b)| w > b) {
            best = Some((epoch, w));
        }
    }
    best.map(|b| b.0)
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
    for ((i, experiment), end) in experiments.iter().enumerate().zip(ends(experiments)) {
        let lineage = experiment.manifest.lineage.as_ref();
        let mut cache = Vec::new();
        let mut selected = Vec::new();
        for selection in Selection::ALL {
            let epoch = match selection {
                Selection::LastEpoch => end,
                Selection::BestValWorstGroup => best_val_epoch(
                    experiment,
                    end,
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
            method: lineage.map(|l| l.method.label()).unwrap_or_else(|| parent_label(experiment, end)),
            labels: lineage.map(|l| l.labels.to_string()).unwrap_or_else(|| "none".into()),
            augment: experiment
                .manifest
                .training
                .as_ref()
                .map(|t| t.augment.to_string())
                .unwrap_or("none".into()),
            val_in_sample: lineage.is_some_and(|l| l.labels == LabelUse::ValGroups),
            seed: lineage.map(|l| l.seed).or_else(|| experiment.manifest.training.as_ref().map(|t| t.seed)),
            parent: lineage.map(|l| l.parent.clone()),
            start_epoch: lineage.map(|l| l.start_epoch),
            epochs: experiment.manifest.checkpoints.iter().filter(|e| e.epoch <= end).count(),
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
        notes: notes(experiments, dataset),
        experiments: rows,
    })
}

/// A parent's method: "erm (parent)", or "erm (parent at epoch N, the start)" when it stands
/// at the checkpoint its mitigations started from rather than at its last.
fn parent_label(experiment: &Experiment, end: usize) -> String {
    if end == experiment.last_epoch() {
        "erm (parent)".into()
    } else {
        format!("erm (parent at epoch {end}, the start)")
    }
}

/// What the numbers of `experiments` need said: DFR's val accuracies are in-sample, and on
/// a balanced val its refits are identical.
fn notes(experiments: &[Experiment], dataset: &GroupedDataset) -> Vec<String> {
    let dfr = experiments.iter().find_map(|e| match e.manifest.lineage.as_ref().map(|l| &l.method) {
        Some(Method::Dfr(dfr)) => Some(dfr.clone()),
        _ => None,
    });
    let Some(dfr) = dfr else { return Vec::new() };
    let mut notes = vec![
        "dfr: its val accuracies (marked *) are in-sample: the head was fitted on val; only test is held out"
            .to_string(),
    ];
    let counts = dataset.val.group_counts(dataset.num_groups());
    if counts.iter().all(|&c| c == dfr.per_group) {
        notes.push(format!(
            "dfr: val is balanced ({} per group), so every group-balanced subset is all of val: \
             its {} refits are identical (its seeds can still differ: each holds out its own half \
             of val to choose C)",
            dfr.per_group, dfr.retrains
        ));
    }
    notes
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
                augment: runs.first().map(|r| r.augment.clone()).unwrap_or_default(),
                epochs: key.5.saturating_sub(1),
                selection,
                runs: runs.len(),
                seeds: runs.iter().filter_map(|r| r.seed).collect(),
                val_in_sample: runs.iter().any(|r| r.val_in_sample),
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

    #[test]
    fn best_val_never_picks_a_mitigated_runs_start() {
        // Epoch 0 has the best val worst group: a parent's epoch 0 may win, a mitigated
        // run's (its unchanged parent) may not.
        let worsts = [(0, Some(0.5)), (1, Some(0.3)), (2, Some(0.4)), (3, Some(0.4))];
        assert_eq!(best_of(&worsts, false), Some(0));
        assert_eq!(best_of(&worsts, true), Some(2), "ties to the earliest");
        assert_eq!(best_of(&[(0, Some(0.5))], true), Some(0), "nothing else to pick");
    }
}
