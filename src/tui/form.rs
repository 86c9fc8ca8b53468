//! The intervention form: each field holds the engine's own value (the `Intervention` with
//! its σ or epochs back, the candidate filter, the `Selection`, the split, the granularity),
//! or a small choice of the form's own where the engine has none (how to rank, the scope);
//! ←/→ step it through the presets listed beside its type, and the shown label is drawn from
//! the value.

use std::mem::discriminant;

use memscope_core::data::Split;
use memscope_core::edit::{DEFAULT_EPOCHS_BACK, DEFAULT_NOISE_SIGMA, DEFAULT_REINIT_SIGMA, Intervention};
use memscope_core::neurons::scores::{Criterion, Sampling};
use memscope_core::neurons::select::Selection;
use memscope_core::neurons::select::list;
use memscope_core::neurons::{CandidateFilter, Granularity, NeuronId, Qkv};
use memscope_core::studies::intervention::{self, DEFAULT_REPEATS, DEFAULT_SCORE_SPLIT};
use memscope_core::util::rng::DEFAULT_SEED;

/// The interventions offered, each with its own default σ or distance (the authors'
/// configurations); a layer rewind's layer is the one selected when the spec is built.
pub const KINDS: [Intervention; 5] = [
    Intervention::ZeroOut,
    Intervention::Reinit { sigma: DEFAULT_REINIT_SIGMA, uniform: false },
    Intervention::Noise { sigma: DEFAULT_NOISE_SIGMA },
    Intervention::RewindNeurons { epochs_back: DEFAULT_EPOCHS_BACK },
    Intervention::RewindLayer { layer: String::new(), epochs_back: DEFAULT_EPOCHS_BACK },
];
/// σ values of the authors' configurations (noise 0.005-0.02, re-init 0.02-0.15), plus 0.05.
pub const SIGMAS: [f64; 6] = [0.005, 0.01, 0.02, 0.05, 0.1, 0.15];
pub const BACKS: [usize; 6] = [1, 5, 10, 20, 30, 40];

/// How the neurons are picked: the engine's criterion of the selected group's gradient or of
/// the weights' magnitude, the random control (as many neurons drawn outside the top by the
/// group's gradient), or the gradient of every group's examples (`--group all`: label-free,
/// with its own sampling and split).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ranking {
    Gradient,
    Magnitude,
    RandomControl,
    LabelFree,
}

pub const RANKINGS: [Ranking; 4] =
    [Ranking::Gradient, Ranking::Magnitude, Ranking::RandomControl, Ranking::LabelFree];

/// Which examples a label-free gradient reads (`--sampling`): the slides' high-loss draw
/// first, then every example, then the authors' lowest-confidence examples.
pub const SAMPLINGS: [Sampling; 3] = [Sampling::LABEL_FREE, Sampling::All, Sampling::LowestConfidence(200)];

/// Where the ranking runs: global raw scores, global scores divided by their layer's mean
/// (`--normalize-layers`), within the selected layer (`--within`), or for a fused qkv
/// projection within its q, k or v rows (`--within LAYER:q`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    Global,
    GlobalPerLayerMean,
    Layer,
    Part(Qkv),
}

/// The scopes offered; the last three only on a fused qkv layer.
pub const REACHES: [Reach; 6] = [
    Reach::Global,
    Reach::GlobalPerLayerMean,
    Reach::Layer,
    Reach::Part(Qkv::Q),
    Reach::Part(Qkv::K),
    Reach::Part(Qkv::V),
];

const fn filter(exclude_head: bool, exclude_shortcuts: bool) -> CandidateFilter {
    CandidateFilter { exclude_head, exclude_shortcuts, layers: Vec::new() }
}

/// Candidate layers: all, `--exclude-head`, `--exclude-shortcuts`, both.
pub const CANDIDATES: [CandidateFilter; 4] =
    [filter(false, false), filter(true, false), filter(false, true), filter(true, true)];
/// Top-k counts, then top fractions.
pub const COUNTS: [Selection; 10] = [
    Selection::TopK(1),
    Selection::TopK(2),
    Selection::TopK(3),
    Selection::TopK(5),
    Selection::TopK(10),
    Selection::TopK(20),
    Selection::TopFraction(0.01),
    Selection::TopFraction(0.02),
    Selection::TopFraction(0.05),
    Selection::TopFraction(0.10),
];
pub const REPEATS: [usize; 4] = [1, 3, 10, 20];
pub const SPLITS: [Split; 3] = [Split::Val, Split::Test, Split::Train];
pub const GRANULARITIES: [Granularity; 3] = [Granularity::Unit, Granularity::Kernel, Granularity::Weight];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Kind,
    Criterion,
    /// A label-free gradient's examples (`--sampling`).
    Sampling,
    /// The split a label-free gradient is computed on (`--score-split`).
    ScoreSplit,
    Scope,
    Candidates,
    Count,
    /// The neurons chosen by hand (shown only while there are some).
    Chosen,
    Sigma,
    Back,
    Repeats,
    Split,
    Granularity,
}

pub const FIELDS: [Field; 13] = [
    Field::Kind,
    Field::Criterion,
    Field::Sampling,
    Field::ScoreSplit,
    Field::Scope,
    Field::Candidates,
    Field::Count,
    Field::Chosen,
    Field::Sigma,
    Field::Back,
    Field::Repeats,
    Field::Split,
    Field::Granularity,
];

/// Every field's value, and the field the cursor is on.
#[derive(Clone, Debug, PartialEq)]
pub struct Form {
    /// The change, with its σ or epochs back.
    pub change: Intervention,
    pub ranking: Ranking,
    /// A label-free ranking's examples and split (a group's gradient keeps the CLI's).
    pub sampling: Sampling,
    pub score_split: Split,
    pub reach: Reach,
    pub candidates: CandidateFilter,
    /// A top k or a top fraction.
    pub count: Selection,
    /// Neurons chosen by hand (pinned in the Neurons view or typed), at `granularity`; when
    /// there are some they are changed instead of the ranking's top, which only scores them.
    pub chosen: Vec<NeuronId>,
    pub repeats: usize,
    pub split: Split,
    pub granularity: Granularity,
    pub field: Field,
    /// Whether the selected layer is a fused qkv projection (its q, k, v scopes apply); kept
    /// in step with the layer by the app.
    pub qkv: bool,
}

impl Default for Form {
    /// The defaults of the CLI: zero-out, top-3 global by gradient, 10 repeats, val, unit.
    fn default() -> Self {
        Form {
            change: Intervention::ZeroOut,
            ranking: Ranking::Gradient,
            sampling: Sampling::LABEL_FREE,
            score_split: DEFAULT_SCORE_SPLIT,
            reach: Reach::Global,
            candidates: CandidateFilter::default(),
            count: Selection::default(),
            chosen: Vec::new(),
            repeats: DEFAULT_REPEATS,
            split: Split::Val,
            granularity: Granularity::default(),
            field: Field::Kind,
            qkv: false,
        }
    }
}

/// The preset `step` places from the one at `at` (from the first when the value is none of
/// them), wrapping around.
fn stepped<T: Clone>(presets: &[T], at: Option<usize>, step: isize) -> T {
    let len = presets.len() as isize;
    let to = at.map_or(0, |at| (at as isize + step).rem_euclid(len));
    presets[to as usize].clone()
}

fn position<T: PartialEq>(presets: &[T], value: &T) -> Option<usize> {
    presets.iter().position(|p| p == value)
}

impl Form {
    /// The σ of a re-init or noise.
    pub fn sigma(&self) -> Option<f64> {
        match self.change {
            Intervention::Reinit { sigma, .. } | Intervention::Noise { sigma } => Some(sigma),
            _ => None,
        }
    }

    /// The distance of a rewind.
    pub fn epochs_back(&self) -> Option<usize> {
        match self.change {
            Intervention::RewindNeurons { epochs_back } | Intervention::RewindLayer { epochs_back, .. } => {
                Some(epochs_back)
            }
            _ => None,
        }
    }

    fn rewinds_layer(&self) -> bool {
        matches!(self.change, Intervention::RewindLayer { .. })
    }

    /// Moves the field under the cursor one preset forward (`step` 1) or back (-1), wrapping.
    pub fn step(&mut self, step: isize) {
        match self.field {
            Field::Kind => self.step_kind(step),
            Field::Criterion => self.ranking = stepped(&RANKINGS, position(&RANKINGS, &self.ranking), step),
            Field::Sampling => {
                self.sampling = stepped(&SAMPLINGS, position(&SAMPLINGS, &self.sampling), step)
            }
            Field::ScoreSplit => {
                self.score_split = stepped(&SPLITS, position(&SPLITS, &self.score_split), step)
            }
            Field::Scope => {
                let offered = if self.qkv { &REACHES[..] } else { &REACHES[..3] };
                self.reach = stepped(offered, position(offered, &self.reach), step);
            }
            Field::Candidates => {
                self.candidates = stepped(&CANDIDATES, position(&CANDIDATES, &self.candidates), step)
            }
            Field::Count => self.count = stepped(&COUNTS, position(&COUNTS, &self.count), step),
            // Its one other value: none, the ranking again.
            Field::Chosen => self.chosen.clear(),
            Field::Sigma => match &mut self.change {
                Intervention::Reinit { sigma, .. } | Intervention::Noise { sigma } => {
                    *sigma = stepped(&SIGMAS, position(&SIGMAS, sigma), step)
                }
                _ => {}
            },
            Field::Back => match &mut self.change {
                Intervention::RewindNeurons { epochs_back }
                | Intervention::RewindLayer { epochs_back, .. } => {
                    *epochs_back = stepped(&BACKS, position(&BACKS, epochs_back), step)
                }
                _ => {}
            },
            Field::Repeats => self.repeats = stepped(&REPEATS, position(&REPEATS, &self.repeats), step),
            Field::Split => self.split = stepped(&SPLITS, position(&SPLITS, &self.split), step),
            Field::Granularity => {
                self.granularity = stepped(&GRANULARITIES, position(&GRANULARITIES, &self.granularity), step);
                // Ids name neurons of one granularity.
                self.chosen.clear();
            }
        }
    }

    /// The next kind of change, at its own default σ; one rewind keeps the other's distance.
    fn step_kind(&mut self, step: isize) {
        let at = KINDS.iter().position(|k| discriminant(k) == discriminant(&self.change));
        let back = self.epochs_back();
        self.change = stepped(&KINDS, at, step);
        if let Some(back) = back {
            self.set_back(back);
        }
    }

    fn set_back(&mut self, back: usize) {
        if let Intervention::RewindNeurons { epochs_back } | Intervention::RewindLayer { epochs_back, .. } =
            &mut self.change
        {
            *epochs_back = back;
        }
    }

    /// The engine's criterion for the selected `group` (the random control draws outside its
    /// gradient's top); a label-free ranking reads every group with the form's sampling and split.
    pub fn criterion(&self, group: usize) -> Criterion {
        match self.ranking {
            Ranking::Magnitude => Criterion::Magnitude,
            Ranking::Gradient | Ranking::RandomControl => intervention::gradient(Some(group), DEFAULT_SEED),
            Ranking::LabelFree => Criterion::Gradient {
                group: None,
                split: self.score_split,
                sampling: self.sampling,
                seed: DEFAULT_SEED,
            },
        }
    }

    /// Whether the ranking is within the selected layer (or one part of its qkv rows).
    pub fn within_layer(&self) -> bool {
        matches!(self.reach, Reach::Layer | Reach::Part(_))
    }

    /// The scope's layer for the selected `layer`: the layer, or `layer:k` for a qkv part.
    pub fn scope_layer(&self, layer: &str) -> String {
        match self.reach {
            Reach::Part(part) if self.qkv => format!("{layer}:{part}"),
            _ => layer.to_string(),
        }
    }

    /// Follows the selected layer: whether it has q, k, v parts; a part scope on a layer
    /// without them falls back to the whole layer.
    pub fn set_qkv(&mut self, qkv: bool) {
        self.qkv = qkv;
        if !qkv && matches!(self.reach, Reach::Part(_)) {
            self.reach = Reach::Layer;
        }
    }

    /// Whether a global ranking divides scores by their layer's mean.
    pub fn normalize_layers(&self) -> bool {
        self.reach == Reach::GlobalPerLayerMean
    }

    /// The split every number is measured on.
    pub fn split(&self) -> Split {
        self.split
    }

    /// The change, a layer rewind's on `layer`.
    pub fn intervention(&self, layer: &str) -> Intervention {
        match &self.change {
            Intervention::RewindLayer { epochs_back, .. } => {
                Intervention::RewindLayer { layer: layer.to_string(), epochs_back: *epochs_back }
            }
            change => change.clone(),
        }
    }

    /// Whether the random control applies (a layer rewind selects no neurons to draw).
    pub fn random_control(&self) -> bool {
        self.ranking == Ranking::RandomControl && !self.rewinds_layer() && !self.by_hand()
    }

    /// Whether neurons chosen by hand replace the ranking's top.
    pub fn by_hand(&self) -> bool {
        !self.chosen.is_empty() && !self.rewinds_layer()
    }

    /// The neurons chosen by hand as the `#` prompt starts with them.
    pub fn chosen_text(&self) -> String {
        list(&self.chosen)
    }

    /// Chooses `neuron` by hand (at `granularity`), or drops it if it was; returns whether it
    /// is chosen now. Neurons of another granularity are dropped first.
    pub fn toggle(&mut self, neuron: NeuronId, granularity: Granularity) -> bool {
        if granularity != self.granularity {
            self.chosen.clear();
            self.granularity = granularity;
        }
        match self.chosen.iter().position(|n| *n == neuron) {
            Some(at) => {
                self.chosen.remove(at);
                false
            }
            None => {
                self.chosen.push(neuron);
                true
            }
        }
    }

    /// Whether a field matters for the current settings (only those are shown).
    pub fn applies(&self, field: Field) -> bool {
        let rewind_layer = self.rewinds_layer();
        match field {
            Field::Criterion | Field::Granularity => !rewind_layer,
            Field::Sampling | Field::ScoreSplit => !rewind_layer && self.ranking == Ranking::LabelFree,
            Field::Scope | Field::Count => !rewind_layer && !self.by_hand(),
            Field::Chosen => self.by_hand(),
            Field::Candidates => !rewind_layer && !self.within_layer() && !self.by_hand(),
            Field::Sigma => self.sigma().is_some(),
            Field::Back => self.epochs_back().is_some(),
            Field::Repeats => self.sigma().is_some() || self.random_control(),
            Field::Kind | Field::Split => true,
        }
    }

    /// The fields that apply, in order.
    pub fn visible(&self) -> Vec<Field> {
        FIELDS.into_iter().filter(|&f| self.applies(f)).collect()
    }

    /// Moves the cursor `delta` visible fields (clamped at the ends; `isize::MIN` and
    /// `isize::MAX` go to the first and last).
    pub fn move_by(&mut self, delta: isize) {
        let visible = self.visible();
        let index = |f: Field| FIELDS.iter().position(|&x| x == f).unwrap_or(0);
        let at = visible
            .iter()
            .position(|&f| index(f) >= index(self.field))
            .unwrap_or(visible.len().saturating_sub(1));
        let to = (at as isize).saturating_add(delta).clamp(0, visible.len() as isize - 1) as usize;
        self.field = visible.get(to).copied().unwrap_or(Field::Kind);
    }

    /// The field's label and current value as shown.
    pub fn describe(&self, field: Field, group: &str, layer: &str) -> (&'static str, String) {
        match field {
            Field::Kind => ("intervention", kind_name(&self.change).into()),
            Field::Criterion => (
                "criterion",
                match self.ranking {
                    Ranking::Gradient => format!("gradient of {group}"),
                    Ranking::Magnitude => "magnitude".into(),
                    Ranking::RandomControl => format!("random control (outside top by {group})"),
                    Ranking::LabelFree => "label-free gradient (all)".into(),
                },
            ),
            Field::Sampling => ("examples", sampling_name(&self.sampling)),
            Field::ScoreSplit => ("scored on", self.score_split.to_string()),
            Field::Scope => (
                "scope",
                match self.reach {
                    Reach::Global => "global (raw scores)".into(),
                    Reach::GlobalPerLayerMean => "global ÷ layer mean".into(),
                    Reach::Layer | Reach::Part(_) => format!("within {}", self.scope_layer(layer)),
                },
            ),
            Field::Candidates => ("candidates", candidates_name(&self.candidates)),
            Field::Count => ("neurons", count_name(&self.count)),
            Field::Chosen => ("neurons", format!("by hand: {}", self.chosen_text())),
            Field::Sigma => ("sigma", self.sigma().map(|s| s.to_string()).unwrap_or_default()),
            Field::Back => ("epochs back", self.epochs_back().map(|b| b.to_string()).unwrap_or_default()),
            Field::Repeats => ("repeats", self.repeats.to_string()),
            Field::Split => ("measured on", self.split.to_string()),
            Field::Granularity => ("granularity", self.granularity.to_string()),
        }
    }
}

/// The kind of change, without its σ or distance.
fn kind_name(change: &Intervention) -> &'static str {
    match change {
        Intervention::ZeroOut => "zero-out",
        Intervention::Reinit { .. } => "re-init",
        Intervention::Noise { .. } => "noise",
        Intervention::RewindNeurons { .. } => "rewind neurons",
        Intervention::RewindLayer { .. } => "rewind layer",
    }
}

fn sampling_name(sampling: &Sampling) -> String {
    match sampling {
        Sampling::All => "all of the split".into(),
        Sampling::LowestConfidence(n) => format!("{n} least confident"),
        Sampling::HighLoss { pool, draw } => format!("{draw} of the {pool} highest-loss"),
    }
}

fn candidates_name(filter: &CandidateFilter) -> String {
    let left_out: Vec<&str> = [(filter.exclude_head, "no head"), (filter.exclude_shortcuts, "no shortcuts")]
        .into_iter()
        .filter_map(|(out, name)| out.then_some(name))
        .collect();
    if left_out.is_empty() { "all layers".into() } else { left_out.join(", ") }
}

fn count_name(count: &Selection) -> String {
    match count {
        Selection::TopK(k) => format!("top {k}"),
        Selection::TopFraction(q) => format!("top {}%", q * 100.0),
        Selection::Random { count, .. } => format!("{count} at random"),
        Selection::ByHand(ids) => format!("{} by hand", ids.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_form_is_the_cli_default() {
        let form = Form::default();
        assert_eq!(form.intervention("stem.conv"), Intervention::ZeroOut);
        assert_eq!(form.count, Selection::TopK(memscope_core::neurons::select::DEFAULT_K));
        assert_eq!(form.repeats, memscope_core::studies::intervention::DEFAULT_REPEATS);
        assert_eq!((form.split(), form.granularity), (Split::Val, Granularity::Unit));
        assert_eq!(form.candidates, CandidateFilter::default());
        assert!(!form.normalize_layers() && !form.within_layer());
        // Every default is one of its field's presets.
        assert!(COUNTS.contains(&form.count) && REPEATS.contains(&form.repeats));
        assert!(CANDIDATES.contains(&form.candidates) && KINDS.contains(&form.change));
    }

    #[test]
    fn the_label_free_ranking_offers_its_sampling_and_split() {
        let mut form = Form { field: Field::Criterion, ..Form::default() };
        assert!(!form.applies(Field::Sampling) && !form.applies(Field::ScoreSplit));
        form.step(-1);
        assert_eq!(form.ranking, Ranking::LabelFree);
        // `--group all --sampling high-loss:256:128 --score-split train`, the CLI's spelling.
        let expected = Criterion::Gradient {
            group: None,
            split: Split::Train,
            sampling: "high-loss".parse().unwrap(),
            seed: DEFAULT_SEED,
        };
        assert_eq!(form.criterion(2), expected);
        form.move_by(1);
        assert_eq!(form.field, Field::Sampling);
        form.step(1);
        assert_eq!(form.describe(Field::Sampling, "G2", ""), ("examples", "all of the split".to_string()));
        form.move_by(1);
        form.step(1);
        assert_eq!(
            form.criterion(2),
            Criterion::Gradient {
                group: None,
                split: Split::Val,
                sampling: Sampling::All,
                seed: DEFAULT_SEED
            }
        );
        // A group's gradient keeps the CLI's default sampling and split.
        form.ranking = Ranking::Gradient;
        assert_eq!(form.criterion(2), intervention::gradient(Some(2), DEFAULT_SEED));
    }

    #[test]
    fn every_kind_starts_at_an_offered_sigma_or_distance() {
        for kind in &KINDS {
            let form = Form { change: kind.clone(), ..Form::default() };
            assert!(form.sigma().is_none_or(|s| SIGMAS.contains(&s)), "{kind}");
            assert!(form.epochs_back().is_none_or(|b| BACKS.contains(&b)), "{kind}");
        }
    }

    #[test]
    fn moving_skips_the_fields_that_do_not_apply() {
        let mut form = Form { field: Field::Count, ..Form::default() };
        // Zero-out: no sigma, epochs back or repeats between the count and the split.
        form.move_by(1);
        assert_eq!(form.field, Field::Split);
        form.move_by(-1);
        assert_eq!(form.field, Field::Count);
        form.move_by(isize::MAX);
        assert_eq!(form.field, Field::Granularity);
        form.move_by(isize::MIN);
        assert_eq!(form.field, Field::Kind);
        form.change = Intervention::Noise { sigma: 0.01 };
        form.field = Field::Count;
        form.move_by(1);
        assert_eq!(form.field, Field::Sigma);
        form.reach = Reach::Layer; // within the layer: the candidates do not apply
        form.field = Field::Scope;
        form.move_by(1);
        assert_eq!(form.field, Field::Count);
        form.field = Field::Candidates;
        form.step(-1);
        assert_eq!(form.candidates, filter(true, true));
        assert_eq!(form.describe(Field::Candidates, "G1", "").1, "no head, no shortcuts");
    }

    #[test]
    fn a_qkv_layer_offers_its_q_k_v_rows_as_scopes() {
        let mut form = Form { field: Field::Scope, ..Form::default() };
        form.step(-1);
        assert_eq!(form.scope_layer("blocks.0.attn.qkv"), "blocks.0.attn.qkv");
        assert_eq!(form.reach, Reach::Layer, "three scopes without q, k, v parts");
        form.set_qkv(true);
        form.step(1);
        form.step(1);
        assert_eq!(form.scope_layer("blocks.0.attn.qkv"), "blocks.0.attn.qkv:k");
        assert_eq!(form.describe(Field::Scope, "G1", "blocks.0.attn.qkv").1, "within blocks.0.attn.qkv:k");
        assert!(form.within_layer());
        form.set_qkv(false);
        assert_eq!((form.reach, form.scope_layer("head")), (Reach::Layer, "head".to_string()));
    }

    #[test]
    fn stepping_wraps_around_both_ways() {
        let mut form = Form { field: Field::Split, ..Form::default() };
        form.step(-1);
        assert_eq!(form.split(), Split::Train);
        form.step(1);
        assert_eq!(form.split(), Split::Val);
        form.field = Field::Count;
        for _ in 0..COUNTS.len() {
            form.step(1);
        }
        assert_eq!(form.count, Form::default().count);
        form.step(4);
        assert_eq!(form.describe(Field::Count, "G1", ""), ("neurons", "top 1%".to_string()));
    }

    #[test]
    fn each_random_kind_starts_at_its_own_sigma_and_fields_apply_by_kind() {
        let mut form = Form::default();
        form.step(1);
        assert_eq!(form.intervention(""), Intervention::Reinit { sigma: 0.02, uniform: false });
        form.field = Field::Sigma;
        form.step(1);
        assert_eq!(form.describe(Field::Sigma, "G1", ""), ("sigma", "0.05".to_string()));
        form.field = Field::Kind;
        form.step(1);
        assert_eq!(form.intervention(""), Intervention::Noise { sigma: 0.01 });
        assert!(form.applies(Field::Sigma) && form.applies(Field::Repeats) && !form.applies(Field::Back));
        form.step(1);
        form.field = Field::Back;
        form.step(1);
        form.field = Field::Kind;
        form.step(1);
        assert_eq!(
            form.intervention("head"),
            Intervention::RewindLayer { layer: "head".into(), epochs_back: 20 },
            "a rewind keeps the other rewind's distance"
        );
        assert!(!form.applies(Field::Criterion) && !form.applies(Field::Count) && form.applies(Field::Back));
        assert_eq!(form.describe(Field::Scope, "G2", "head"), ("scope", "global (raw scores)".to_string()));
        assert_eq!(form.describe(Field::Count, "G2", "head"), ("neurons", "top 3".to_string()));
        form.ranking = Ranking::RandomControl;
        assert!(!form.random_control(), "a layer rewind draws no neurons");
    }
}
