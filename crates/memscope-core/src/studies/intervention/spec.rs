//! What an intervention is: its request ([`InterventionSpec`]), built from defaults with a
//! builder, and the rules both front ends share (default group, default k, the random
//! control, neurons in scope).

use anyhow::{Result, ensure};
use serde::{Deserialize, Serialize};

use crate::data::{GroupedDataset, Split};
use crate::edit::Intervention;
use crate::model::LayerInfo;
use crate::neurons::scores::{Criterion, Sampling};
use crate::neurons::select::{DEFAULT_K, Scope, Selection, in_scope, random_control};
use crate::neurons::{CandidateFilter, Granularity, NeuronSpace};
use crate::studies::{DEFAULT_SEED, DEFAULT_SPLIT};

/// Runs of a random intervention or of the random control (the slides: "the average of 10
/// independent runs").
pub const DEFAULT_REPEATS: usize = 10;
/// The split a gradient score is computed on (the authors' code: train).
pub const DEFAULT_SCORE_SPLIT: Split = Split::Train;

/// Everything that determines an intervention's result.
///
/// Serialised flat (the query's fields beside the others), as results have always been
/// written; a layer rewind carries a query that nothing reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InterventionSpec {
    pub epoch: usize,
    /// The split accuracy is measured on.
    pub split: Split,
    pub intervention: Intervention,
    /// Which neurons are ranked and taken (ignored by a layer rewind).
    #[serde(flatten)]
    pub query: NeuronQuery,
    /// Runs of a random intervention (fresh noise) or of the random control (fresh draw),
    /// each with its own seed; anything else runs once.
    pub repeats: usize,
    pub seed: u64,
}

/// How neurons are ranked and which of the ranking are taken.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NeuronQuery {
    pub criterion: Criterion,
    pub selection: Selection,
    pub scope: Scope,
    /// Divide scores by their layer's mean before a global ranking.
    pub normalize_layers: bool,
    pub granularity: Granularity,
    pub candidates: CandidateFilter,
}

/// What an intervention changes: ranked neurons, or one whole layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target<'a> {
    Neurons(&'a NeuronQuery),
    Layer(&'a str),
}

/// The group scored by default: the one with the fewest training examples (ties: the lower
/// number), where memorisation shows first.
pub fn default_group(dataset: &GroupedDataset) -> usize {
    smallest(&dataset.train_group_counts())
}

/// The position of the smallest count (ties: the first).
pub fn smallest(counts: &[usize]) -> usize {
    (0..counts.len()).min_by_key(|&g| (counts[g], g)).unwrap_or(0)
}

/// The gradient criterion of the authors' code: group `group` (`None`: every example) on the
/// training split, its lowest-confidence 200 examples (`Sampling::AUTHORS`).
pub fn gradient(group: Option<usize>, seed: u64) -> Criterion {
    Criterion::Gradient { group, split: DEFAULT_SCORE_SPLIT, sampling: Sampling::default(), seed }
}

impl Default for NeuronQuery {
    /// The slides' top-3 ([`DEFAULT_K`]), ranked globally without normalisation, of the
    /// authors' code's units by the gradient of G0 (see [`InterventionSpec::for_data`] for the
    /// smallest group), every candidate layer.
    fn default() -> Self {
        NeuronQuery {
            criterion: gradient(Some(0), DEFAULT_SEED),
            selection: Selection::TopK(DEFAULT_K),
            scope: Scope::Global,
            normalize_layers: false,
            granularity: Granularity::default(),
            candidates: CandidateFilter::default(),
        }
    }
}

impl NeuronQuery {
    /// Neurons the ranking draws from: every candidate, or one layer's.
    pub(crate) fn in_scope(&self, layers: &[LayerInfo]) -> Result<usize> {
        in_scope(&NeuronSpace::new(layers, &self.candidates, self.granularity)?, &self.scope)
    }
}

impl Default for InterventionSpec {
    /// Zero-out (the slides' first intervention) of the [`NeuronQuery::default`] neurons (G0's
    /// gradient here; [`InterventionSpec::for_data`] takes the smallest training group),
    /// measured on [`DEFAULT_SPLIT`], [`DEFAULT_REPEATS`] runs when random, [`DEFAULT_SEED`],
    /// epoch 0.
    fn default() -> Self {
        InterventionSpec {
            epoch: 0,
            split: DEFAULT_SPLIT,
            intervention: Intervention::ZeroOut,
            query: NeuronQuery::default(),
            repeats: DEFAULT_REPEATS,
            seed: DEFAULT_SEED,
        }
    }
}

impl InterventionSpec {
    /// The default intervention on neurons at `epoch`.
    pub fn neurons(epoch: usize) -> Self {
        InterventionSpec { epoch, ..Default::default() }
    }

    /// The default on `dataset`: scored by the gradient of its smallest training group.
    pub fn for_data(dataset: &GroupedDataset, epoch: usize) -> Self {
        InterventionSpec::neurons(epoch).gradient_of(Some(default_group(dataset)))
    }

    /// Rewinds one whole layer (weight and bias) `epochs_back` epochs; runs once.
    pub fn rewind_layer(epoch: usize, layer: impl Into<String>, epochs_back: usize) -> Self {
        InterventionSpec {
            epoch,
            intervention: Intervention::RewindLayer { layer: layer.into(), epochs_back },
            query: NeuronQuery {
                criterion: Criterion::Magnitude,
                selection: Selection::TopK(0),
                ..NeuronQuery::default()
            },
            repeats: 1,
            ..Default::default()
        }
    }

    /// What the intervention changes.
    pub fn target(&self) -> Target<'_> {
        match &self.intervention {
            Intervention::RewindLayer { layer, .. } => Target::Layer(layer),
            _ => Target::Neurons(&self.query),
        }
    }

    pub fn change(mut self, intervention: Intervention) -> Self {
        self.intervention = intervention;
        self
    }

    pub(crate) fn zero_out(self) -> Self {
        self.change(Intervention::ZeroOut)
    }

    pub fn on(mut self, split: Split) -> Self {
        self.split = split;
        self
    }

    /// Ranks and takes neurons as `query` says.
    pub fn query(mut self, query: NeuronQuery) -> Self {
        self.query = query;
        self
    }

    pub fn criterion(mut self, criterion: Criterion) -> Self {
        self.query.criterion = criterion;
        self
    }

    /// Scores by the gradient of `group` (see [`gradient`]), seeded by the spec's seed.
    pub fn gradient_of(self, group: Option<usize>) -> Self {
        let seed = self.seed;
        self.criterion(gradient(group, seed))
    }

    pub fn select(mut self, selection: Selection) -> Self {
        self.query.selection = selection;
        self
    }

    pub fn top_k(self, k: usize) -> Self {
        self.select(Selection::TopK(k))
    }

    /// The first `k` neurons of its selection: the top k of its ranking, or the first k of
    /// the neurons chosen by hand.
    pub fn first(self, k: usize) -> Result<Self> {
        let selection = self.query.selection.first(k)?;
        Ok(self.select(selection))
    }

    pub fn scope(mut self, scope: Scope) -> Self {
        self.query.scope = scope;
        self
    }

    /// Ranks within `layer` only (structured tracing).
    pub fn within(self, layer: impl Into<String>) -> Self {
        self.scope(Scope::Layer(layer.into()))
    }

    pub fn normalize_layers(mut self, normalize: bool) -> Self {
        self.query.normalize_layers = normalize;
        self
    }

    pub fn granularity(mut self, granularity: Granularity) -> Self {
        self.query.granularity = granularity;
        self
    }

    pub fn candidates(mut self, candidates: CandidateFilter) -> Self {
        self.query.candidates = candidates;
        self
    }

    pub fn repeats(mut self, repeats: usize) -> Self {
        self.repeats = repeats;
        self
    }

    /// Seeds every random choice; a gradient criterion's sampling too.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        if let Criterion::Gradient { seed: s, .. } = &mut self.query.criterion {
            *s = seed;
        }
        self
    }

    /// The random control of the current top selection: as many neurons, drawn from outside
    /// that top, among the neurons in scope of `layers`.
    pub fn random_control(mut self, layers: &[LayerInfo]) -> Result<Self> {
        let in_scope = self.query.in_scope(layers)?;
        ensure!(in_scope > 0, "no candidate neurons in scope {}", self.query.scope);
        self.query.selection = random_control(self.query.selection.clone(), in_scope)?;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_cli_default() {
        let spec = InterventionSpec::neurons(40);
        assert_eq!(spec.intervention, Intervention::ZeroOut);
        assert_eq!(spec.query.selection, Selection::TopK(3));
        assert_eq!(spec.query.scope, Scope::Global);
        assert_eq!(spec.query.granularity, Granularity::Unit);
        assert_eq!((spec.split, spec.repeats, spec.seed, spec.epoch), (Split::Val, 10, 0, 40));
        let Criterion::Gradient { split, sampling, .. } = spec.query.criterion else { panic!() };
        assert_eq!((split, sampling), (Split::Train, Sampling::LowestConfidence(200)));
    }

    #[test]
    fn the_builder_reads_as_the_request_and_seeds_the_gradient_too() {
        let spec = InterventionSpec::neurons(30).top_k(5).within("head").seed(4).gradient_of(Some(1));
        assert_eq!(spec.query.scope, Scope::Layer("head".into()));
        assert_eq!(spec.query.criterion, gradient(Some(1), 4));
        assert_eq!(spec.target(), Target::Neurons(&spec.query));
        let rewind = InterventionSpec::rewind_layer(40, "head", 15);
        assert_eq!(rewind.target(), Target::Layer("head"));
        assert_eq!(rewind.repeats, 1);
    }

    #[test]
    fn the_query_is_serialised_flat_as_results_always_were() {
        let json =
            serde_json::to_value(InterventionSpec::rewind_layer(40, "stage3.block0.conv1", 15)).unwrap();
        let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = vec![
            "candidates",
            "criterion",
            "epoch",
            "granularity",
            "intervention",
            "normalize_layers",
            "repeats",
            "scope",
            "seed",
            "selection",
            "split",
        ];
        expected.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(json["criterion"], "magnitude");
        assert_eq!(json["selection"]["top-k"], 0);
        let back: InterventionSpec = serde_json::from_value(json).unwrap();
        assert_eq!(back, InterventionSpec::rewind_layer(40, "stage3.block0.conv1", 15));
    }

    #[test]
    fn the_smallest_group_wins_ties_by_number() {
        assert_eq!(smallest(&[1460, 80, 20, 440]), 2);
        assert_eq!(smallest(&[5, 3, 3]), 1);
        assert_eq!(smallest(&[]), 0);
    }
}
