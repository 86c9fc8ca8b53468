//! One intervention: select neurons by a criterion, change them, and measure every group's
//! accuracy before and after (mean and spread over seeded repeats when it is random).

mod listing;
mod spec;

use anyhow::{Result, bail, ensure};
use serde::{Deserialize, Serialize};

pub use listing::ScoreList;
pub use listing::{DEFAULT_TOP, ScoreRequest, list};
pub use spec::{
    DEFAULT_REPEATS, DEFAULT_SCORE_SPLIT, InterventionSpec, NeuronQuery, Target, default_group, gradient,
    smallest,
};

use super::shift::{self, BoundaryShift, ShiftFit};
use super::{GroupChange, Summary, group_changes, mean_summary, run_accuracies};
use crate::edit;
use crate::eval::{AccuracyReport, report_from_logits};
use crate::jobs::{Progress, Within};
use crate::neurons::scores::{Criterion, percentile_ranks};
use crate::neurons::select::{Scope, Selection, positions, scoped, select};
use crate::neurons::{NeuronId, NeuronSpace};
use crate::session::Session;
use crate::util::rng::seeded;

/// A selected neuron with its scores and percentile ranks, each percentile naming the
/// neurons it ranks among.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SelectedNeuron {
    pub id: NeuronId,
    /// The criterion's raw score (before any per-layer normalisation).
    pub score: f32,
    /// The value the ranking sorts by: `score` divided by its layer's mean score with
    /// `--normalize-layers`, else `score` itself.
    pub ranking_score: f32,
    /// Percentile rank of `ranking_score` within `score_percentile_scope`.
    pub score_percentile: f64,
    /// "within layer L" (structured tracing) or "all candidates".
    pub score_percentile_scope: String,
    pub magnitude: f32,
    /// Percentile rank of the magnitude within `magnitude_percentile_scope`.
    pub magnitude_percentile: f64,
    /// Always "all candidates", whatever the ranking's scope.
    pub magnitude_percentile_scope: String,
}

/// The scope of every magnitude percentile.
pub const ALL_CANDIDATES: &str = "all candidates";

/// The neurons a percentile in `scope` ranks among, in words.
pub(crate) fn percentile_scope(scope: &Scope) -> String {
    match scope {
        Scope::Global => ALL_CANDIDATES.to_string(),
        Scope::Layer(name) => format!("within layer {name}"),
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InterventionResult {
    pub spec: InterventionSpec,
    /// Neurons in the ranking the selection drew from.
    pub candidates: usize,
    /// The selected neurons (for the random control: those of the first draw).
    pub neurons: Vec<SelectedNeuron>,
    pub layers_changed: Vec<String>,
    pub runs: usize,
    pub before: AccuracyReport,
    pub groups: Vec<GroupChange>,
    pub before_summary: Summary,
    /// Mean over runs of each run's worst-group and weighted-mean accuracy.
    pub after_summary: Summary,
    /// Accuracy of each group in each run: `run_accuracy[run][group]`.
    pub run_accuracy: Vec<Vec<Option<f64>>>,
    /// How many of each run's changed predictions one constant added to the logits also
    /// changes (see [`super::shift`]); absent only in results written before it existed.
    #[serde(default)]
    pub boundary_shift: Option<BoundaryShift>,
}

/// How a ranking is made and what is taken from it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RankingSpec {
    pub epoch: usize,
    pub criterion: Criterion,
    pub scope: Scope,
    pub normalize_layers: bool,
    pub selection: Selection,
    pub seed: u64,
}

/// The neurons a ranking selects: (neurons in scope, their global numbers in `space`,
/// their descriptions). `progress` hears of each batch of a gradient pass.
pub(crate) fn selected_neurons(
    session: &mut Session,
    spec: &RankingSpec,
    space: &NeuronSpace,
    progress: &mut dyn Progress,
) -> Result<(usize, Vec<usize>, Vec<SelectedNeuron>)> {
    let scores = session.scores(spec.epoch, &spec.criterion, space, progress)?;
    let (members, values) = scoped(&scores, space, &spec.scope, spec.normalize_layers)?;
    let picks = match &spec.selection {
        Selection::ByHand(ids) => positions(space, &members, &spec.scope, ids)?,
        selection => select(&values, selection.clone(), spec.seed)?,
    };
    let ranks = percentile_ranks(&values);
    let magnitude = session.scores(spec.epoch, &Criterion::Magnitude, space, progress)?;
    let magnitude_ranks = percentile_ranks(&magnitude);
    let scope = percentile_scope(&spec.scope);
    let neurons = picks
        .iter()
        .map(|&p| {
            let flat = members[p];
            SelectedNeuron {
                id: space.id(flat),
                score: scores[flat],
                ranking_score: values[p],
                score_percentile: ranks[p],
                score_percentile_scope: scope.clone(),
                magnitude: magnitude[flat],
                magnitude_percentile: magnitude_ranks[flat],
                magnitude_percentile_scope: ALL_CANDIDATES.to_string(),
            }
        })
        .collect();
    Ok((members.len(), picks.iter().map(|&p| members[p]).collect(), neurons))
}

impl RankingSpec {
    /// The ranking `query` makes at `epoch`, its draws seeded by `seed`.
    pub fn of(epoch: usize, query: &NeuronQuery, seed: u64) -> RankingSpec {
        RankingSpec {
            epoch,
            criterion: query.criterion.clone(),
            scope: query.scope.clone(),
            normalize_layers: query.normalize_layers,
            selection: query.selection.clone(),
            seed,
        }
    }
}

/// What every run of an intervention shares: the neuron space, the weights before, a
/// rewind's source, and the first draw's neurons.
pub struct Prepared {
    pub space: NeuronSpace,
    pub current: std::sync::Arc<crate::neurons::weights::WeightSet>,
    pub earlier: Option<std::sync::Arc<crate::neurons::weights::WeightSet>>,
    /// Neurons in the ranking the selection drew from (0 for a layer rewind).
    pub candidates: usize,
    /// Global numbers in `space` of the first draw's neurons.
    pub targets: Vec<usize>,
    pub neurons: Vec<SelectedNeuron>,
}

/// Checks `spec` against the session and makes what its runs share; `progress` hears of each
/// batch of a gradient pass the ranking needs, and may stop it.
pub fn prepare(
    session: &mut Session,
    spec: &InterventionSpec,
    progress: &mut dyn Progress,
) -> Result<Prepared> {
    session.experiment().checkpoint(spec.epoch)?;
    spec.intervention.validate(spec.epoch)?;
    ensure!((1..=1000).contains(&spec.repeats), "repeats {} out of range 1..=1000", spec.repeats);
    let query = &spec.query;
    let space = session.space(&query.candidates, query.granularity)?;
    let current = session.weights(spec.epoch)?;
    let earlier = match spec.intervention.source_epoch(spec.epoch)? {
        Some(e) => Some(session.weights(e)?),
        None => None,
    };
    let target = spec.target();
    if let Target::Layer(layer) = target
        && !session.layers().iter().any(|l| l.name == layer)
    {
        let valid: Vec<&str> = session.layers().iter().map(|l| l.name.as_str()).collect();
        bail!("unknown layer '{layer}' (valid: {})", valid.join(", "));
    }
    let (candidates, targets, neurons) = match target {
        Target::Layer(_) => (0, Vec::new(), Vec::new()),
        Target::Neurons(_) => {
            selected_neurons(session, &RankingSpec::of(spec.epoch, query, spec.seed), &space, progress)?
        }
    };
    Ok(Prepared { space, current, earlier, candidates, targets, neurons })
}

/// The weights of run `r` of `spec` (its noise or draw seeded by the spec's seed and `r`)
/// with `targets` changed, and the names of the layers changed.
pub(crate) fn changed_weights(
    spec: &InterventionSpec,
    prepared: &Prepared,
    targets: &[usize],
    r: usize,
) -> Result<(crate::neurons::weights::WeightSet, Vec<String>)> {
    let mut weights = (*prepared.current).clone();
    let mut rng = seeded(spec.seed, 100 + r as u64);
    let changed = edit::apply(
        &spec.intervention,
        &mut weights,
        &prepared.space,
        targets,
        prepared.earlier.as_deref(),
        &mut rng,
    )?;
    Ok((weights, changed))
}

/// Runs `spec`. `progress` hears of each finished run (of the repeats); its passes (the
/// ranking's gradient, the baseline, each run's evaluation) ask it at every batch whether to
/// go on, and when it says stop the intervention ends with
/// [`Cancelled`](crate::jobs::Cancelled).
pub fn run(
    session: &mut Session,
    spec: &InterventionSpec,
    progress: &mut dyn Progress,
) -> Result<InterventionResult> {
    let target = spec.target();
    // Random interventions repeat with fresh noise; the random control redraws its neurons.
    let redraw = matches!(target, Target::Neurons(q) if matches!(q.selection, Selection::Random { .. }));
    let runs = if spec.intervention.is_random() || redraw { spec.repeats } else { 1 };
    let prepared = prepare(session, spec, &mut Within::new(progress, 0, runs))?;
    let before = session.baseline(spec.epoch, spec.split, &mut Within::new(progress, 0, runs))?;
    let ranking = |seed: u64| RankingSpec::of(spec.epoch, &spec.query, seed);
    let mut targets = prepared.targets.clone();

    let baseline = session.baseline_logits(spec.epoch, spec.split, &mut Within::new(progress, 0, runs))?;
    let mut reports = Vec::with_capacity(runs);
    let mut fits = Vec::with_capacity(runs);
    let mut layers_changed = Vec::new();
    for r in 0..runs {
        let mut pass = Within::new(progress, r, runs);
        if redraw && r > 0 {
            let again = ranking(spec.seed.wrapping_add(r as u64));
            targets = selected_neurons(session, &again, &prepared.space, &mut pass)?.1;
        }
        let (weights, changed) = changed_weights(spec, &prepared, &targets, r)?;
        let layers: Vec<_> = weights.iter().filter(|w| changed.contains(&w.name)).collect();
        let logits = session.logits_with(spec.epoch, spec.split, &layers, &mut pass)?;
        reports.push(report_from_logits(session.dataset(), spec.split, &logits));
        fits.push(shift_fit(session, spec, &baseline, &logits));
        layers_changed = changed;
        progress.report(r + 1, runs)?;
    }
    let run_accuracy = run_accuracies(&reports);
    let dataset = session.dataset();
    let boundary_shift = BoundaryShift::of(fits, dataset.class_names.len(), dataset.group_names.len());
    Ok(InterventionResult {
        spec: spec.clone(),
        candidates: prepared.candidates,
        neurons: prepared.neurons,
        layers_changed,
        runs,
        groups: group_changes(&before, &run_accuracy),
        before_summary: Summary::of(&before),
        after_summary: mean_summary(&reports),
        run_accuracy,
        before,
        boundary_shift: Some(boundary_shift),
    })
}

/// The boundary-shift control of one run whose logits are `after`.
fn shift_fit(session: &Session, spec: &InterventionSpec, before: &[f32], after: &[f32]) -> ShiftFit {
    let dataset = session.dataset();
    let groups = &dataset.split(spec.split).groups;
    shift::fit(before, after, dataset.class_names.len(), groups, dataset.group_names.len())
}
