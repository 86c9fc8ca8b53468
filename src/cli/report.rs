//! `memscope report`: the engine's Stage 1 report ([`memscope_core::report::build`]: each
//! study with the settings its own command uses by default, so each number matches that
//! command) written as one self-contained HTML page, and its numbers as JSON if asked.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::prelude::*;

use super::DataFlags;
use super::args::{self, SubsetArgs};
use super::progress::Bar;
use memscope_core::data::Split;
use memscope_core::neurons::Granularity;
use memscope_core::neurons::select::Scope;
use memscope_core::report::{ReportSpec, build, html};
use memscope_core::session::Session;
use memscope_core::util::fsx::write_output;

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Experiment folder (default: the bundled demo).
    #[arg(long)]
    pub experiment: Option<PathBuf>,
    /// Epoch studied (default: the last).
    #[arg(long, allow_negative_numbers = true, value_parser = args::count)]
    pub epoch: Option<usize>,
    /// Split the accuracies are measured on: train, val or test.
    #[arg(long, default_value_t = ReportSpec::default().split)]
    pub split: Split,
    /// Seed of every random choice.
    #[arg(long, default_value_t = ReportSpec::default().seed, allow_negative_numbers = true,
          value_parser = args::seed)]
    pub seed: u64,
    /// Runs of each random intervention and random control draws (the slides: 10).
    #[arg(long, default_value_t = ReportSpec::default().repeats, allow_negative_numbers = true,
          value_parser = args::repeats)]
    pub repeats: usize,
    /// Rank the interventions' neurons within this layer (the explorer's tour) instead of
    /// globally (the paper); the rank histograms and the control table rank globally.
    #[arg(long, value_name = "LAYER")]
    pub within: Option<String>,
    /// Divide scores by their layer's mean before the interventions' global ranking.
    #[arg(long)]
    pub normalize_layers: bool,
    /// Neuron granularity of every study: unit (filter; authors' code), kernel or weight (a
    /// finer one makes the paper's small percentages select more than one neuron).
    #[arg(long, default_value_t = ReportSpec::default().granularity)]
    pub granularity: Granularity,
    /// Top fraction each score takes in the rank histograms (the paper: 0.0001 = 0.01%).
    #[arg(long, default_value_t = ReportSpec::default().rank_fraction, allow_negative_numbers = true,
          value_parser = args::fraction)]
    pub fraction: f64,
    /// Fractions of the candidates zeroed in the control table (the slides: 0.0001,0.0002,0.0003).
    #[arg(long, value_delimiter = ',', default_values_t = ReportSpec::default().control_fractions,
          allow_negative_numbers = true, value_parser = args::fraction)]
    pub fractions: Vec<f64>,
    #[command(flatten)]
    pub subset: SubsetArgs,
    /// The page (written atomically), e.g. report.html.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Also write every number on the page as JSON.
    #[arg(long, value_name = "FILE.json")]
    pub json: Option<PathBuf>,
}

impl ReportArgs {
    /// The report the flags ask for.
    pub fn spec(&self) -> ReportSpec {
        ReportSpec {
            epoch: self.epoch,
            split: self.split,
            seed: self.seed,
            repeats: self.repeats,
            scope: self.within.clone().map_or(Scope::Global, Scope::Layer),
            normalize_layers: self.normalize_layers,
            granularity: self.granularity,
            rank_fraction: self.fraction,
            control_fractions: self.fractions.clone(),
        }
    }
}

pub fn run(args: ReportArgs, device: &Device, data: &DataFlags) -> Result<()> {
    if !args.out.extension().is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"))
    {
        bail!("--out {}: the report's file must end in .html", args.out.display());
    }
    let (experiment, dataset) = super::open_experiment(args.experiment.clone(), &data.options(&args.subset))?;
    let mut session = Session::new(experiment, dataset, device.clone())?;
    if let Some(0) = args.epoch {
        session.experiment().checkpoint(0)?;
        bail!("--epoch 0: the report rewinds layers and neurons, which needs an epoch after 0");
    }
    let spec = args.spec();
    let report = build(&mut session, &spec, &mut Bar::new("report (studies)"))?;
    let page = html(&report)?;
    if let Some(json) = &args.json {
        let text = serde_json::to_string_pretty(&report).context("cannot serialise the report's numbers")?;
        write_output(json, (text + "\n").as_bytes())?;
    }
    write_output(&args.out, page.as_bytes())
}
