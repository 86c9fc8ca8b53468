//! Studies built on the engine: one intervention with its accuracy changes, rank
//! histograms, sensitive layers under rewinding, and the control table.
//!
//! Each study's request (`InterventionSpec`, `RankSpec`, `SensitivitySpec`, `ControlSpec`,
//! `GridSpec`, ...) carries its defaults: the slides' or the authors' code's values, said on
//! the spec. The command line, the explorer and the report read them from there.

pub mod control;
pub mod diagnostics;
pub mod epochs;
pub mod flips;
pub mod grid;
pub mod intervention;
pub mod ranks;
pub mod sensitivity;
pub mod shift;
pub mod sweep;
pub mod timeline;

use serde::{Deserialize, Serialize};

use crate::data::Split;
use crate::eval::AccuracyReport;

/// The split accuracy is measured on unless a request says otherwise: validation (test is
/// kept for the end, as in the field's protocol).
pub const DEFAULT_SPLIT: Split = Split::Val;
pub use crate::util::rng::DEFAULT_SEED;

/// A group's accuracy before an intervention and after it (mean over repeats).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupChange {
    pub group: usize,
    pub name: String,
    pub examples: usize,
    pub before: Option<f64>,
    /// Mean over repeats.
    pub after: Option<f64>,
    /// Standard deviation of `after` over repeats (0 for one run).
    pub after_std: Option<f64>,
    /// Signed: mean of (after − before). Negative means the intervention hurt.
    pub change: Option<f64>,
    /// Mean of |after − before| over repeats: the slides' Δacc.
    pub abs_change: Option<f64>,
}

/// Summaries of a set of runs: worst-group and training-weighted mean accuracy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub worst_group: Option<usize>,
    pub worst_group_accuracy: Option<f64>,
    /// Group accuracies weighted by the training group proportions.
    pub mean_accuracy_train_weighted: Option<f64>,
}

impl Summary {
    pub fn of(report: &AccuracyReport) -> Summary {
        Summary {
            worst_group: report.worst_group,
            worst_group_accuracy: report.worst_group_accuracy,
            mean_accuracy_train_weighted: report.mean_accuracy_train_weighted,
        }
    }
}

fn mean_std(values: &[f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    Some((mean, var.sqrt()))
}

/// Per-group changes from `before` to each run; `runs[run][group]` is a group's accuracy.
pub fn group_changes(before: &AccuracyReport, runs: &[Vec<Option<f64>>]) -> Vec<GroupChange> {
    before
        .groups
        .iter()
        .map(|g| {
            let afters: Vec<f64> = runs.iter().filter_map(|r| r[g.group]).collect();
            let stats = mean_std(&afters);
            let (change, abs_change) = match g.accuracy {
                Some(b) if !afters.is_empty() => {
                    let n = afters.len() as f64;
                    (
                        Some(afters.iter().map(|a| a - b).sum::<f64>() / n),
                        Some(afters.iter().map(|a| (a - b).abs()).sum::<f64>() / n),
                    )
                }
                _ => (None, None),
            };
            GroupChange {
                group: g.group,
                name: g.name.clone(),
                examples: g.examples,
                before: g.accuracy,
                after: stats.map(|s| s.0),
                after_std: stats.map(|s| s.1),
                change,
                abs_change,
            }
        })
        .collect()
}

/// Each run's per-group accuracies.
pub(crate) fn run_accuracies(runs: &[AccuracyReport]) -> Vec<Vec<Option<f64>>> {
    runs.iter().map(|r| r.groups.iter().map(|g| g.accuracy).collect()).collect()
}

/// Mean over runs of each run's worst-group and weighted-mean accuracy.
pub(crate) fn mean_summary(runs: &[AccuracyReport]) -> Summary {
    let worst: Vec<f64> = runs.iter().filter_map(|r| r.worst_group_accuracy).collect();
    let mean: Vec<f64> = runs.iter().filter_map(|r| r.mean_accuracy_train_weighted).collect();
    // The group that is worst most often.
    let mut counts = std::collections::BTreeMap::new();
    for g in runs.iter().filter_map(|r| r.worst_group) {
        *counts.entry(g).or_insert(0usize) += 1;
    }
    Summary {
        worst_group: counts.into_iter().max_by_key(|&(g, c)| (c, std::cmp::Reverse(g))).map(|(g, _)| g),
        worst_group_accuracy: mean_std(&worst).map(|s| s.0),
        mean_accuracy_train_weighted: mean_std(&mean).map(|s| s.0),
    }
}
