//! Rank histograms: where the top gradient neurons of each group sit in the magnitude
//! ranking, and where the top magnitude neurons sit in each group's gradient ranking.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::data::Split;
use crate::jobs::{Progress, Within};
use crate::neurons::scores::{Criterion, Sampling, percentile_ranks};
use crate::neurons::select::{Selection, select};
use crate::neurons::{CandidateFilter, Granularity};
use crate::session::Session;
use crate::studies::DEFAULT_SEED;
use crate::studies::intervention::DEFAULT_SCORE_SPLIT;

/// 20 bins of 5 percentile points.
pub const BINS: usize = 20;
/// The top fraction each score takes (the slides: "top 0.01%"; at least one neuron).
pub const DEFAULT_FRACTION: f64 = 0.0001;

/// The two histograms of every group. Its [`Default`] is the slides' study with the authors'
/// code's neurons and gradients: the top [`DEFAULT_FRACTION`] of units, gradients on train
/// over the group's 200 lowest-confidence examples, every candidate layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RankSpec {
    pub epoch: usize,
    /// The top fraction of neurons taken by each score.
    pub fraction: f64,
    pub granularity: Granularity,
    pub candidates: CandidateFilter,
    /// Split and sampling of the gradient scores.
    pub split: Split,
    pub sampling: Sampling,
    pub seed: u64,
}

impl Default for RankSpec {
    fn default() -> Self {
        RankSpec {
            epoch: 0,
            fraction: DEFAULT_FRACTION,
            granularity: Granularity::default(),
            candidates: CandidateFilter::default(),
            split: DEFAULT_SCORE_SPLIT,
            sampling: Sampling::default(),
            seed: DEFAULT_SEED,
        }
    }
}

impl RankSpec {
    /// The default study at `epoch`.
    pub fn at(epoch: usize) -> Self {
        RankSpec { epoch, ..RankSpec::default() }
    }
}

/// One group's two histograms (counts per 5-point bin of percentile rank, bin 19 = 95-100).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupRanks {
    pub group: usize,
    pub name: String,
    /// Magnitude percentile ranks of the group's top-gradient neurons.
    pub magnitude_rank_of_top_gradient: Vec<usize>,
    /// Gradient percentile ranks (this group) of the top-magnitude neurons.
    pub gradient_rank_of_top_magnitude: Vec<usize>,
    /// Neurons in both top sets.
    pub overlap: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RankStudy {
    pub spec: RankSpec,
    pub candidates: usize,
    /// Neurons in each top set.
    pub selected: usize,
    pub groups: Vec<GroupRanks>,
}

/// The 5-point bin of a percentile in [0, 100].
pub fn bin(percentile: f64) -> usize {
    ((percentile / 100.0 * BINS as f64).floor() as usize).min(BINS - 1)
}

fn histogram(picks: &[usize], ranks: &[f64]) -> Vec<usize> {
    let mut bins = vec![0; BINS];
    for &p in picks {
        bins[bin(ranks[p])] += 1;
    }
    bins
}

/// Runs the study. `progress` hears of each finished group; when it says stop, the study ends with [`Cancelled`](crate::jobs::Cancelled).
pub fn run(session: &mut Session, spec: &RankSpec, progress: &mut dyn Progress) -> Result<RankStudy> {
    session.experiment().checkpoint(spec.epoch)?;
    let space = session.space(&spec.candidates, spec.granularity)?;
    let n_groups = session.dataset().num_groups();
    let magnitude =
        session.scores(spec.epoch, &Criterion::Magnitude, &space, &mut Within::new(progress, 0, n_groups))?;
    let magnitude_ranks = percentile_ranks(&magnitude);
    let top_magnitude = select(&magnitude, Selection::TopFraction(spec.fraction), spec.seed)?;
    let mut groups = Vec::new();
    for group in 0..n_groups {
        let criterion = Criterion::Gradient {
            group: Some(group),
            split: spec.split,
            sampling: spec.sampling,
            seed: spec.seed,
        };
        let gradient =
            session.scores(spec.epoch, &criterion, &space, &mut Within::new(progress, group, n_groups))?;
        let gradient_ranks = percentile_ranks(&gradient);
        let top_gradient = select(&gradient, Selection::TopFraction(spec.fraction), spec.seed)?;
        groups.push(GroupRanks {
            group,
            name: session.dataset().group_names[group].clone(),
            magnitude_rank_of_top_gradient: histogram(&top_gradient, &magnitude_ranks),
            gradient_rank_of_top_magnitude: histogram(&top_magnitude, &gradient_ranks),
            overlap: top_gradient.iter().filter(|p| top_magnitude.contains(p)).count(),
        });
        progress.report(group + 1, n_groups)?;
    }
    Ok(RankStudy { spec: spec.clone(), candidates: space.total(), selected: top_magnitude.len(), groups })
}
