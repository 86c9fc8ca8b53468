//! Numbers and runs in words, for the screen and the status line alike: the state (status
//! messages, the tour) and the views both use these, so neither imports the other for them.

use memscope_core::edit::Intervention;
use memscope_core::neurons::scores::Criterion;
use memscope_core::neurons::select::{Scope, Selection, top_count};
use memscope_core::studies::intervention::{InterventionResult, InterventionSpec};

/// A percentage with one decimal, or n/a.
pub fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{:.1}%", 100.0 * v)).unwrap_or_else(|| "n/a".into())
}

/// A signed change in points with one decimal, or n/a.
pub fn pts(v: Option<f64>) -> String {
    v.map(|v| format!("{:+.1}", 100.0 * v)).unwrap_or_else(|| "n/a".into())
}

/// `text` cut to `width` characters, its last one `…` when anything was cut: every text
/// the screen cuts short is cut here, so that a cut is always visible.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    match width {
        0 => String::new(),
        _ => text.chars().take(width - 1).chain(['…']).collect(),
    }
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
            match &s.query.selection {
                random @ Selection::Random { .. } => {
                    selection(random, Some(r.candidates), &s.query.granularity.to_string())
                }
                top => top.to_string(),
            },
            scope(&s.query.scope, s.query.normalize_layers),
            criterion(&s.query.criterion),
            s.epoch
        ),
    }
}

/// A scope in words: `global`, `global ÷ layer mean`, `within LAYER`.
fn scope(scope: &Scope, normalize_layers: bool) -> String {
    match scope {
        Scope::Global if normalize_layers => "global ÷ layer mean".into(),
        Scope::Global => "global".into(),
        Scope::Layer(layer) => format!("within {layer}"),
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

/// A selection of neurons of granularity `unit` in words, fractions with one decimal. The
/// random control, where the scope's size (`candidates`) is known, in counts: "3 random of
/// the 29 units outside the top 3".
fn selection(s: &Selection, candidates: Option<usize>, unit: &str) -> String {
    match s {
        Selection::TopK(k) => format!("top-{k} {unit}s"),
        Selection::TopFraction(q) => format!("top {:.1}% {unit}s", 100.0 * q),
        Selection::Random { count, outside_top } => match candidates {
            Some(n) => {
                let top = top_count(*outside_top, n).unwrap_or(0);
                format!("{count} random of the {} {unit}s outside the top {top}", n.saturating_sub(top))
            }
            None => format!("{count} random {unit}s outside the top {:.1}%", 100.0 * outside_top),
        },
        Selection::ByHand(ids) => format!("{} {unit}s chosen by hand", ids.len()),
    }
}

/// Every setting of a run, in words (wrapped where shown, never cut), the random control's
/// in counts of its scope.
pub fn describe_run(r: &InterventionResult) -> String {
    describe_with(&r.spec, Some(r.candidates))
}

/// Every setting of an intervention, in words (wrapped where shown, never cut).
pub fn describe(s: &InterventionSpec) -> String {
    describe_with(s, None)
}

/// [`describe`], with the number of neurons in the ranking's scope where it is known.
fn describe_with(s: &InterventionSpec, candidates: Option<usize>) -> String {
    let mut parts = vec![format!("epoch {}", s.epoch)];
    match &s.intervention {
        Intervention::RewindLayer { layer, epochs_back } => {
            parts.push(format!("rewind layer {layer} {epochs_back} epochs back"))
        }
        change => {
            let q = &s.query;
            parts.push(format!(
                "{change} {}",
                selection(&q.selection, candidates, &q.granularity.to_string())
            ));
            parts.push(scope(&q.scope, q.normalize_layers));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_text_ends_in_an_ellipsis_and_a_whole_one_is_left_alone() {
        assert_eq!(fit("within stage2.block0.shortcut.conv", 30), "within stage2.block0.shortcut…");
        assert_eq!(fit("within stage2.block0.shortcut.conv", 30).chars().count(), 30);
        assert_eq!(fit("global", 6), "global");
        assert_eq!(fit("global", 1), "…");
        assert_eq!(fit("global", 0), "");
    }

    #[test]
    fn the_random_control_reads_in_counts_of_its_scope() {
        let control = Selection::Random { count: 3, outside_top: 3.0 / 32.0 };
        assert_eq!(selection(&control, Some(32), "unit"), "3 random of the 29 units outside the top 3");
        assert_eq!(selection(&control, None, "unit"), "3 random units outside the top 9.4%");
        assert_eq!(selection(&Selection::TopK(3), Some(32), "unit"), "top-3 units");
    }
}
