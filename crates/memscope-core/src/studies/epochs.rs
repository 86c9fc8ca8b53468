//! An epoch series: one intervention at every checkpoint in turn, every group's change per
//! epoch — when, over training, a few neurons come to carry a group (the paper's epoch plots).

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::GroupChange;
use super::intervention::{self, InterventionSpec};
use crate::jobs::{Progress, Within, is_cancelled};
use crate::session::Session;

/// The intervention and the epochs it is run at.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochSeriesSpec {
    /// The intervention; its epoch is replaced by each of `epochs` in turn (neurons are
    /// ranked afresh at each epoch, by that epoch's scores).
    pub base: InterventionSpec,
    pub epochs: Vec<usize>,
}

/// One epoch's outcome: each group's change, or why the intervention does not apply there
/// (e.g. a 10-epoch rewind at epoch 5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochPoint {
    pub epoch: usize,
    /// The intervention run at this epoch (`memscope intervene --epoch E` with the same
    /// settings gives the same numbers).
    pub spec: InterventionSpec,
    pub groups: Vec<GroupChange>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochSeries {
    pub spec: EpochSeriesSpec,
    pub points: Vec<EpochPoint>,
}

impl EpochSeriesSpec {
    /// `base` at every checkpoint of `experiment`.
    pub fn every_epoch(base: InterventionSpec, experiment: &crate::experiment::Experiment) -> Self {
        EpochSeriesSpec { base, epochs: experiment.epochs().collect() }
    }

    /// The intervention at `epoch`.
    pub fn at(&self, epoch: usize) -> InterventionSpec {
        let mut spec = self.base.clone();
        spec.epoch = epoch;
        spec
    }
}

/// Runs the series, reporting each finished epoch; a cancellation stops it.
pub fn run(
    session: &mut Session,
    spec: &EpochSeriesSpec,
    progress: &mut dyn Progress,
) -> Result<EpochSeries> {
    let mut points = Vec::with_capacity(spec.epochs.len());
    for (i, &epoch) in spec.epochs.iter().enumerate() {
        let at = spec.at(epoch);
        let point = match intervention::run(session, &at, &mut Within::new(progress, i, spec.epochs.len())) {
            Ok(result) => EpochPoint { epoch, spec: at, groups: result.groups, error: None },
            Err(e) if is_cancelled(&e) => return Err(e),
            Err(e) => EpochPoint { epoch, spec: at, groups: Vec::new(), error: Some(format!("{e:#}")) },
        };
        points.push(point);
        progress.report(i + 1, spec.epochs.len())?;
    }
    Ok(EpochSeries { spec: spec.clone(), points })
}
