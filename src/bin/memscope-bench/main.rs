//! `memscope-bench`: timings of the engine on an experiment (the bundled demo by default),
//! for BENCHMARKS.md and the side-by-side comparisons with PyTorch (`bench/run`,
//! `bench/scale`, `bench/train`). A second binary of the package, so that the product's
//! `memscope` carries no benchmark code; `cargo build --release` builds both.

mod scale;
mod train;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use clap::Parser;

use memscope::cli::args::{self, SubsetArgs};
use memscope::cli::output::OutputArgs;
use memscope::cli::{Globals, open_experiment};
use memscope_core::data::GroupedDataset;
use memscope_core::experiment::Experiment;
use memscope_core::jobs::Silent;
use memscope_core::neurons::{CandidateFilter, Granularity};
use memscope_core::render::{BenchReport, Provenance, Timing};
use memscope_core::session::Session;
use memscope_core::studies::DEFAULT_SEED;
use memscope_core::studies::intervention::{self, InterventionSpec, default_group, gradient};
use memscope_core::studies::sensitivity::{self, SensitivitySpec};
use memscope_core::util::memory::{Memory, megabytes};

/// Time the engine's main tasks (for BENCHMARKS.md and bench/run)
#[derive(Parser, Debug)]
#[command(name = "memscope-bench", version)]
struct Cli {
    #[command(flatten)]
    globals: Globals,
    #[command(flatten)]
    args: BenchArgs,
}

#[derive(clap::Args, Debug)]
struct BenchArgs {
    /// Experiment folder (default: the bundled demo).
    #[arg(long)]
    experiment: Option<PathBuf>,
    /// Timed runs per task.
    #[arg(long, default_value_t = 20, allow_negative_numbers = true, value_parser = args::positive)]
    runs: usize,
    /// Time a large model's tasks instead (one forward pass, cold and warm interventions
    /// ranked globally and within the last conv, gradient scores): for a torchvision ResNet
    /// at 224 px, compared with PyTorch by bench/scale.
    #[arg(long)]
    scale: bool,
    /// Time fine-tuning steps instead (ERM and the silent-majority code objective, batch 100,
    /// from the last checkpoint), compared with PyTorch by bench/train.
    #[arg(long, conflicts_with = "scale")]
    train: bool,
    /// With --scale: memory for cached activations, MB.
    #[arg(long, default_value_t = 4096, value_parser = args::count)]
    cache_mb: usize,
    #[command(flatten)]
    output: OutputArgs,
}

fn main() -> ExitCode {
    memscope_core::device::tune_allocator();
    memscope_core::util::interrupt::install();
    memscope::cli::logger::install();
    memscope::cli::exit_code("memscope-bench", run(std::env::args_os()))
}

fn run(argv: impl IntoIterator<Item = std::ffi::OsString>) -> Result<()> {
    let Cli { globals, args } = memscope::cli::parse(argv)?;
    let device = globals.device()?;
    let options = globals.data().options(&SubsetArgs::default());
    let (experiment, dataset) = open_experiment(args.experiment.clone(), &options)?;
    let epoch = experiment.last_epoch();
    let provenance =
        Provenance::new(&experiment, &dataset.changes, epoch, &spec(default_group(&dataset), epoch))?;
    if args.scale {
        let report = scale::run(&experiment, &dataset, &device, args.runs, args.cache_mb)?;
        return args.output.emit(&report, &provenance);
    }
    if args.train {
        let report = train::run(&experiment, &dataset, &device, args.runs)?;
        return args
            .output
            .emit(&report, &Provenance::new(&experiment, &dataset.changes, epoch, &"bench --train")?);
    }
    let report = engine(&experiment, &dataset, &device, &globals.device.to_string(), args.runs)?;
    args.output.emit(&report, &provenance)
}

/// Milliseconds `f` takes, and what it returns.
pub(crate) fn time<T>(f: impl FnOnce() -> Result<T>) -> Result<(f64, T)> {
    let start = Instant::now();
    let out = f()?;
    Ok((start.elapsed().as_secs_f64() * 1e3, out))
}

/// The benchmark intervention: the default one (zero-out of the top-3 units ranked globally
/// by a group's gradient, measured on val) by `group`'s gradient, once.
pub(crate) fn spec(group: usize, epoch: usize) -> InterventionSpec {
    InterventionSpec::neurons(epoch).gradient_of(Some(group)).repeats(1)
}

/// The demo's timings: interventions cold and warm, gradient scores, the sensitivity study,
/// and the explorer's start-up (run as `device_name`).
fn engine(
    experiment: &Experiment,
    dataset: &GroupedDataset,
    device: &Device,
    device_name: &str,
    runs: usize,
) -> Result<BenchReport> {
    let fresh = || Session::new(experiment.clone(), dataset.clone(), device.clone());
    let epoch = experiment.last_epoch();
    let Interventions { mut timings, after, warm_rss_growth_mb } =
        interventions(&fresh, dataset, epoch, runs)?;
    timings.push(gradient_scores(&fresh, dataset, epoch, runs)?);
    let (sens, changes) = sensitive_layers(&fresh, epoch, runs)?;
    timings.push(sens);
    let mut peak_rss = None;
    match explorer_runs(&experiment.dir, device_name, runs.min(10)) {
        Ok(runs) => {
            timings.push(Timing::of(
                "first_frame",
                "explorer: exec to first frame drawn (in a pseudo-terminal, then quits)",
                runs.iter().map(|r| r.first_frame_ms).collect(),
            ));
            timings.push(Timing::of(
                "first_result",
                "explorer: exec to the first intervention's bars drawn (default request)",
                runs.iter().map(|r| r.first_result_ms).collect(),
            ));
            let mut rss: Vec<f64> = runs.iter().map(|r| r.peak_rss_mb).collect();
            rss.sort_by(f64::total_cmp);
            peak_rss = Some(rss[rss.len() / 2]);
        }
        Err(e) => eprintln!("memscope-bench: explorer start-up not timed: {e:#}"),
    }
    Ok(BenchReport {
        experiment: experiment.dir.display().to_string(),
        threads: tch::get_num_threads(),
        runs,
        timings,
        explorer_peak_rss_mb: peak_rss,
        warm_rss_growth_mb,
        intervention_after: after,
        sensitivity_changes: changes,
    })
}

/// The benchmark intervention's timings, its per-group accuracy after, and the memory the
/// warm runs added (MB; `None` off Linux).
struct Interventions {
    timings: Vec<Timing>,
    after: Vec<Option<f64>>,
    warm_rss_growth_mb: Option<f64>,
}

/// The benchmark intervention cold (a new session each time) and warm (the same session).
fn interventions(
    fresh: &dyn Fn() -> Result<Session>,
    dataset: &GroupedDataset,
    epoch: usize,
    runs: usize,
) -> Result<Interventions> {
    let request = spec(default_group(dataset), epoch);
    let mut cold = Vec::new();
    let mut after = Vec::new();
    for _ in 0..runs {
        let mut session = fresh()?;
        let (ms, result) = time(|| intervention::run(&mut session, &request, &mut Silent))?;
        cold.push(ms);
        after = result.groups.iter().map(|g| g.after).collect();
    }
    let mut timings = vec![Timing::of(
        "cold",
        "intervention, cold (zero-out top-3 global by smallest-group gradient, val)",
        cold,
    )];
    let mut session = fresh()?;
    intervention::run(&mut session, &request, &mut Silent)?;
    let rss_before = megabytes(Memory::Resident);
    let warm =
        (0..runs).map(|_| time(|| intervention::run(&mut session, &request, &mut Silent)).map(|t| t.0));
    timings.push(Timing::of("warm", "intervention, warm (same request again)", warm.collect::<Result<_>>()?));
    let warm_rss_growth_mb = rss_before.zip(megabytes(Memory::Resident)).map(|(a, b)| b - a);
    Ok(Interventions { timings, after, warm_rss_growth_mb })
}

/// Every group's gradient scores, from a fresh session with the checkpoint loaded.
fn gradient_scores(
    fresh: &dyn Fn() -> Result<Session>,
    dataset: &GroupedDataset,
    epoch: usize,
    runs: usize,
) -> Result<Timing> {
    let mut grads = Vec::new();
    for _ in 0..runs {
        let mut session = fresh()?;
        session.network(epoch)?;
        let space = session.space(&CandidateFilter::default(), Granularity::default())?;
        let (ms, _) = time(|| {
            for g in 0..dataset.num_groups() {
                session.scores(epoch, &gradient(Some(g), DEFAULT_SEED), &space, &mut Silent)?;
            }
            Ok(())
        })?;
        grads.push(ms);
    }
    Ok(Timing::of("grads", "gradient scores of all groups (train, lowest-confidence:200)", grads))
}

/// The sensitivity study (at most 5 runs), and its changes.
fn sensitive_layers(
    fresh: &dyn Fn() -> Result<Session>,
    epoch: usize,
    runs: usize,
) -> Result<(Timing, Vec<Vec<Option<f64>>>)> {
    let study = SensitivitySpec::at(epoch).reachable();
    let mut sens = Vec::new();
    let mut changes = Vec::new();
    for _ in 0..runs.min(5) {
        let mut session = fresh()?;
        let (ms, result) = time(|| sensitivity::run(&mut session, &study, &mut Silent))?;
        sens.push(ms);
        changes = result.rows.iter().map(|r| r.change.clone()).collect();
    }
    let timing =
        Timing::of("sens", "sensitive-layer study (every layer x 5, 10, 20, 30, 40 epochs back, val)", sens);
    Ok((timing, changes))
}

struct ExplorerRun {
    first_frame_ms: f64,
    first_result_ms: f64,
    peak_rss_mb: f64,
}

/// Runs the `memscope` beside this binary's explorer `runs` times in a pseudo-terminal
/// (util-linux `script`), once quitting after its first frame and once after its first
/// intervention's result is drawn; wall time from exec to exit, and the peak memory the
/// explorer reports at exit.
fn explorer_runs(experiment: &Path, device: &str, runs: usize) -> Result<Vec<ExplorerRun>> {
    let exe = std::env::current_exe()
        .context("cannot find the memscope-bench executable")?
        .with_file_name(format!("memscope{}", std::env::consts::EXE_SUFFIX));
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let once = |exit: &str| -> Result<(f64, f64)> {
        let line = format!(
            "{} --device {} --threads {} explore --experiment {} --bench-exit {exit}",
            quote(&exe.to_string_lossy()),
            quote(device),
            tch::get_num_threads(),
            quote(&experiment.to_string_lossy()),
        );
        let start = Instant::now();
        let out = Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .context("cannot run script(1) (util-linux) to give the explorer a terminal")?;
        let ms = start.elapsed().as_secs_f64() * 1e3;
        let text = String::from_utf8_lossy(&out.stdout);
        let Some(mb) = text.split("memscope-bench: peak_rss_mb=").nth(1) else {
            bail!("the explorer did not finish: {}", text.lines().last().unwrap_or("no output"))
        };
        let mb = mb.split(|c: char| !(c.is_ascii_digit() || c == '.')).next().unwrap_or("");
        Ok((ms, mb.parse()?))
    };
    (0..runs)
        .map(|_| {
            let (first_frame_ms, _) = once("frame")?;
            let (first_result_ms, peak_rss_mb) = once("result")?;
            Ok(ExplorerRun { first_frame_ms, first_result_ms, peak_rss_mb })
        })
        .collect()
}
