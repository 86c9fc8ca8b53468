//! The control table: zeroing random non-critical neurons beside the same number of
//! critical ones, at several fractions.

use anyhow::{Result, ensure};
use serde::{Deserialize, Serialize};

use super::GroupChange;
use super::intervention::{
    DEFAULT_REPEATS, InterventionSpec, NeuronQuery, default_group, gradient, run as intervene,
};
use super::{DEFAULT_SEED, DEFAULT_SPLIT};
use crate::data::{GroupedDataset, Split};
use crate::jobs::{Progress, Within};
use crate::neurons::scores::Criterion;
use crate::neurons::select::{Selection, random_control, top_count};
use crate::neurons::{CandidateFilter, Granularity};
use crate::session::Session;

/// The fractions of the slides' control table that a small model can have: 0.01%, 0.02% and
/// 0.03% of the candidates (its further rows, 0.1% to 3%, are a flag away).
pub const DEFAULT_FRACTIONS: [f64; 3] = [0.0001, 0.0002, 0.0003];

/// Zeroing critical neurons beside as many random ones. Its [`Default`] is the slides' table:
/// zero-out at each of [`DEFAULT_FRACTIONS`], critical by the authors' gradient (of G0 here;
/// [`ControlSpec::for_data`] takes the smallest training group), [`DEFAULT_REPEATS`] random
/// draws, measured on [`DEFAULT_SPLIT`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ControlSpec {
    pub epoch: usize,
    pub split: Split,
    /// Fractions of the candidates zeroed.
    pub fractions: Vec<f64>,
    /// What makes a neuron critical.
    pub criterion: Criterion,
    pub granularity: Granularity,
    pub candidates: CandidateFilter,
    /// Random draws of control neurons per fraction.
    pub repeats: usize,
    pub seed: u64,
}

impl Default for ControlSpec {
    fn default() -> Self {
        let query = NeuronQuery::default();
        ControlSpec {
            epoch: 0,
            split: DEFAULT_SPLIT,
            fractions: DEFAULT_FRACTIONS.to_vec(),
            criterion: query.criterion,
            granularity: query.granularity,
            candidates: query.candidates,
            repeats: DEFAULT_REPEATS,
            seed: DEFAULT_SEED,
        }
    }
}

impl ControlSpec {
    /// The default study on `dataset` at `epoch`: critical by its smallest training group's
    /// gradient.
    pub fn for_data(dataset: &GroupedDataset, epoch: usize) -> Self {
        ControlSpec {
            epoch,
            criterion: gradient(Some(default_group(dataset)), DEFAULT_SEED),
            ..Self::default()
        }
    }

    /// Measured on `split`.
    pub fn on(mut self, split: Split) -> Self {
        self.split = split;
        self
    }

    /// Seeds every random choice; a gradient criterion's sampling too.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        if let Criterion::Gradient { seed: s, .. } = &mut self.criterion {
            *s = seed;
        }
        self
    }

    pub fn repeats(mut self, repeats: usize) -> Self {
        self.repeats = repeats;
        self
    }
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
        let mut step = Within::new(progress, rows.len(), spec.fractions.len());
        let critical = intervene(session, &base, &mut step)?;
        let random = base.select(random_control(Selection::TopFraction(fraction), space.total())?);
        let control = intervene(session, &random.repeats(spec.repeats), &mut step)?;
        rows.push(ControlRow { fraction, count, critical: critical.groups, control: control.groups });
        progress.report(rows.len(), spec.fractions.len())?;
    }
    Ok(ControlStudy { spec: spec.clone(), candidates: space.total(), rows })
}
