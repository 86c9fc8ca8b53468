//! The slides' Stage 1 figure as numbers: each intervention (zero-out, re-init, noise,
//! neuron rewind) on the top k neurons, for each k, with every group's change.

use anyhow::{Result, ensure};
use serde::{Deserialize, Serialize};

use super::intervention::{InterventionResult, InterventionSpec, run as intervene};
use crate::edit::{DEFAULT_EPOCHS_BACK, DEFAULT_NOISE_SIGMA, DEFAULT_REINIT_SIGMA, Intervention};
use crate::jobs::{Progress, Within};
use crate::neurons::select::Selection;
use crate::session::Session;

/// The slides' k: the top 1, 2 and 3 neurons.
pub const DEFAULT_KS: [usize; 3] = [1, 2, 3];

/// The slides' four neuron interventions, in their panel order, with the authors' default σ
/// and distance.
pub fn default_interventions() -> Vec<Intervention> {
    vec![
        Intervention::ZeroOut,
        Intervention::Reinit { sigma: DEFAULT_REINIT_SIGMA, uniform: false },
        Intervention::Noise { sigma: DEFAULT_NOISE_SIGMA },
        Intervention::RewindNeurons { epochs_back: DEFAULT_EPOCHS_BACK },
    ]
}

/// The Stage 1 figure's request: each intervention at each k of the base's ranking.
#[derive(Clone, Debug, PartialEq)]
pub struct GridSpec {
    /// Everything but the change and the count; its selection is replaced by each k (a
    /// ranking is recorded as top-1; neurons chosen by hand as named, each k taking the first
    /// k of them).
    pub base: InterventionSpec,
    pub interventions: Vec<Intervention>,
    pub ks: Vec<usize>,
}

impl GridSpec {
    pub fn new(base: InterventionSpec, interventions: Vec<Intervention>, ks: Vec<usize>) -> Self {
        // Neurons chosen by hand are recorded as named; a ranking as its top-1.
        let base = if base.query.selection.by_hand() { base } else { base.top_k(1) };
        GridSpec { base, interventions, ks }
    }

    /// The slides' figure on `base`: [`default_interventions`] at each of [`DEFAULT_KS`].
    pub fn slides(base: InterventionSpec) -> Self {
        GridSpec::new(base, default_interventions(), DEFAULT_KS.to_vec())
    }
}

/// Every (intervention, k) of a base spec: `results[i * ks.len() + j]` is intervention i at
/// `ks[j]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InterventionGrid {
    pub interventions: Vec<Intervention>,
    pub ks: Vec<usize>,
    pub results: Vec<InterventionResult>,
}

impl InterventionGrid {
    /// One intervention's result alone (as `memscope intervene` writes it).
    pub fn single(result: InterventionResult) -> InterventionGrid {
        let k = match &result.spec.query.selection {
            Selection::TopK(k) => *k,
            _ => result.neurons.len(),
        };
        InterventionGrid {
            interventions: vec![result.spec.intervention.clone()],
            ks: vec![k],
            results: vec![result],
        }
    }

    /// The result of intervention `i` at the `j`th k.
    pub fn get(&self, i: usize, j: usize) -> Option<&InterventionResult> {
        self.results.get(i * self.ks.len() + j)
    }
}

/// Runs the base with each intervention at each k (top-k of its ranking); `progress` hears
/// of each finished one and may cancel.
pub fn run(session: &mut Session, spec: &GridSpec, progress: &mut dyn Progress) -> Result<InterventionGrid> {
    let GridSpec { base, interventions, ks } = spec;
    ensure!(!interventions.is_empty() && !ks.is_empty(), "no interventions or no k given");
    let total = interventions.len() * ks.len();
    let mut results = Vec::with_capacity(total);
    for intervention in interventions {
        for &k in ks {
            let spec = base.clone().change(intervention.clone()).first(k)?;
            results.push(intervene(session, &spec, &mut Within::new(progress, results.len(), total))?);
            progress.report(results.len(), total)?;
        }
    }
    Ok(InterventionGrid { interventions: interventions.clone(), ks: ks.clone(), results })
}
