//! The scriptable command line: a thin layer that parses arguments, calls the engine and
//! prints tables, JSON or CSV.

mod bench;
mod export;
mod info;
mod intervene;
mod output;
mod select;
mod studies;
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
    after_help = "Without a subcommand, `memscope` opens the explorer on the bundled demo (as `memscope explore`)."
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
    /// The explorer: a terminal UI that runs interventions live (the default).
    Explore {
        /// Experiment folder (default: the bundled demo).
        #[arg(long)]
        experiment: Option<PathBuf>,
        /// Memory for cached activations, MB (0 turns the cache off).
        #[arg(long, default_value_t = crate::session::DEFAULT_ACTIVATION_BUDGET >> 20)]
        cache_mb: usize,
        /// Quit after the first frame or the first result (for `memscope bench`).
        #[arg(long, hide = true)]
        bench_exit: Option<crate::tui::BenchExit>,
    },
    /// Layers, groups and per-group accuracy of an experiment at one epoch.
    Info(info::InfoArgs),
    /// Train a model by ERM, keeping a checkpoint for every epoch.
    Train(train::TrainArgs),
    /// The top-scoring neurons with their magnitude and gradient ranks.
    Scores(studies::ScoresArgs),
    /// Zero-out, re-initialise, add noise to or rewind the top neurons; per-group change.
    Intervene(intervene::InterveneArgs),
    /// Rewind one whole layer to an earlier epoch; per-group change.
    Rewind(intervene::RewindArgs),
    /// Rank histograms: magnitude rank of top-gradient neurons and the reverse, per group.
    Ranks(studies::RanksArgs),
    /// Sensitive layers: rewind each layer by n epochs, per-group change and counts.
    Sensitivity(studies::SensitivityArgs),
    /// Control: zero random non-critical neurons beside the same number of critical ones.
    Control(studies::ControlArgs),
    /// Write checkpoints and split data as safetensors (PyTorch names and layouts).
    Export(export::ExportArgs),
    /// Time the engine's main tasks (for BENCHMARKS.md and bench/run).
    Bench(bench::BenchArgs),
}

/// Runs memscope with command-line `args` (the program name first).
pub fn run(args: impl IntoIterator<Item = OsString>) -> Result<()> {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            // clap's first line says what is wrong; the usage block after it is noise here.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments").trim_start_matches("error: ");
            anyhow::bail!("{first} (see memscope --help)");
        }
    };
    let device_spec: DeviceSpec = cli.device.parse()?;
    device::set_threads(cli.threads);
    let device = device_spec.device()?;
    match cli.command {
        Some(Command::Info(args)) => info::run(args, &device),
        Some(Command::Train(args)) => train::run(args, &device),
        Some(Command::Scores(args)) => studies::run_scores(args, &device),
        Some(Command::Intervene(args)) => intervene::run_intervene(args, &device),
        Some(Command::Rewind(args)) => intervene::run_rewind(args, &device),
        Some(Command::Ranks(args)) => studies::run_ranks(args, &device),
        Some(Command::Sensitivity(args)) => studies::run_sensitivity(args, &device),
        Some(Command::Control(args)) => studies::run_control(args, &device),
        Some(Command::Export(args)) => export::run(args),
        Some(Command::Bench(args)) => bench::run(args, &device_spec.to_string(), &device),
        Some(Command::Explore { experiment, cache_mb, bench_exit }) => {
            crate::tui::run(experiment, device, cache_mb.saturating_mul(1 << 20), bench_exit)
        }
        None => crate::tui::run(None, device, crate::session::DEFAULT_ACTIVATION_BUDGET, None),
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
