//! The control table: zeroing random non-critical neurons beside the same number of
//! critical ones, at several fractions.

use anyhow::{Result, ensure};
use serde::{Deserialize, Serialize};

use super::GroupChange;
use super::intervention::{InterventionSpec, run as intervene};
use crate::data::Split;
use crate::intervene::Intervention;
use crate::neurons::scores::Criterion;
use crate::neurons::select::{Scope, Selection, top_count};
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

pub fn run(session: &mut Session, spec: &ControlSpec) -> Result<ControlStudy> {
    ensure!(!spec.fractions.is_empty(), "no fractions given");
    ensure!((1..=1000).contains(&spec.repeats), "repeats {} out of range 1..=1000", spec.repeats);
    let space = session.space(&spec.candidates, spec.granularity)?;
    let mut rows = Vec::new();
    for &fraction in &spec.fractions {
        let count = top_count(fraction, space.total())?;
        let base = InterventionSpec {
            epoch: spec.epoch,
            split: spec.split,
            intervention: Intervention::ZeroOut,
            criterion: spec.criterion.clone(),
            selection: Selection::TopK(count),
            scope: Scope::Global,
            normalize_layers: false,
            granularity: spec.granularity,
            candidates: spec.candidates.clone(),
            repeats: 1,
            seed: spec.seed,
        };
        let critical = intervene(session, &base)?;
        let random = InterventionSpec {
            selection: Selection::Random { count, outside_top: fraction },
            repeats: spec.repeats,
            ..base.clone()
        };
        let control = intervene(session, &random)?;
        rows.push(ControlRow { fraction, count, critical: critical.groups, control: control.groups });
    }
    Ok(ControlStudy { spec: spec.clone(), candidates: space.total(), rows })
}
