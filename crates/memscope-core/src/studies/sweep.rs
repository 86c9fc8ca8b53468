//! A layer sweep: one intervention within each layer in turn (a layer rewind: on each layer),
//! every group's change per layer — the paper's layer × group grids, one request.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::GroupChange;
use super::intervention::{self, InterventionSpec};
use crate::edit::Intervention;
use crate::jobs::{Progress, Within, is_cancelled};
use crate::neurons::CandidateFilter;
use crate::neurons::select::Selection;
use crate::session::Session;

/// The intervention swept and the layers it is swept over.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepSpec {
    /// The intervention; its scope (or rewound layer) is replaced by each layer in turn.
    pub base: InterventionSpec,
    pub layers: Vec<String>,
    /// Turn each layer's top selection into its random control (drawn outside that layer's
    /// top, as `--within LAYER --random-control` does).
    pub random_control: bool,
}

/// One layer's outcome: each group's change, or why the intervention does not apply there
/// (e.g. top-3 of a layer with 2 neurons).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepRow {
    pub layer: String,
    /// The intervention run on this layer (`memscope intervene --within LAYER` with the same
    /// settings gives the same numbers).
    pub spec: InterventionSpec,
    pub groups: Vec<GroupChange>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    pub spec: SweepSpec,
    pub rows: Vec<SweepRow>,
}

impl SweepSpec {
    /// `base` within each of `layers` in turn, its top selection as it is; neurons chosen by
    /// hand are swept over the layers that hold them, each row changing that layer's.
    pub fn every_layer(base: InterventionSpec, layers: &[crate::model::LayerInfo]) -> Self {
        let layers = layers
            .iter()
            .filter(|l| match &base.query.selection {
                Selection::ByHand(ids) => ids.iter().any(|id| id.layer == l.name),
                _ => true,
            })
            .map(|l| l.name.clone())
            .collect();
        SweepSpec { base, layers, random_control: false }
    }

    /// The intervention on `layer`: ranked within it, or (a layer rewind) rewinding it.
    pub fn at(&self, layer: &str) -> InterventionSpec {
        match &self.base.intervention {
            Intervention::RewindLayer { epochs_back, .. } => {
                let mut spec = self.base.clone();
                spec.intervention =
                    Intervention::RewindLayer { layer: layer.into(), epochs_back: *epochs_back };
                spec
            }
            // Within one layer the candidate filter has nothing to leave out.
            _ => {
                let spec = self.base.clone().within(layer).candidates(CandidateFilter::default());
                match &spec.query.selection {
                    Selection::ByHand(ids) => {
                        let here = ids.iter().filter(|id| id.layer == layer).cloned().collect();
                        spec.select(Selection::ByHand(here))
                    }
                    _ => spec,
                }
            }
        }
    }
}

/// Runs the sweep, reporting each finished layer; a cancellation stops it.
pub fn run(session: &mut Session, spec: &SweepSpec, progress: &mut dyn Progress) -> Result<Sweep> {
    let mut rows = Vec::with_capacity(spec.layers.len());
    for (i, layer) in spec.layers.iter().enumerate() {
        let mut at = spec.at(layer);
        if spec.random_control {
            at = at.clone().random_control(session.layers()).unwrap_or(at);
        }
        let row = match intervention::run(session, &at, &mut Within::new(progress, i, spec.layers.len())) {
            Ok(result) => SweepRow { layer: layer.clone(), spec: at, groups: result.groups, error: None },
            Err(e) if is_cancelled(&e) => return Err(e),
            Err(e) => {
                SweepRow { layer: layer.clone(), spec: at, groups: Vec::new(), error: Some(format!("{e:#}")) }
            }
        };
        rows.push(row);
        progress.report(i + 1, spec.layers.len())?;
    }
    Ok(Sweep { spec: spec.clone(), rows })
}
