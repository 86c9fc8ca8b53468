//! The control table: zeroing random non-critical neurons beside the same number of
//! critical ones, at several fractions.

use anyhow::{Result, ensure};
use serde::{Deserialize, Serialize};

use super::GroupChange;
use super::intervention::{InterventionSpec, run as intervene};
use crate::data::Split;
use crate::jobs::{Progress, Silent};
use crate::neurons::scores::Criterion;
use crate::neurons::select::{Selection, random_control, top_count};
use crate::neurons::{CandidateFilter, Granularity};
use crate::session::Session;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ControlSpec {
    pub epoch: usize,
    pub split: Split,
    /// Fractions of the candidates zeroed (the slides: 0.0001, 0.0002, 0.0003).
    pub fractions: Vec<f64>,
    /// What makes a neuron critical.
    pub criterion: Criterion,
    pub granularity: Granularity,
    pub candidates: CandidateFilter,
    /// Random draws of control neurons per fraction.
    pub repeats: usize,
    pub seed: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ControlRow {
    pub fraction: f64,
    pub count: usize,
    /// Zeroing the top `count` neurons by the criterion.
    pub critical: Vec<GroupChange>,
    /// Zeroing `count` random neurons from outside the top fraction (mean over draws).
    pub control: Vec<GroupChange>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ControlStudy {
    pub spec: ControlSpec,
    pub candidates: usize,
    pub rows: Vec<ControlRow>,
}

/// Runs the study; `progress` hears of each finished fraction and may cancel it.
pub fn run(session: &mut Session, spec: &ControlSpec, progress: &mut dyn Progress) -> Result<ControlStudy> {
    ensure!(!spec.fractions.is_empty(), "no fractions given");
    ensure!((1..=1000).contains(&spec.repeats), "repeats {} out of range 1..=1000", spec.repeats);
    let space = session.space(&spec.candidates, spec.granularity)?;
    let mut rows = Vec::new();
    for &fraction in &spec.fractions {
        let count = top_count(fraction, space.total())?;
        let base = InterventionSpec::neurons(spec.epoch)
            .seed(spec.seed)
            .on(spec.split)
            .zero_out()
            .criterion(spec.criterion.clone())
            .top_k(count)
            .granularity(spec.granularity)
            .candidates(spec.candidates.clone())
            .repeats(1);
        let critical = intervene(session, &base, &mut Silent)?;
        let random = base.select(random_control(Selection::TopFraction(fraction), space.total())?);
        let control = intervene(session, &random.repeats(spec.repeats), &mut Silent)?;
        rows.push(ControlRow { fraction, count, critical: critical.groups, control: control.groups });
        progress.report(rows.len(), spec.fractions.len())?;
    }
    Ok(ControlStudy { spec: spec.clone(), candidates: space.total(), rows })
}
