//! Arguments shared by the commands that rank and select neurons.

use std::path::PathBuf;

use anyhow::Result;

use super::DataFlags;
use super::args::{self, CriterionArg, GroupArg, SubsetArgs};
use memscope_core::data::{GroupedDataset, Split};
use memscope_core::neurons::scores::{Criterion, Sampling};
use memscope_core::neurons::select::{DEFAULT_K, Scope, Selection};
use memscope_core::neurons::{CandidateFilter, Granularity};
use memscope_core::session::Session;
use memscope_core::studies::intervention::{
    DEFAULT_SCORE_SPLIT, InterventionSpec, NeuronQuery, default_group,
};
use memscope_core::studies::{DEFAULT_SEED, DEFAULT_SPLIT};

/// Which experiment and epoch, and the split accuracy is measured on.
#[derive(clap::Args, Debug, Clone)]
pub struct Target {
    /// Experiment folder (default: the bundled demo).
    #[arg(long)]
    pub experiment: Option<PathBuf>,
    /// Epoch to intervene on (default: the last).
    #[arg(long, allow_negative_numbers = true, value_parser = args::count)]
    pub epoch: Option<usize>,
    /// Split the accuracies are measured on: train, val or test.
    #[arg(long, default_value_t = DEFAULT_SPLIT)]
    pub split: Split,
    /// Seed of every random choice (noise, re-init, control draws, high-loss sampling).
    #[arg(long, default_value_t = DEFAULT_SEED, allow_negative_numbers = true, value_parser = args::seed)]
    pub seed: u64,
    #[command(flatten)]
    pub session: args::SessionArgs,
    #[command(flatten)]
    pub subset: SubsetArgs,
}

impl Target {
    /// The session on the experiment, and the epoch (checked to have a checkpoint).
    pub fn open(&self, device: &burn::prelude::Device, data: &DataFlags) -> Result<(Session, usize)> {
        let options = data.options(&self.subset);
        let (experiment, dataset) = super::open_experiment(self.experiment.clone(), &options)?;
        let epoch = self.epoch.unwrap_or_else(|| experiment.last_epoch());
        experiment.checkpoint(epoch)?;
        let mut session = Session::new(experiment, dataset, device.clone())?;
        session.set_budgets(self.session.budgets());
        Ok((session, epoch))
    }
}

/// Which neurons are candidates and how they are scored.
#[derive(clap::Args, Debug, Clone)]
pub struct Scoring {
    /// Score: magnitude (group invariant) or gradient (of one group's loss).
    #[arg(long, default_value_t = CriterionArg::from(&NeuronQuery::default().criterion))]
    pub criterion: CriterionArg,
    /// Group whose loss gradient is scored: G0..G3, its number or its name
    /// (default: the smallest training group). `all` uses every example (label-free).
    #[arg(long)]
    pub group: Option<GroupArg>,
    /// Split the gradient is computed on (the authors' code: train).
    #[arg(long, default_value_t = DEFAULT_SCORE_SPLIT)]
    pub score_split: Split,
    /// Examples of the gradient: all, lowest-confidence:N (authors' code, N = 200),
    /// high-loss:POOL:DRAW (slides' label-free variant, 256:128).
    #[arg(long, default_value_t = Sampling::default())]
    pub sampling: Sampling,
    /// Neuron granularity: unit (filter; authors' code), kernel (W[c,i,:,:]) or weight.
    #[arg(long, default_value_t = NeuronQuery::default().granularity)]
    pub granularity: Granularity,
    #[command(flatten)]
    pub layers: Candidates,
    /// Rank within this layer only (structured tracing) instead of globally: the score
    /// percentile is then a rank within the layer; the magnitude percentile stays over all
    /// candidates (each output names its scope). In a ViT's fused attention qkv layer, also
    /// one of q, k, v (`blocks.3.attn.qkv:k`) or one head of it (`blocks.3.attn.qkv:k:h2`).
    #[arg(long)]
    pub within: Option<String>,
    /// Divide scores by their layer's mean before ranking globally; outputs show this
    /// ranking score (score / layer mean; JSON ranking_score) beside the raw score.
    #[arg(long)]
    pub normalize_layers: bool,
}

/// Which layers hold candidate neurons.
#[derive(clap::Args, Debug, Clone)]
pub struct Candidates {
    /// Leave the classifier head out of the candidates.
    #[arg(long)]
    pub exclude_head: bool,
    /// Leave the residual shortcut (downsample) convs out of the candidates.
    #[arg(long)]
    pub exclude_shortcuts: bool,
    /// Only these candidate layers (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub layers: Vec<String>,
}

impl Candidates {
    pub fn filter(&self) -> CandidateFilter {
        CandidateFilter {
            exclude_head: self.exclude_head,
            exclude_shortcuts: self.exclude_shortcuts,
            layers: self.layers.clone(),
        }
    }
}

impl Scoring {
    /// The criterion on `dataset` (the default group resolved), seeded by `seed`.
    pub fn criterion(&self, dataset: &GroupedDataset, seed: u64) -> Result<Criterion> {
        Ok(match self.criterion {
            CriterionArg::Magnitude => Criterion::Magnitude,
            CriterionArg::Gradient => {
                let group = match &self.group {
                    Some(group) => group.resolve(dataset)?,
                    None => Some(default_group(dataset)),
                };
                Criterion::Gradient { group, split: self.score_split, sampling: self.sampling, seed }
            }
        })
    }

    /// The ranking these options describe, taking `selection`.
    pub fn query(&self, dataset: &GroupedDataset, seed: u64, selection: Selection) -> Result<NeuronQuery> {
        Ok(NeuronQuery {
            criterion: self.criterion(dataset, seed)?,
            selection,
            scope: self.within.clone().map_or(Scope::Global, Scope::Layer),
            normalize_layers: self.normalize_layers,
            granularity: self.granularity,
            candidates: self.layers.filter(),
        })
    }
}

/// How many neurons: `-k`, `--fraction`, or the random control.
#[derive(clap::Args, Debug, Clone)]
pub struct Count {
    #[arg(short, long, allow_negative_numbers = true, value_parser = args::positive,
          help = format!("Take the top k neurons (default {DEFAULT_K}, as in the slides)"))]
    pub k: Option<usize>,
    /// Take the top fraction q of the candidates instead, q in (0, 1].
    #[arg(long, conflicts_with = "k", allow_negative_numbers = true, value_parser = args::fraction)]
    pub fraction: Option<f64>,
    /// Control: draw that many neurons at random from outside the top of the ranking
    /// (outside the top k, or the top fraction).
    #[arg(long)]
    pub random_control: bool,
    /// Change exactly these neurons instead of a ranking's top, ids as the outputs write
    /// them (stem.conv:13, layer4.1.conv2:17, blocks.3.attn.qkv:k:h2:17; comma-separated;
    /// at --granularity kernel or weight, those ids). The criterion only scores them.
    #[arg(long, value_name = "ID,...", value_delimiter = ',',
          conflicts_with_all = ["k", "fraction", "random_control", "within", "normalize_layers"])]
    pub neurons: Vec<String>,
}

impl Count {
    /// The selection asked for: the neurons named, or the top of the ranking (the random
    /// control is applied to the whole spec).
    pub fn selection(&self, session: &Session, scoring: &Scoring) -> Result<Selection> {
        Ok(named(session, scoring, &self.neurons)?.unwrap_or_else(|| self.top()))
    }

    /// The top of the ranking asked for.
    pub fn top(&self) -> Selection {
        match (self.k, self.fraction) {
            (_, Some(q)) => Selection::TopFraction(q),
            (k, None) => Selection::TopK(k.unwrap_or(DEFAULT_K)),
        }
    }

    /// `spec` with its selection turned into the random control when asked.
    pub fn apply(&self, spec: InterventionSpec, session: &Session) -> Result<InterventionSpec> {
        if self.random_control { spec.random_control(session.layers()) } else { Ok(spec) }
    }
}

/// The neurons `ids` names, parsed in the space `scoring` describes (its granularity and
/// candidate layers); `None` when none are named.
pub fn named(session: &Session, scoring: &Scoring, ids: &[String]) -> Result<Option<Selection>> {
    if ids.is_empty() {
        return Ok(None);
    }
    let space = session.space(&scoring.layers.filter(), scoring.granularity)?;
    Ok(Some(Selection::ByHand(space.named(ids)?)))
}
