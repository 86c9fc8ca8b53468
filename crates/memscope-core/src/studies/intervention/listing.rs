//! The top of a ranking, listed with each neuron's scores (`memscope scores`).

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::{NeuronQuery, RankingSpec, SelectedNeuron, selected_neurons};
use crate::jobs::Silent;
use crate::neurons::Granularity;
use crate::neurons::select::{Selection, in_scope};
use crate::session::Session;

/// Neurons listed when a request names no number: a screenful.
pub const DEFAULT_TOP: usize = 20;

/// Which ranking to list, and how much of its top.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreRequest {
    pub epoch: usize,
    /// Neurons listed (fewer when the scope holds fewer).
    pub top: usize,
    /// The ranking; its selection is ignored.
    #[serde(flatten)]
    pub query: NeuronQuery,
    pub seed: u64,
}

/// The answer of `memscope scores`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScoreList {
    pub ranking: RankingSpec,
    pub granularity: Granularity,
    /// Neurons in scope.
    pub candidates: usize,
    pub neurons: Vec<SelectedNeuron>,
}

/// The top `request.top` neurons of the ranking `request.query` makes.
pub fn list(session: &mut Session, request: &ScoreRequest) -> Result<ScoreList> {
    let query = &request.query;
    let space = session.space(&query.candidates, query.granularity)?;
    let top = request.top.min(in_scope(&space, &query.scope)?);
    let query = NeuronQuery { selection: Selection::TopK(top), ..query.clone() };
    let ranking = RankingSpec::of(request.epoch, &query, request.seed);
    let (candidates, _, neurons) = selected_neurons(session, &ranking, &space, &mut Silent)?;
    Ok(ScoreList { ranking, granularity: query.granularity, candidates, neurons })
}
