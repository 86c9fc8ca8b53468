//! Numbers and runs in words, for the screen and the status line alike: the state (status
//! messages, the tour) and the views both use these, so neither imports the other for them.

use memscope_core::edit::Intervention;
use memscope_core::neurons::scores::Criterion;
use memscope_core::neurons::select::{Scope, Selection};
use memscope_core::studies::intervention::{InterventionResult, InterventionSpec};

/// A percentage with one decimal, or n/a.
pub fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{:.1}%", 100.0 * v)).unwrap_or_else(|| "n/a".into())
}

/// A signed change in points with one decimal, or n/a.
pub fn pts(v: Option<f64>) -> String {
    v.map(|v| format!("{:+.1}", 100.0 * v)).unwrap_or_else(|| "n/a".into())
}

/// A one-line description of a run.
pub fn short(r: &InterventionResult) -> String {
    let s = &r.spec;
    match &s.intervention {
        Intervention::RewindLayer { layer, epochs_back } => {
            format!("rewind {layer} −{epochs_back} @{}", s.epoch)
        }
        _ if s.query.selection.by_hand() => {
            format!("{} of the neurons {} @{}", s.intervention, s.query.selection, s.epoch)
        }
        _ => format!(
            "{} {} {} by {} @{}",
            s.intervention,
            s.query.selection,
            s.query.scope,
            criterion(&s.query.criterion),
            s.epoch
        ),
    }
}

/// A criterion in a few words: `magnitude`, `grad G1`, `grad all (high-loss:256:128 of train)`
/// (label-free: which examples say as much as whose).
pub fn criterion(c: &Criterion) -> String {
    match c {
        Criterion::Magnitude => "magnitude".into(),
        Criterion::Gradient { group: Some(g), .. } => format!("grad G{g}"),
        Criterion::Gradient { group: None, split, sampling, .. } => {
            format!("grad all ({sampling} of {split})")
        }
    }
}

/// A selection in words, fractions with one decimal.
fn selection(s: &Selection) -> String {
    match s {
        Selection::TopK(k) => format!("top-{k}"),
        Selection::TopFraction(q) => format!("top {:.1}%", 100.0 * q),
        Selection::Random { count, outside_top } => {
            format!("{count} random outside the top {:.1}%", 100.0 * outside_top)
        }
        Selection::ByHand(ids) => format!("{} chosen by hand", ids.len()),
    }
}

/// Every setting of an intervention, in words (wrapped where shown, never cut).
pub fn describe(s: &InterventionSpec) -> String {
    let mut parts = vec![format!("epoch {}", s.epoch)];
    match &s.intervention {
        Intervention::RewindLayer { layer, epochs_back } => {
            parts.push(format!("rewind layer {layer} {epochs_back} epochs back"))
        }
        change => {
            let q = &s.query;
            match &q.selection {
                Selection::ByHand(ids) => {
                    parts.push(format!("{change} {} {}s chosen by hand", ids.len(), q.granularity))
                }
                other => parts.push(format!("{change} {} {}s", selection(other), q.granularity)),
            }
            parts.push(match &q.scope {
                Scope::Global if q.normalize_layers => "global ÷ layer mean".into(),
                Scope::Global => "global".into(),
                Scope::Layer(layer) => format!("within {layer}"),
            });
            parts.push(format!("by {}", criterion(&q.criterion)));
            if q.candidates.exclude_head {
                parts.push("no head".into());
            }
            if q.candidates.exclude_shortcuts {
                parts.push("no shortcuts".into());
            }
            if s.intervention.is_random() || matches!(q.selection, Selection::Random { .. }) {
                parts.push(format!("{} runs", s.repeats));
            }
        }
    }
    parts.push(format!("on {}", s.split));
    if s.seed != 0 {
        parts.push(format!("seed {}", s.seed));
    }
    parts.join(" · ")
}
