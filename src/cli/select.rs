//! Arguments shared by the commands that rank and select neurons.

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::data::{GroupedDataset, Split};
use crate::neurons::scores::{Criterion, Sampling};
use crate::neurons::select::{Scope, Selection};
use crate::neurons::{CandidateFilter, Granularity};
use crate::session::Session;

/// Which experiment and epoch, and the split accuracy is measured on.
#[derive(clap::Args, Debug, Clone)]
pub struct Target {
    /// Experiment folder (default: the bundled demo).
    #[arg(long)]
    pub experiment: Option<PathBuf>,
    /// Epoch to intervene on (default: the last).
    #[arg(long)]
    pub epoch: Option<usize>,
    /// Split the accuracies are measured on: train, val or test.
    #[arg(long, default_value = "val")]
    pub split: String,
    /// Seed of every random choice (noise, re-init, control draws, high-loss sampling).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Memory for cached activations, MB (0 turns the cache off): an intervention confined
    /// to later layers resumes from the activations cached at a stage boundary.
    #[arg(long, default_value_t = crate::session::DEFAULT_ACTIVATION_BUDGET >> 20)]
    pub cache_mb: usize,
}

impl Target {
    pub fn open(&self, device: &burn::prelude::Device) -> Result<(Session, usize, Split)> {
        let split: Split = self.split.parse()?;
        let (experiment, dataset) = super::open_experiment(self.experiment.clone())?;
        let epoch = self.epoch.unwrap_or_else(|| experiment.last_epoch());
        experiment.checkpoint(epoch)?;
        let mut session = Session::new(experiment, dataset, device.clone())?;
        session.set_activation_budget(self.cache_mb.saturating_mul(1 << 20));
        Ok((session, epoch, split))
    }
}

/// Which neurons are candidates and how they are scored.
#[derive(clap::Args, Debug, Clone)]
pub struct Scoring {
    /// Score: magnitude (group invariant) or gradient (of one group's loss).
    #[arg(long, default_value = "gradient")]
    pub criterion: String,
    /// Group whose loss gradient is scored: G0..G3, its number or its name
    /// (default: the smallest training group). `all` uses every example (label-free).
    #[arg(long)]
    pub group: Option<String>,
    /// Split the gradient is computed on (the authors' code: train).
    #[arg(long, default_value = "train")]
    pub score_split: String,
    /// Examples of the gradient: all, lowest-confidence:N (authors' code, N = 200),
    /// high-loss:POOL:DRAW (slides' label-free variant, 256:128).
    #[arg(long, default_value = "lowest-confidence:200")]
    pub sampling: String,
    /// Neuron granularity: unit (filter; authors' code), kernel or weight.
    #[arg(long, default_value = "unit")]
    pub granularity: String,
    #[command(flatten)]
    pub layers: Candidates,
    /// Rank within this layer only (structured tracing) instead of globally.
    #[arg(long)]
    pub within: Option<String>,
    /// Divide scores by their layer's mean before ranking globally.
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
    pub fn candidates(&self) -> CandidateFilter {
        self.layers.filter()
    }

    pub fn granularity(&self) -> Result<Granularity> {
        self.granularity.parse()
    }

    pub fn scope(&self) -> Scope {
        match &self.within {
            Some(layer) => Scope::Layer(layer.clone()),
            None => Scope::Global,
        }
    }

    pub fn criterion(&self, dataset: &GroupedDataset, seed: u64) -> Result<Criterion> {
        match self.criterion.as_str() {
            "magnitude" => Ok(Criterion::Magnitude),
            "gradient" => {
                let group = match self.group.as_deref() {
                    Some("all") => None,
                    Some(name) => Some(parse_group(name, dataset)?),
                    None => Some(smallest_group(dataset)),
                };
                let split: Split = self.score_split.parse()?;
                let sampling: Sampling = self.sampling.parse()?;
                Ok(Criterion::Gradient { group, split, sampling, seed })
            }
            other => bail!("unknown criterion '{other}' (valid: magnitude, gradient)"),
        }
    }
}

/// How many neurons: `-k`, `--fraction`, or the random control.
#[derive(clap::Args, Debug, Clone)]
pub struct Count {
    /// Take the top k neurons (default 3, as in the slides).
    #[arg(short, long)]
    pub k: Option<usize>,
    /// Take the top fraction q of the candidates instead, q in (0, 1].
    #[arg(long, conflicts_with = "k")]
    pub fraction: Option<f64>,
    /// Control: draw that many neurons at random from outside the top of the ranking
    /// (outside the top k, or the top fraction).
    #[arg(long)]
    pub random_control: bool,
}

impl Count {
    pub fn selection(&self, candidates: usize) -> Result<Selection> {
        let top = match (self.k, self.fraction) {
            (_, Some(q)) => Selection::TopFraction(q),
            (Some(k), None) => Selection::TopK(k),
            (None, None) => Selection::TopK(3),
        };
        if !self.random_control {
            return Ok(top);
        }
        Ok(match top {
            Selection::TopK(k) => Selection::Random {
                count: k,
                outside_top: (k.max(1) as f64 / candidates.max(1) as f64).min(1.0),
            },
            Selection::TopFraction(q) => {
                Selection::Random { count: crate::neurons::select::top_count(q, candidates)?, outside_top: q }
            }
            other => other,
        })
    }
}

/// A group named `G2`, `2` or by its name.
pub fn parse_group(text: &str, dataset: &GroupedDataset) -> Result<usize> {
    let n = dataset.num_groups();
    let index = text.strip_prefix('G').unwrap_or(text).parse::<usize>().ok().filter(|&g| g < n);
    if let Some(g) = index.or_else(|| dataset.group_names.iter().position(|name| name == text)) {
        return Ok(g);
    }
    let valid: Vec<String> =
        dataset.group_names.iter().enumerate().map(|(g, name)| format!("G{g} ({name})")).collect();
    bail!("unknown group '{text}' (valid: {}, or all)", valid.join(", "))
}

/// The group with the fewest training examples.
pub fn smallest_group(dataset: &GroupedDataset) -> usize {
    let counts = dataset.train.group_counts(dataset.num_groups());
    (0..counts.len()).min_by_key(|&g| (counts[g], g)).unwrap_or(0)
}
