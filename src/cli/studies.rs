//! `memscope scores`, `ranks`, `sensitivity` and `control`.

use anyhow::Result;
use burn::prelude::*;

use super::DataFlags;
use super::args;
use super::output::OutputArgs;
use super::progress::Bar;
use super::select::{Candidates, Scoring, Target};
use crate::neurons::select::Selection;
use crate::report::Provenance;
use crate::studies::intervention::{DEFAULT_REPEATS, ScoreRequest, list};
use crate::studies::{control, ranks, sensitivity};

#[derive(clap::Args, Debug)]
pub struct ScoresArgs {
    /// How many of the top neurons to list.
    #[arg(long, default_value_t = 20, allow_negative_numbers = true, value_parser = args::positive)]
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
    /// Top fraction of neurons taken by each score (the paper: 0.0001 = 0.01%; at least
    /// one neuron is taken).
    #[arg(long, default_value_t = 0.0001, allow_negative_numbers = true, value_parser = args::fraction)]
    pub fraction: f64,
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub scoring: Scoring,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run_ranks(args: RanksArgs, device: &Device, data: &DataFlags) -> Result<()> {
    let (mut session, epoch) = args.target.open(device, data)?;
    let spec = ranks::RankSpec {
        epoch,
        fraction: args.fraction,
        granularity: args.scoring.granularity,
        candidates: args.scoring.layers.filter(),
        split: args.scoring.score_split,
        sampling: args.scoring.sampling,
        seed: args.target.seed,
    };
    let study = ranks::run(&mut session, &spec, &mut Bar::new("rank histograms (groups)"))?;
    args.output
        .emit(&study, &Provenance::new(session.experiment(), &session.dataset().changes, epoch, &spec)?)
}

#[derive(clap::Args, Debug)]
pub struct SensitivityArgs {
    /// Rewinding distances in epochs (the slides: 5,10,20,30,40).
    #[arg(long, value_delimiter = ',', default_values_t = sensitivity::DEFAULT_EPOCHS_BACK,
          allow_negative_numbers = true, value_parser = args::count)]
    pub epochs_back: Vec<usize>,
    /// A layer is sensitive for a group when |accuracy change| >= this (0.01 = 1 point;
    /// with 100 examples in a group, 1 example).
    #[arg(long, default_value_t = 0.01, allow_negative_numbers = true, value_parser = args::non_negative)]
    pub threshold: f64,
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub layers: Candidates,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run_sensitivity(args: SensitivityArgs, device: &Device, data: &DataFlags) -> Result<()> {
    let (mut session, epoch) = args.target.open(device, data)?;
    let spec = sensitivity::SensitivitySpec {
        epoch,
        split: args.target.split,
        epochs_back: args.epochs_back.clone(),
        threshold: args.threshold,
        candidates: args.layers.filter(),
    };
    let study = sensitivity::run(&mut session, &spec, &mut Bar::new("sensitive layers (rewinds)"))?;
    args.output
        .emit(&study, &Provenance::new(session.experiment(), &session.dataset().changes, epoch, &spec)?)
}

#[derive(clap::Args, Debug)]
pub struct ControlArgs {
    /// Fractions of the candidates zeroed (the slides: 0.0001,0.0002,0.0003).
    #[arg(long, value_delimiter = ',', default_values_t = [0.0001, 0.0002, 0.0003],
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

pub fn run_control(args: ControlArgs, device: &Device, data: &DataFlags) -> Result<()> {
    let (mut session, epoch) = args.target.open(device, data)?;
    let spec = control::ControlSpec {
        epoch,
        split: args.target.split,
        fractions: args.fractions.clone(),
        criterion: args.scoring.criterion(session.dataset(), args.target.seed)?,
        granularity: args.scoring.granularity,
        candidates: args.scoring.layers.filter(),
        repeats: args.repeats,
        seed: args.target.seed,
    };
    let study = control::run(&mut session, &spec, &mut Bar::new("control (fractions)"))?;
    args.output
        .emit(&study, &Provenance::new(session.experiment(), &session.dataset().changes, epoch, &spec)?)
}
