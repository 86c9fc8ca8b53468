//! The caption under a result: what it shows, and why it may differ from the paper's
//! picture (the setting that usually explains it). Short enough for two lines at 80 columns.

use super::app::{Action, View};
use super::keymap::Keymap;
use memscope_core::edit::Intervention;
use memscope_core::model::LayerInfo;
use memscope_core::neurons::scores::Criterion;
use memscope_core::neurons::select::{Scope, Selection, list};
use memscope_core::studies::intervention::InterventionResult;
use memscope_core::studies::shift::count;

/// The caption of an intervention's result. `layers` tells which layers are the stem;
/// `train` holds each group's training count (groups under 10% of it are the minority); a
/// view is named with its key in `keys`.
pub fn intervention(r: &InterventionResult, layers: &[LayerInfo], train: &[usize], keys: &Keymap) -> String {
    let q = &r.spec.query;
    if let Intervention::RewindLayer { .. } = r.spec.intervention {
        let sensitivity = keys.label(Action::Show(View::Sensitivity));
        return format!(
            "One layer rewound; the Sensitivity view ({sensitivity}) rewinds each layer alone, in turn"
        );
    }
    if let Selection::ByHand(ids) = &q.selection {
        return format!("Chosen by hand: {}; the ranking only scored them", list(ids));
    }
    if let Selection::Random { .. } = q.selection {
        return "Random control: as many neurons outside the top; compare with the top's change".into();
    }
    let in_stem = r
        .neurons
        .iter()
        .filter(|n| layers.iter().any(|l| l.name == n.id.layer && l.stage.is_none() && !l.head))
        .count();
    let raw_global = q.scope == Scope::Global && !q.normalize_layers;
    if raw_global && matches!(q.criterion, Criterion::Gradient { .. }) && 2 * in_stem > r.neurons.len() {
        return format!(
            "{in_stem} of {} are stem filters (raw gradients favour the stem): try scope ÷ layer mean",
            r.neurons.len()
        );
    }
    if q.criterion == Criterion::Magnitude {
        return "Magnitude ranks the same neurons for every group; try a group's gradient".into();
    }
    if r.runs > 1 {
        return format!("{}; mean of {} runs, whiskers ±1 std", minority_majority(r, train), r.runs);
    }
    minority_majority(r, train)
}

/// The engine's one minority definition (the report's too).
pub use memscope_core::data::MINORITY_SHARE;

/// "minority G1 +54 G2 −24 · majority G0 −1 G3 −95 pp".
fn minority_majority(r: &InterventionResult, train: &[usize]) -> String {
    let flags = memscope_core::data::minority(train);
    let part = |minority: bool| {
        r.groups
            .iter()
            .filter(|g| flags.get(g.group) == Some(&minority))
            .map(|g| {
                format!(
                    "G{} {}",
                    g.group,
                    g.change.map(|c| format!("{:+.0}", 100.0 * c)).unwrap_or("n/a".into())
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    format!("Minority (<10% of train) {} · majority {} pp", part(true), part(false))
}

/// The boundary-shift control of `r` in one line: "A boundary shift explains 70 of 76 flips
/// (minority G1 36/42 G2 31/31)", the minority groups' explained/flips kept only where the
/// line fits in `width` columns (the sentence alone is under 50). `None` for a result read
/// from before the control existed.
pub fn boundary_shift(r: &InterventionResult, train: &[usize], width: usize) -> Option<String> {
    let s = r.boundary_shift.as_ref()?;
    let sentence = s.sentence();
    let mut chars = sentence.chars();
    let line: String = chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default();
    let flags = memscope_core::data::minority(train);
    let groups: Vec<String> = (0..s.mean_group_flips.len())
        .filter(|&g| flags.get(g) == Some(&true) && s.mean_group_flips[g] > 0.0)
        .map(|g| format!("G{g} {}/{}", count(s.mean_group_explained[g]), count(s.mean_group_flips[g])))
        .collect();
    let long = format!("{line} (minority {})", groups.join(" "));
    let said = s.mean_explained > 0.0 && !groups.is_empty() && long.chars().count() <= width;
    Some(if said { long } else { line })
}
