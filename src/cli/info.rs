//! `memscope info`: what an experiment holds and how well it does per group.

use std::path::PathBuf;

use anyhow::Result;
use burn::prelude::*;
use serde::Serialize;

use super::args;
use super::output::OutputArgs;
use memscope_core::data::Split;
use memscope_core::inspect::describe;
use memscope_core::render::Provenance;

#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// Experiment folder (default: the bundled demo).
    #[arg(long)]
    pub experiment: Option<PathBuf>,
    /// Epoch to evaluate (default: the last).
    #[arg(long, allow_negative_numbers = true, value_parser = args::count)]
    pub epoch: Option<usize>,
    /// Split to evaluate: train, val or test.
    #[arg(long, default_value_t = memscope_core::studies::DEFAULT_SPLIT)]
    pub split: Split,
    #[command(flatten)]
    pub subset: args::SubsetArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// What `info` was asked (its provenance's spec).
#[derive(Serialize)]
struct InfoRequest {
    epoch: usize,
    split: Split,
}

pub fn run(args: InfoArgs, device: &Device, data: &super::DataFlags) -> Result<()> {
    let (experiment, dataset) = super::open_experiment(args.experiment, &data.options(&args.subset))?;
    let epoch = args.epoch.unwrap_or_else(|| experiment.last_epoch());
    let info = describe(&experiment, &dataset, epoch, args.split, device)?;
    let request = InfoRequest { epoch, split: args.split };
    args.output.emit(&info, &Provenance::new(&experiment, &dataset.changes, epoch, &request)?)
}
