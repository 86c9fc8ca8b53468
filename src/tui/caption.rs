//! The caption under a result: what it shows, and why it may differ from the paper's
//! picture (the setting that usually explains it). Short enough for two lines at 80 columns.

use super::app::{Action, View};
use super::keymap::Keymap;
use memscope_core::edit::Intervention;
use memscope_core::model::LayerInfo;
use memscope_core::neurons::scores::Criterion;
use memscope_core::neurons::select::{Scope, Selection, list};
use memscope_core::studies::intervention::InterventionResult;

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

/// A group with less than this share of the training examples is a minority group (the
/// demo: 4% and 1%; Waterbirds: 4% and 1%; CelebA: 1%).
pub const MINORITY_SHARE: f64 = 0.1;

/// "minority G1 +54 G2 −24 · majority G0 −1 G3 −95 pp".
fn minority_majority(r: &InterventionResult, train: &[usize]) -> String {
    let total: usize = train.iter().sum();
    let even = total as f64 * MINORITY_SHARE;
    let part = |minority: bool| {
        r.groups
            .iter()
            .filter(|g| train.get(g.group).is_some_and(|&n| ((n as f64) < even) == minority))
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
