//! The intervention form: each field is a choice among presets, changed with ←/→.

use memscope_core::data::Split;
use memscope_core::edit::Intervention;
use memscope_core::neurons::{CandidateFilter, Granularity};

pub const KINDS: [&str; 5] = ["zero-out", "re-init", "noise", "rewind neurons", "rewind layer"];
pub const CRITERIA: [&str; 3] = ["gradient of group", "magnitude", "random control"];
/// Global raw scores, global scores divided by their layer's mean (`--normalize-layers`),
/// within the selected layer (`--within`), and for a fused qkv projection within its q, k or
/// v rows (`--within LAYER:q`).
pub const SCOPES: [&str; 6] =
    ["global", "global ÷ layer mean", "selected layer", "its q rows", "its k rows", "its v rows"];
/// The part of a fused qkv layer scopes 3, 4 and 5 name.
pub const QKV_PARTS: [&str; 3] = ["q", "k", "v"];
/// Candidate layers: `--exclude-head`, `--exclude-shortcuts`.
pub const CANDIDATES: [&str; 4] = ["all layers", "no head", "no shortcuts", "no head, no shortcuts"];
/// Top-k counts, then top fractions.
pub const COUNTS: [Count; 10] = [
    Count::K(1),
    Count::K(2),
    Count::K(3),
    Count::K(5),
    Count::K(10),
    Count::K(20),
    Count::Q(0.01),
    Count::Q(0.02),
    Count::Q(0.05),
    Count::Q(0.10),
];
/// σ values of the authors' configurations (noise 0.005-0.02, re-init 0.02-0.15), plus 0.05.
pub const SIGMAS: [f64; 6] = [0.005, 0.01, 0.02, 0.05, 0.1, 0.15];
pub const BACKS: [usize; 6] = [1, 5, 10, 20, 30, 40];
pub const REPEATS: [usize; 4] = [1, 3, 10, 20];
pub const SPLITS: [Split; 3] = [Split::Val, Split::Test, Split::Train];
pub const GRANULARITIES: [Granularity; 3] = [Granularity::Unit, Granularity::Kernel, Granularity::Weight];

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Count {
    K(usize),
    Q(f64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Kind,
    Criterion,
    Scope,
    Candidates,
    Count,
    Sigma,
    Back,
    Repeats,
    Split,
    Granularity,
}

pub const FIELDS: [Field; 10] = [
    Field::Kind,
    Field::Criterion,
    Field::Scope,
    Field::Candidates,
    Field::Count,
    Field::Sigma,
    Field::Back,
    Field::Repeats,
    Field::Split,
    Field::Granularity,
];

/// The chosen preset of every field.
#[derive(Clone, Debug, PartialEq)]
pub struct Form {
    pub kind: usize,
    pub criterion: usize,
    pub scope: usize,
    pub candidates: usize,
    pub count: usize,
    pub sigma: usize,
    pub back: usize,
    pub repeats: usize,
    pub split: usize,
    pub granularity: usize,
    /// Whether the selected layer is a fused qkv projection (its q, k, v scopes apply); kept
    /// in step with the layer by the app.
    pub qkv: bool,
}

impl Default for Form {
    /// The defaults of the CLI: zero-out, top-3 global by gradient, σ from the authors'
    /// configurations, 10 epochs back, 10 repeats, val, unit.
    fn default() -> Self {
        Form {
            kind: 0,
            criterion: 0,
            scope: 0,
            candidates: 0,
            count: 2,
            sigma: 2,
            back: 2,
            repeats: 2,
            split: 0,
            granularity: 0,
            qkv: false,
        }
    }
}

impl Form {
    fn slot(&mut self, field: Field) -> (&mut usize, usize) {
        match field {
            Field::Kind => (&mut self.kind, KINDS.len()),
            Field::Criterion => (&mut self.criterion, CRITERIA.len()),
            Field::Scope => (&mut self.scope, if self.qkv { SCOPES.len() } else { 3 }),
            Field::Candidates => (&mut self.candidates, CANDIDATES.len()),
            Field::Count => (&mut self.count, COUNTS.len()),
            Field::Sigma => (&mut self.sigma, SIGMAS.len()),
            Field::Back => (&mut self.back, BACKS.len()),
            Field::Repeats => (&mut self.repeats, REPEATS.len()),
            Field::Split => (&mut self.split, SPLITS.len()),
            Field::Granularity => (&mut self.granularity, GRANULARITIES.len()),
        }
    }

    /// Moves `field` one preset forward (`step` 1) or back (-1), wrapping around.
    pub fn step(&mut self, field: Field, step: isize) {
        let (value, len) = self.slot(field);
        *value = (*value as isize + step).rem_euclid(len as isize) as usize;
        if field == Field::Kind {
            // Each random kind starts at its own default σ (re-init 0.02, noise 0.01).
            match self.kind {
                1 => self.sigma = 2,
                2 => self.sigma = 1,
                _ => {}
            }
        }
    }

    pub fn split(&self) -> Split {
        SPLITS[self.split]
    }

    pub fn granularity(&self) -> Granularity {
        GRANULARITIES[self.granularity]
    }

    /// Whether the ranking is within the selected layer (or one part of its qkv rows).
    pub fn within_layer(&self) -> bool {
        self.scope >= 2
    }

    /// The scope's layer for the selected `layer`: the layer, or `layer:k` for a qkv part.
    pub fn scope_layer(&self, layer: &str) -> String {
        match self.scope.checked_sub(3).and_then(|p| QKV_PARTS.get(p)) {
            Some(part) if self.qkv => format!("{layer}:{part}"),
            _ => layer.to_string(),
        }
    }

    /// Follows the selected layer: whether it has q, k, v parts; a part scope on a layer
    /// without them falls back to the whole layer.
    pub fn set_qkv(&mut self, qkv: bool) {
        self.qkv = qkv;
        if !qkv && self.scope > 2 {
            self.scope = 2;
        }
    }

    /// Whether a global ranking divides scores by their layer's mean.
    pub fn normalize_layers(&self) -> bool {
        self.scope == 1
    }

    /// The candidate layers the form leaves in.
    pub fn candidate_filter(&self) -> CandidateFilter {
        CandidateFilter {
            exclude_head: matches!(self.candidates, 1 | 3),
            exclude_shortcuts: matches!(self.candidates, 2 | 3),
            layers: Vec::new(),
        }
    }

    pub fn intervention(&self, layer: &str) -> Intervention {
        let sigma = SIGMAS[self.sigma];
        let epochs_back = BACKS[self.back];
        match self.kind {
            0 => Intervention::ZeroOut,
            1 => Intervention::Reinit { sigma, uniform: false },
            2 => Intervention::Noise { sigma },
            3 => Intervention::RewindNeurons { epochs_back },
            _ => Intervention::RewindLayer { layer: layer.to_string(), epochs_back },
        }
    }

    /// Whether a field matters for the current settings (only those are shown).
    pub fn applies(&self, field: Field) -> bool {
        let rewind_layer = self.kind == 4;
        match field {
            Field::Criterion | Field::Scope | Field::Count | Field::Granularity => !rewind_layer,
            Field::Candidates => !rewind_layer && !self.within_layer(),
            Field::Sigma => matches!(self.kind, 1 | 2),
            Field::Back => matches!(self.kind, 3 | 4),
            Field::Repeats => matches!(self.kind, 1 | 2) || (!rewind_layer && self.criterion == 2),
            Field::Kind | Field::Split => true,
        }
    }

    /// Positions in [`FIELDS`] of the fields that apply, in order.
    pub fn visible(&self) -> Vec<usize> {
        (0..FIELDS.len()).filter(|&i| self.applies(FIELDS[i])).collect()
    }

    /// The field `delta` visible fields away from `field` (clamped at the ends; `isize::MIN`
    /// and `isize::MAX` go to the first and last).
    pub fn move_field(&self, field: usize, delta: isize) -> usize {
        let visible = self.visible();
        let at = visible.iter().position(|&i| i >= field).unwrap_or(visible.len().saturating_sub(1));
        let to = (at as isize).saturating_add(delta).clamp(0, visible.len() as isize - 1) as usize;
        visible.get(to).copied().unwrap_or(0)
    }

    /// The field's label and current value as shown.
    pub fn describe(&self, field: Field, group: &str, layer: &str) -> (&'static str, String) {
        match field {
            Field::Kind => ("intervention", KINDS[self.kind].into()),
            Field::Criterion => (
                "criterion",
                match self.criterion {
                    0 => format!("gradient of {group}"),
                    1 => "magnitude".into(),
                    _ => format!("random control (outside top by {group})"),
                },
            ),
            Field::Scope => (
                "scope",
                match self.scope {
                    0 => "global (raw scores)".into(),
                    1 => "global ÷ layer mean".into(),
                    _ => format!("within {}", self.scope_layer(layer)),
                },
            ),
            Field::Candidates => ("candidates", CANDIDATES[self.candidates].into()),
            Field::Count => (
                "neurons",
                match COUNTS[self.count] {
                    Count::K(k) => format!("top {k}"),
                    Count::Q(q) => format!("top {}%", q * 100.0),
                },
            ),
            Field::Sigma => ("sigma", format!("{}", SIGMAS[self.sigma])),
            Field::Back => ("epochs back", BACKS[self.back].to_string()),
            Field::Repeats => ("repeats", REPEATS[self.repeats].to_string()),
            Field::Split => ("measured on", self.split().to_string()),
            Field::Granularity => ("granularity", self.granularity().to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_form_is_the_cli_default() {
        let form = Form::default();
        assert_eq!(form.intervention("stem.conv"), Intervention::ZeroOut);
        assert_eq!(COUNTS[form.count], Count::K(memscope_core::neurons::select::DEFAULT_K));
        assert_eq!(REPEATS[form.repeats], memscope_core::studies::intervention::DEFAULT_REPEATS);
        assert_eq!((form.split(), form.granularity()), (Split::Val, Granularity::Unit));
        assert_eq!(BACKS[form.back], memscope_core::edit::DEFAULT_EPOCHS_BACK);
        assert_eq!(form.candidate_filter(), CandidateFilter::default());
        assert!(!form.normalize_layers() && !form.within_layer());
    }

    #[test]
    fn moving_skips_the_fields_that_do_not_apply() {
        let mut form = Form::default();
        let at = |f: Field| FIELDS.iter().position(|&x| x == f).unwrap();
        // Zero-out: no sigma, epochs back or repeats between the count and the split.
        assert_eq!(form.move_field(at(Field::Count), 1), at(Field::Split));
        assert_eq!(form.move_field(at(Field::Split), -1), at(Field::Count));
        assert_eq!(form.move_field(0, isize::MAX), at(Field::Granularity));
        assert_eq!(form.move_field(at(Field::Granularity), isize::MIN), 0);
        form.kind = 2; // noise
        assert_eq!(form.move_field(at(Field::Count), 1), at(Field::Sigma));
        form.scope = 2; // within the layer: the candidates do not apply
        assert_eq!(form.move_field(at(Field::Scope), 1), at(Field::Count));
        form.candidates = 3;
        let filter = form.candidate_filter();
        assert!(filter.exclude_head && filter.exclude_shortcuts);
    }

    #[test]
    fn a_qkv_layer_offers_its_q_k_v_rows_as_scopes() {
        let mut form = Form::default();
        form.step(Field::Scope, -1);
        assert_eq!(form.scope_layer("blocks.0.attn.qkv"), "blocks.0.attn.qkv");
        assert_eq!(form.scope, 2, "three scopes without q, k, v parts");
        form.set_qkv(true);
        form.step(Field::Scope, 1);
        form.step(Field::Scope, 1);
        assert_eq!(form.scope_layer("blocks.0.attn.qkv"), "blocks.0.attn.qkv:k");
        assert_eq!(form.describe(Field::Scope, "G1", "blocks.0.attn.qkv").1, "within blocks.0.attn.qkv:k");
        assert!(form.within_layer());
        form.set_qkv(false);
        assert_eq!((form.scope, form.scope_layer("head")), (2, "head".to_string()));
    }

    #[test]
    fn stepping_wraps_around_both_ways() {
        let mut form = Form::default();
        form.step(Field::Split, -1);
        assert_eq!(form.split(), Split::Train);
        form.step(Field::Split, 1);
        assert_eq!(form.split(), Split::Val);
        for _ in 0..COUNTS.len() {
            form.step(Field::Count, 1);
        }
        assert_eq!(form.count, Form::default().count);
    }

    #[test]
    fn each_random_kind_starts_at_its_own_sigma_and_fields_apply_by_kind() {
        let mut form = Form::default();
        form.step(Field::Kind, 1);
        assert_eq!(form.intervention(""), Intervention::Reinit { sigma: 0.02, uniform: false });
        form.step(Field::Kind, 1);
        assert_eq!(form.intervention(""), Intervention::Noise { sigma: 0.01 });
        assert!(form.applies(Field::Sigma) && form.applies(Field::Repeats) && !form.applies(Field::Back));
        form.step(Field::Kind, 2);
        assert_eq!(
            form.intervention("head"),
            Intervention::RewindLayer { layer: "head".into(), epochs_back: 10 }
        );
        assert!(!form.applies(Field::Criterion) && !form.applies(Field::Count) && form.applies(Field::Back));
        assert_eq!(form.describe(Field::Scope, "G2", "head"), ("scope", "global (raw scores)".to_string()));
        assert_eq!(form.describe(Field::Count, "G2", "head"), ("neurons", "top 3".to_string()));
    }
}
