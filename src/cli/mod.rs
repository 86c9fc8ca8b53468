//! The scriptable command line: a thin layer that parses arguments, calls the engine and
//! prints tables, JSON or CSV.

mod info;
mod output;
mod train;

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::data::GroupedDataset;
use crate::device::{self, DeviceSpec};
use crate::experiment::{Experiment, demo};

#[derive(Parser, Debug)]
#[command(
    name = "memscope",
    version,
    about = "Explore spurious memorization: critical neurons that memorize minority groups",
    after_help = "Without a subcommand, `memscope` describes the bundled demo (as `memscope info`)."
)]
pub struct Cli {
    /// Compute device: cpu, cuda or cuda:N.
    #[arg(long, global = true, default_value = "cpu")]
    device: String,
    /// libtorch threads (0: libtorch's default, one per core).
    #[arg(long, global = true, default_value_t = 0)]
    threads: usize,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Layers, groups and per-group accuracy of an experiment at one epoch.
    Info(info::InfoArgs),
    /// Train a model by ERM, keeping a checkpoint for every epoch.
    Train(train::TrainArgs),
}

/// Runs memscope with command-line `args` (the program name first).
pub fn run(args: impl IntoIterator<Item = OsString>) -> Result<()> {
    let cli = Cli::parse_from(args);
    let device_spec: DeviceSpec = cli.device.parse()?;
    device::set_threads(cli.threads);
    let device = device_spec.device()?;
    match cli.command {
        Some(Command::Info(args)) => info::run(args, &device),
        Some(Command::Train(args)) => train::run(args, &device),
        None => info::run(info::InfoArgs::default(), &device),
    }
}

/// The experiment named by `--experiment`, or the bundled demo; with its data set.
fn open_experiment(dir: Option<PathBuf>) -> Result<(Experiment, GroupedDataset)> {
    let dir = match dir {
        Some(dir) => dir,
        None => demo::locate()?,
    };
    let experiment = Experiment::open(&dir)?;
    let dataset = experiment.manifest.dataset.load()?;
    Ok((experiment, dataset))
}
