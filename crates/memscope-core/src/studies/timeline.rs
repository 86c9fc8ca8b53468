//! Accuracy over training: every group's, the worst group's and the train-weighted mean, at
//! each checkpoint of an experiment; and the worst group over the epochs of mitigation runs.

use anyhow::{Result, ensure};
use serde::{Deserialize, Serialize};

use crate::data::Split;
use crate::experiment::Experiment;
use crate::jobs::{Progress, Within};
use crate::session::Session;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelineSpec {
    pub split: Split,
    /// The epochs measured (default: every checkpoint).
    pub epochs: Vec<usize>,
}

impl TimelineSpec {
    /// Every checkpoint of `experiment`, measured on `split`.
    pub fn every_epoch(experiment: &Experiment, split: Split) -> Self {
        TimelineSpec { split, epochs: experiment.epochs().collect() }
    }
}

/// One checkpoint's accuracies (fractions).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochAccuracy {
    pub epoch: usize,
    pub groups: Vec<Option<f64>>,
    pub worst_group: Option<usize>,
    pub worst_group_accuracy: Option<f64>,
    /// Group accuracies weighted by the training group proportions.
    pub mean_accuracy_train_weighted: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    pub spec: TimelineSpec,
    pub groups: Vec<String>,
    /// Examples of each group in the split.
    pub examples: Vec<usize>,
    pub epochs: Vec<EpochAccuracy>,
}

/// Measures every epoch of `spec` (each the unchanged network's pass over the split);
/// `progress` hears of each epoch and may cancel.
pub fn run(session: &mut Session, spec: &TimelineSpec, progress: &mut dyn Progress) -> Result<Timeline> {
    ensure!(!spec.epochs.is_empty(), "no epochs to measure");
    let mut epochs = Vec::with_capacity(spec.epochs.len());
    let mut examples = Vec::new();
    for (i, &epoch) in spec.epochs.iter().enumerate() {
        session.experiment().checkpoint(epoch)?;
        let report = session.baseline(epoch, spec.split, &mut Within::new(progress, i, spec.epochs.len()))?;
        examples = report.groups.iter().map(|g| g.examples).collect();
        epochs.push(EpochAccuracy {
            epoch,
            groups: report.groups.iter().map(|g| g.accuracy).collect(),
            worst_group: report.worst_group,
            worst_group_accuracy: report.worst_group_accuracy,
            mean_accuracy_train_weighted: report.mean_accuracy_train_weighted,
        });
        progress.report(i + 1, spec.epochs.len())?;
    }
    Ok(Timeline { spec: spec.clone(), groups: session.dataset().group_names.clone(), examples, epochs })
}

/// One experiment's worst-group val accuracy per epoch, as its training recorded it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunCurve {
    pub experiment: String,
    /// The method and seed ("silent-majority seed 1"), or "erm (parent)".
    pub label: String,
    pub method: String,
    /// (epoch, worst-group val accuracy); epochs without recorded accuracy are left out.
    pub worst_group: Vec<(usize, f64)>,
}

/// Mitigation runs side by side.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MitigationCurves {
    pub runs: Vec<RunCurve>,
}

/// The worst group of each recorded epoch of each experiment (no computation: the
/// manifests' val accuracies, written as each epoch ended).
pub fn mitigation_curves(experiments: &[Experiment]) -> Result<MitigationCurves> {
    let mut runs = Vec::new();
    for experiment in experiments {
        let lineage = experiment.manifest.lineage.as_ref();
        let method = lineage.map_or("erm (parent)".to_string(), |l| l.method.label());
        let label = match lineage {
            Some(l) => format!("{method} seed {}", l.seed),
            None => {
                format!("{method}, epoch {}", experiment.manifest.checkpoints.last().map_or(0, |c| c.epoch))
            }
        };
        let mut worst_group: Vec<(usize, f64)> = experiment
            .manifest
            .checkpoints
            .iter()
            .filter_map(|c| c.val_accuracy.iter().flatten().copied().reduce(f64::min).map(|w| (c.epoch, w)))
            .collect();
        ensure!(
            !worst_group.is_empty(),
            "{}: no epoch records its val accuracy (train or mitigate writes it; an import does not)",
            experiment.dir.display()
        );
        // A parent's own training is not fine-tuning: it is drawn as the start, its last epoch at 0.
        if lineage.is_none()
            && let Some(&(_, last)) = worst_group.last()
        {
            worst_group = vec![(0, last)];
        }
        runs.push(RunCurve { experiment: experiment.dir.display().to_string(), label, method, worst_group });
    }
    Ok(MitigationCurves { runs })
}
