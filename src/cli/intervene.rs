//! `memscope intervene` and `memscope rewind`: one intervention and its per-group change.

use anyhow::{Result, bail};
use burn::prelude::*;

use super::DataFlags;
use super::args::{self, Kind};
use super::output::OutputArgs;
use super::progress::Bar;
use super::select::{Count, Scoring, Target};
use memscope_core::edit::{DEFAULT_EPOCHS_BACK, DEFAULT_NOISE_SIGMA, DEFAULT_REINIT_SIGMA, Intervention};
use memscope_core::render::Provenance;
use memscope_core::studies::intervention::{DEFAULT_REPEATS, InterventionSpec, run};

/// The change made to the selected neurons and how often a random one runs (shared by
/// `intervene` and `figure sweep`).
#[derive(clap::Args, Debug)]
pub struct ChangeArgs {
    /// zero (prune), reinit, noise, or rewind (the selected neurons to an earlier epoch).
    #[arg(long, default_value_t = Kind::from(&InterventionSpec::default().intervention))]
    pub kind: Kind,
    #[arg(long, allow_negative_numbers = true, value_parser = args::non_negative, help = format!(
        "σ of re-init (default {DEFAULT_REINIT_SIGMA}) or noise (default {DEFAULT_NOISE_SIGMA}), from the authors' configurations"
    ))]
    pub sigma: Option<f64>,
    /// Re-initialise with σ·Uniform[0, 1) (the code's threshold script) instead of N(0, σ²).
    #[arg(long)]
    pub uniform: bool,
    #[arg(long, allow_negative_numbers = true, value_parser = args::count,
          help = format!("How far back a rewind goes (default {DEFAULT_EPOCHS_BACK} epochs)"))]
    pub epochs_back: Option<usize>,
    /// Runs of a random intervention, averaged (the slides: 10).
    #[arg(long, default_value_t = DEFAULT_REPEATS, allow_negative_numbers = true, value_parser = args::repeats)]
    pub repeats: usize,
}

impl ChangeArgs {
    /// The change `--kind` and its options describe.
    pub fn intervention(&self) -> Result<Intervention> {
        if self.sigma.is_some() && !matches!(self.kind, Kind::Reinit | Kind::Noise) {
            bail!("--sigma applies to --kind reinit or noise only");
        }
        Ok(self.kind.intervention(self.sigma, self.uniform, self.epochs_back))
    }
}

#[derive(clap::Args, Debug)]
pub struct InterveneArgs {
    #[command(flatten)]
    pub change: ChangeArgs,
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub scoring: Scoring,
    #[command(flatten)]
    pub count: Count,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(clap::Args, Debug)]
pub struct RewindArgs {
    /// The layer to rewind (weight and bias).
    #[arg(long)]
    pub layer: String,
    #[arg(long, default_value_t = DEFAULT_EPOCHS_BACK, allow_negative_numbers = true, value_parser = args::count,
          help = format!("How far back (default {DEFAULT_EPOCHS_BACK} epochs)"))]
    pub epochs_back: usize,
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run_intervene(args: InterveneArgs, device: &Device, data: &DataFlags) -> Result<()> {
    let intervention = args.change.intervention()?;
    let (mut session, epoch) = args.target.open(device, data)?;
    let seed = args.target.seed;
    let selection = args.count.selection(&session, &args.scoring)?;
    let query = args.scoring.query(session.dataset(), seed, selection)?;
    let spec = InterventionSpec::neurons(epoch)
        .seed(seed)
        .query(query)
        .change(intervention)
        .on(args.target.split)
        .repeats(args.change.repeats);
    let spec = args.count.apply(spec, &session)?;
    let result = run(&mut session, &spec, &mut Bar::new("intervention (runs)"))?;
    args.output
        .emit(&result, &Provenance::new(session.experiment(), &session.dataset().changes, epoch, &spec)?)
}

pub fn run_rewind(args: RewindArgs, device: &Device, data: &DataFlags) -> Result<()> {
    let (mut session, epoch) = args.target.open(device, data)?;
    let spec = InterventionSpec::rewind_layer(epoch, args.layer, args.epochs_back)
        .on(args.target.split)
        .seed(args.target.seed);
    let result = run(&mut session, &spec, &mut Bar::new("intervention (runs)"))?;
    args.output
        .emit(&result, &Provenance::new(session.experiment(), &session.dataset().changes, epoch, &spec)?)
}
