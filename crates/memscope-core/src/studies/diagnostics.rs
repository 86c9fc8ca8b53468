//! What each epoch of fine-tuning runs recorded of its objective (the NT-Xent and supervised
//! terms, the gradient norm, how far the mask moves the outputs) beside the worst group's val
//! accuracy: the curves that show why a mitigation moves or does not. A folder of seed-N runs
//! is one run: at each epoch the mean over its seeds, with the lowest and the highest seed.

use std::collections::BTreeMap;

use anyhow::{Result, bail, ensure};
use serde::{Deserialize, Serialize};

use super::timeline::mitigation_curves;
use crate::experiment::lineage::{Method, Variant};
use crate::experiment::{CheckpointEntry, CrossEntropyOn, Experiment};

/// A quantity of each epoch, one panel each, in panel order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Quantity {
    /// The two NT-Xent terms together (nats), mean over the epoch's training batches.
    Ntxent,
    /// The supervised term before λ, mean over the epoch's training batches.
    Supervised,
    /// The L2 norm of a step's whole gradient, mean over the epoch's steps.
    GradNorm,
    /// Per example, the L2 distance between the dense and the masked softmax outputs, mean
    /// over the epoch's training batches.
    Distance,
    /// The lowest group accuracy on val when the epoch ended (a fraction).
    WorstGroupVal,
}

impl Quantity {
    pub const ALL: [Quantity; 5] = [
        Quantity::Ntxent,
        Quantity::Supervised,
        Quantity::GradNorm,
        Quantity::Distance,
        Quantity::WorstGroupVal,
    ];

    /// Whether it spans orders of magnitude (its panel has a log scale).
    pub fn log_scale(self) -> bool {
        matches!(self, Quantity::GradNorm | Quantity::Distance)
    }

    /// Its value in an epoch's recorded diagnostics (none for the val accuracy).
    fn recorded(self, checkpoint: &CheckpointEntry) -> Option<f64> {
        let d = checkpoint.diagnostics?;
        match self {
            Quantity::Ntxent => Some(d.ntxent),
            Quantity::Supervised => Some(d.ce),
            Quantity::GradNorm => Some(d.grad_norm),
            Quantity::Distance => Some(d.distance),
            Quantity::WorstGroupVal => None,
        }
    }
}

/// A quantity at one epoch over a run's seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub epoch: usize,
    /// The arithmetic mean over the seeds that record this epoch.
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    /// How many seeds record this epoch.
    pub seeds: usize,
}

/// One quantity of one run over the epochs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub quantity: Quantity,
    pub points: Vec<Spread>,
}

/// One run as given: an experiment, or a folder of seed-N experiments of one method.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiagnosticRun {
    /// The folder as given.
    pub run: String,
    /// The method with its seeds ("silent-majority (code, probs), seeds 0,1").
    pub label: String,
    pub method: String,
    /// The experiments it stands for (one per seed).
    pub experiments: Vec<String>,
    /// What its supervised term is ("cross-entropy on the softmax output"), where it records
    /// diagnostics.
    pub supervised: Option<String>,
    /// The quantities it records, in panel order; one it does not record is absent.
    pub series: Vec<Series>,
}

impl DiagnosticRun {
    /// Its series of `quantity`, when it records it.
    pub fn series(&self, quantity: Quantity) -> Option<&Series> {
        self.series.iter().find(|s| s.quantity == quantity)
    }
}

/// Mitigation runs' per-epoch diagnostics side by side.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiagnosticCurves {
    pub runs: Vec<DiagnosticRun>,
}

impl DiagnosticCurves {
    /// The labels of the runs that do not record `quantity`.
    pub fn missing(&self, quantity: Quantity) -> Vec<&str> {
        self.runs.iter().filter(|r| r.series(quantity).is_none()).map(|r| r.label.as_str()).collect()
    }
}

/// A run as the command line names it: the folder, and the experiments it stands for.
pub struct RunFolder {
    pub given: String,
    pub experiments: Vec<Experiment>,
}

/// Every run's recorded diagnostics and worst-group val accuracy per epoch (no computation:
/// the manifests' records, written as each epoch ended). Refuses runs of which none records
/// diagnostics, and a folder whose seeds ran different methods or supervised terms.
pub fn diagnostic_curves(runs: &[RunFolder]) -> Result<DiagnosticCurves> {
    ensure!(!runs.is_empty(), "no runs given");
    let runs: Vec<DiagnosticRun> = runs.iter().map(run_of).collect::<Result<_>>()?;
    let recorded = runs.iter().any(|r| r.series(Quantity::Ntxent).is_some());
    if !recorded {
        let labels: Vec<&str> = runs.iter().map(|r| r.label.as_str()).collect();
        bail!(
            "none of these runs records per-epoch diagnostics: {} (silent-majority runs record them; \
             `memscope figure mitigation` draws the val accuracy of any run)",
            labels.join("; ")
        );
    }
    Ok(DiagnosticCurves { runs })
}

fn run_of(folder: &RunFolder) -> Result<DiagnosticRun> {
    let curves = mitigation_curves(&folder.experiments)?;
    let Some(first) = curves.runs.first() else { bail!("{}: no experiments", folder.given) };
    if let Some(other) = curves.runs.iter().find(|r| r.method != first.method) {
        bail!(
            "{}: holds runs of {} and of {}, not seeds of one method",
            folder.given,
            first.method,
            other.method
        );
    }
    let diagnosed: Vec<&Experiment> = folder
        .experiments
        .iter()
        .filter(|e| e.manifest.checkpoints.iter().any(|c| c.diagnostics.is_some()))
        .collect();
    let terms: Vec<&str> = diagnosed.iter().map(|e| supervised_term(e)).collect();
    if let Some(other) = terms.iter().find(|&&t| Some(t) != terms.first().copied()) {
        bail!("{}: its seeds' supervised terms differ ({} and {other})", folder.given, terms[0]);
    }
    let mut series = Vec::new();
    for quantity in Quantity::ALL {
        let per_seed: Vec<Vec<(usize, f64)>> = match quantity {
            Quantity::WorstGroupVal => curves.runs.iter().map(|r| r.worst_group.clone()).collect(),
            _ => diagnosed
                .iter()
                .map(|e| {
                    let checkpoints = &e.manifest.checkpoints;
                    checkpoints.iter().filter_map(|c| quantity.recorded(c).map(|v| (c.epoch, v))).collect()
                })
                .collect(),
        };
        let points = spread(&per_seed);
        if !points.is_empty() {
            series.push(Series { quantity, points });
        }
    }
    // The augmentation names the line: a run with and one without it are otherwise the same
    // label (a parent, which records none here, trained as its own record says).
    let augment =
        folder.experiments.first().and_then(|e| e.manifest.training.as_ref()).map(|t| t.augment.to_string());
    let augment = augment.map_or(String::new(), |a| format!(", augment {a}"));
    let label = match &curves.runs[..] {
        [one] => format!("{}{augment}", one.label),
        _ => {
            let seeds: Vec<String> = (folder.experiments.iter())
                .filter_map(|e| e.manifest.lineage.as_ref().map(|l| l.seed.to_string()))
                .collect();
            format!("{}{augment}, seeds {}", first.method, seeds.join(","))
        }
    };
    Ok(DiagnosticRun {
        run: folder.given.clone(),
        label,
        method: first.method.clone(),
        experiments: curves.runs.iter().map(|r| r.experiment.clone()).collect(),
        supervised: terms.first().map(|t| t.to_string()),
        series,
    })
}

/// What `experiment`'s supervised term is, in words.
fn supervised_term(experiment: &Experiment) -> &'static str {
    let method = experiment.manifest.lineage.as_ref().map(|l| &l.method);
    if let Some(Method::SilentMajority(s)) = method
        && s.variant == Variant::Paper
    {
        return "squared L2 distance of the softmax output from the one-hot label (the paper variant's MSE)";
    }
    match experiment.manifest.training.as_ref().map_or(CrossEntropyOn::Logits, |t| t.ce_on) {
        CrossEntropyOn::Softmax => "cross-entropy on the softmax output",
        CrossEntropyOn::Logits => "cross-entropy on logits",
    }
}

/// At each epoch any seed records, the mean, lowest and highest value over the seeds that
/// record it.
fn spread(per_seed: &[Vec<(usize, f64)>]) -> Vec<Spread> {
    let mut by_epoch: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for seed in per_seed {
        for &(epoch, value) in seed {
            by_epoch.entry(epoch).or_default().push(value);
        }
    }
    by_epoch
        .into_iter()
        .map(|(epoch, values)| Spread {
            epoch,
            mean: values.iter().sum::<f64>() / values.len() as f64,
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            seeds: values.len(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoch_one_seed_lacks_is_the_mean_of_the_seeds_that_record_it() {
        let points = spread(&[vec![(1, 1.0), (2, 4.0)], vec![(1, 3.0)], vec![(1, 2.0), (2, 6.0)]]);
        let want = [
            Spread { epoch: 1, mean: 2.0, min: 1.0, max: 3.0, seeds: 3 },
            Spread { epoch: 2, mean: 5.0, min: 4.0, max: 6.0, seeds: 2 },
        ];
        assert_eq!(points, want);
    }
}
