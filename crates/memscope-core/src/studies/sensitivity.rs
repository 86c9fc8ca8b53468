//! Sensitive layers: rewind each layer in turn by n epochs and see which groups' accuracy
//! moves by at least a threshold (the slides: 1 point of absolute change).

use anyhow::{Result, ensure};
use serde::{Deserialize, Serialize};

use super::intervention::{InterventionSpec, run as intervene};
use crate::data::Split;
use crate::eval::AccuracyReport;
use crate::jobs::{Progress, Within};
use crate::neurons::{CandidateFilter, Granularity};
use crate::session::Session;
use crate::studies::DEFAULT_SPLIT;

/// The slides' rewinding distances, in epochs.
pub const DEFAULT_EPOCHS_BACK: [usize; 5] = [5, 10, 20, 30, 40];
/// The slides' sensitive layer: rewinding it moves a group's accuracy by "+1%", one point.
pub const DEFAULT_THRESHOLD: f64 = 0.01;

/// Which layers are sensitive. Its [`Default`] is the slides' study: every candidate layer
/// rewound by each of [`DEFAULT_EPOCHS_BACK`], sensitive at [`DEFAULT_THRESHOLD`], measured
/// on [`DEFAULT_SPLIT`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SensitivitySpec {
    pub epoch: usize,
    pub split: Split,
    pub epochs_back: Vec<usize>,
    /// A layer is sensitive for a group when |accuracy change| >= threshold (0.01 = 1 point).
    pub threshold: f64,
    pub candidates: CandidateFilter,
}

impl Default for SensitivitySpec {
    fn default() -> Self {
        SensitivitySpec {
            epoch: 0,
            split: DEFAULT_SPLIT,
            epochs_back: DEFAULT_EPOCHS_BACK.to_vec(),
            threshold: DEFAULT_THRESHOLD,
            candidates: CandidateFilter::default(),
        }
    }
}

impl SensitivitySpec {
    /// The default study at `epoch`.
    pub fn at(epoch: usize) -> Self {
        SensitivitySpec { epoch, ..SensitivitySpec::default() }
    }

    /// Measured on `split`.
    pub fn on(mut self, split: Split) -> Self {
        self.split = split;
        self
    }

    /// Only the distances that reach no further back than epoch 0 (all of the slides' from
    /// epoch 40 on; none before epoch 5).
    pub fn reachable(mut self) -> Self {
        let epoch = self.epoch;
        self.epochs_back.retain(|&n| n <= epoch);
        self
    }
}

/// One (layer, n) rewind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SensitivityRow {
    pub layer: String,
    pub epochs_back: usize,
    /// Signed change of each group's accuracy (after − before).
    pub change: Vec<Option<f64>>,
    pub sensitive: Vec<bool>,
}

/// The threshold in examples of one group: with `examples` examples, a change of at least
/// the threshold is a net change of at least `min_examples` correct predictions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThresholdInExamples {
    pub group: usize,
    pub examples: usize,
    pub min_examples: usize,
}

/// The threshold (a fraction, 0.01 = 1 point) in examples for each group of `before`.
pub fn threshold_in_examples(threshold: f64, before: &AccuracyReport) -> Vec<ThresholdInExamples> {
    before
        .groups
        .iter()
        .map(|g| ThresholdInExamples {
            group: g.group,
            examples: g.examples,
            // The same tolerance as the test for sensitivity: 1 point of 100 is 1 example.
            min_examples: (threshold * g.examples as f64 - 1e-9).ceil().max(0.0) as usize,
        })
        .collect()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SensitivityStudy {
    pub spec: SensitivitySpec,
    pub groups: Vec<String>,
    pub before: AccuracyReport,
    /// `spec.threshold` in examples per group: with 100 examples one point is one example.
    pub threshold_in_examples: Vec<ThresholdInExamples>,
    pub rows: Vec<SensitivityRow>,
    /// `counts[i][g]`: sensitive layers of group g when rewinding `spec.epochs_back[i]` epochs.
    pub counts: Vec<Vec<usize>>,
}

/// Runs the study. `progress` hears of each finished rewind; when it says stop, the study ends with [`Cancelled`](crate::jobs::Cancelled).
pub fn run(
    session: &mut Session,
    spec: &SensitivitySpec,
    progress: &mut dyn Progress,
) -> Result<SensitivityStudy> {
    ensure!(
        spec.threshold.is_finite() && spec.threshold >= 0.0,
        "threshold {} must be a number >= 0",
        spec.threshold
    );
    ensure!(!spec.epochs_back.is_empty(), "no rewinding distances given");
    for &n in &spec.epochs_back {
        ensure!(
            n <= spec.epoch,
            "cannot rewind {n} epochs from epoch {} (valid: 0..={})",
            spec.epoch,
            spec.epoch
        );
    }
    let space = session.space(&spec.candidates, Granularity::Unit)?;
    let total = space.layers.len() * spec.epochs_back.len();
    let before = session.baseline(spec.epoch, spec.split, &mut Within::new(progress, 0, total))?;
    let groups = session.dataset().group_names.clone();
    let mut rows = Vec::with_capacity(total);
    let mut counts = vec![vec![0; groups.len()]; spec.epochs_back.len()];
    for (i, &n) in spec.epochs_back.iter().enumerate() {
        for layer in &space.layers {
            let request = InterventionSpec::rewind_layer(spec.epoch, layer.name.clone(), n)
                .on(spec.split)
                .candidates(spec.candidates.clone());
            let result = intervene(session, &request, &mut Within::new(progress, rows.len(), total))?;
            let change: Vec<Option<f64>> = result.groups.iter().map(|g| g.change).collect();
            let sensitive: Vec<bool> =
                change.iter().map(|c| c.is_some_and(|c| c.abs() >= spec.threshold - 1e-12)).collect();
            for (g, &s) in sensitive.iter().enumerate() {
                counts[i][g] += usize::from(s);
            }
            rows.push(SensitivityRow { layer: layer.name.clone(), epochs_back: n, change, sensitive });
            progress.report(rows.len(), total)?;
        }
    }
    let threshold_in_examples = threshold_in_examples(spec.threshold, &before);
    Ok(SensitivityStudy { spec: spec.clone(), groups, threshold_in_examples, before, rows, counts })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::GroupAccuracy;

    #[test]
    fn the_threshold_in_examples_is_the_smallest_net_change_that_reaches_it() {
        let group = |group, examples| GroupAccuracy {
            group,
            name: format!("g{group}"),
            examples,
            correct: 0,
            accuracy: Some(0.0),
        };
        let before = AccuracyReport {
            split: Split::Val,
            groups: vec![group(0, 100), group(1, 150), group(2, 0)],
            worst_group: None,
            worst_group_accuracy: None,
            mean_accuracy_train_weighted: None,
            average_accuracy: None,
        };
        let min = |t| threshold_in_examples(t, &before).iter().map(|t| t.min_examples).collect::<Vec<_>>();
        assert_eq!(min(0.01), [1, 2, 0]); // 1 point: 1 of 100, 1.5 -> 2 of 150
        assert_eq!(min(0.02), [2, 3, 0]);
        assert_eq!(min(0.0), [0, 0, 0]);
    }
}
