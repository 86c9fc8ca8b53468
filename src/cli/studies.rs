//! `memscope scores`, `ranks`, `sensitivity` and `control`.

use anyhow::Result;
use burn::prelude::*;

use super::DataFlags;
use super::args;
use super::output::OutputArgs;
use super::progress::Bar;
use super::select::{Candidates, Scoring, Target};
use memscope_core::neurons::select::Selection;
use memscope_core::render::Provenance;
use memscope_core::studies::intervention::{DEFAULT_REPEATS, DEFAULT_TOP, ScoreRequest, list};
use memscope_core::studies::{control, ranks, sensitivity};

#[derive(clap::Args, Debug)]
pub struct ScoresArgs {
    /// How many of the top neurons to list.
    #[arg(long, default_value_t = DEFAULT_TOP, allow_negative_numbers = true, value_parser = args::positive)]
    pub top: usize,
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub scoring: Scoring,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run_scores(args: ScoresArgs, device: &Device, data: &DataFlags) -> Result<()> {
    let (mut session, epoch) = args.target.open(device, data)?;
    let seed = args.target.seed;
    let query = args.scoring.query(session.dataset(), seed, Selection::TopK(args.top))?;
    let request = ScoreRequest { epoch, top: args.top, query, seed };
    let scores = list(&mut session, &request)?;
    args.output
        .emit(&scores, &Provenance::new(session.experiment(), &session.dataset().changes, epoch, &request)?)
}

#[derive(clap::Args, Debug)]
pub struct RanksArgs {
    #[command(flatten)]
    pub settings: RanksSettings,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// What `ranks` computes (shared with `figure ranks`).
#[derive(clap::Args, Debug, Clone)]
pub struct RanksSettings {
    /// Top fraction of neurons taken by each score (the paper: 0.0001 = 0.01%; at least
    /// one neuron is taken).
    #[arg(long, default_value_t = ranks::DEFAULT_FRACTION, allow_negative_numbers = true,
          value_parser = args::fraction)]
    pub fraction: f64,
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub scoring: Scoring,
}

impl RanksSettings {
    /// The study on the session at `epoch`.
    pub fn spec(&self, epoch: usize) -> ranks::RankSpec {
        ranks::RankSpec {
            epoch,
            fraction: self.fraction,
            granularity: self.scoring.granularity,
            candidates: self.scoring.layers.filter(),
            split: self.scoring.score_split,
            sampling: self.scoring.sampling,
            seed: self.target.seed,
        }
    }

    /// Opens the experiment and runs the study.
    pub fn run(&self, device: &Device, data: &DataFlags) -> Result<(ranks::RankStudy, Provenance)> {
        let (mut session, epoch) = self.target.open(device, data)?;
        let spec = self.spec(epoch);
        let study = ranks::run(&mut session, &spec, &mut Bar::new("rank histograms (groups)"))?;
        let provenance = Provenance::new(session.experiment(), &session.dataset().changes, epoch, &spec)?;
        Ok((study, provenance))
    }
}

pub fn run_ranks(args: RanksArgs, device: &Device, data: &DataFlags) -> Result<()> {
    let (study, provenance) = args.settings.run(device, data)?;
    args.output.emit(&study, &provenance)
}

#[derive(clap::Args, Debug)]
pub struct SensitivityArgs {
    #[command(flatten)]
    pub settings: SensitivitySettings,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// What `sensitivity` computes (shared with `figure sensitivity`).
#[derive(clap::Args, Debug, Clone)]
pub struct SensitivitySettings {
    /// Rewinding distances in epochs (the slides: 5,10,20,30,40).
    #[arg(long, value_delimiter = ',', default_values_t = sensitivity::DEFAULT_EPOCHS_BACK,
          allow_negative_numbers = true, value_parser = args::count)]
    pub epochs_back: Vec<usize>,
    /// A layer is sensitive for a group when |accuracy change| >= this (0.01 = 1 point;
    /// with 100 examples in a group, 1 example).
    #[arg(long, default_value_t = sensitivity::DEFAULT_THRESHOLD, allow_negative_numbers = true,
          value_parser = args::non_negative)]
    pub threshold: f64,
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub layers: Candidates,
}

impl SensitivitySettings {
    /// The study at `epoch`.
    pub fn spec(&self, epoch: usize) -> sensitivity::SensitivitySpec {
        sensitivity::SensitivitySpec {
            epoch,
            split: self.target.split,
            epochs_back: self.epochs_back.clone(),
            threshold: self.threshold,
            candidates: self.layers.filter(),
        }
    }

    /// Opens the experiment and runs the study.
    pub fn run(
        &self,
        device: &Device,
        data: &DataFlags,
    ) -> Result<(sensitivity::SensitivityStudy, Provenance)> {
        let (mut session, epoch) = self.target.open(device, data)?;
        let spec = self.spec(epoch);
        let study = sensitivity::run(&mut session, &spec, &mut Bar::new("sensitive layers (rewinds)"))?;
        let provenance = Provenance::new(session.experiment(), &session.dataset().changes, epoch, &spec)?;
        Ok((study, provenance))
    }
}

pub fn run_sensitivity(args: SensitivityArgs, device: &Device, data: &DataFlags) -> Result<()> {
    let (study, provenance) = args.settings.run(device, data)?;
    args.output.emit(&study, &provenance)
}

#[derive(clap::Args, Debug)]
pub struct ControlArgs {
    /// Fractions of the candidates zeroed (the slides: 0.0001,0.0002,0.0003).
    #[arg(long, value_delimiter = ',', default_values_t = control::DEFAULT_FRACTIONS,
          allow_negative_numbers = true, value_parser = args::fraction)]
    pub fractions: Vec<f64>,
    /// Random draws of control neurons per fraction.
    #[arg(long, default_value_t = DEFAULT_REPEATS, allow_negative_numbers = true, value_parser = args::repeats)]
    pub repeats: usize,
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub scoring: Scoring,
    #[command(flatten)]
    pub output: OutputArgs,
}

impl ControlArgs {
    /// The study on `dataset` at `epoch`.
    pub fn spec(
        &self,
        dataset: &memscope_core::data::GroupedDataset,
        epoch: usize,
    ) -> Result<control::ControlSpec> {
        Ok(control::ControlSpec {
            epoch,
            split: self.target.split,
            fractions: self.fractions.clone(),
            criterion: self.scoring.criterion(dataset, self.target.seed)?,
            granularity: self.scoring.granularity,
            candidates: self.scoring.layers.filter(),
            repeats: self.repeats,
            seed: self.target.seed,
        })
    }
}

pub fn run_control(args: ControlArgs, device: &Device, data: &DataFlags) -> Result<()> {
    let (mut session, epoch) = args.target.open(device, data)?;
    let spec = args.spec(session.dataset(), epoch)?;
    let study = control::run(&mut session, &spec, &mut Bar::new("control (fractions)"))?;
    args.output
        .emit(&study, &Provenance::new(session.experiment(), &session.dataset().changes, epoch, &spec)?)
}
