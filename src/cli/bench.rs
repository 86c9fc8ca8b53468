//! `memscope bench`: timings of the engine on an experiment (the bundled demo by default),
//! for BENCHMARKS.md and the side-by-side comparison with PyTorch (`bench/run`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::prelude::*;

use super::args;
use super::output::OutputArgs;
use memscope_core::data::Split;
use memscope_core::jobs::Silent;
use memscope_core::neurons::scores::Criterion;
use memscope_core::neurons::{CandidateFilter, Granularity};
use memscope_core::render::{BenchReport, Provenance, Timing};
use memscope_core::session::Session;
use memscope_core::studies::intervention::{self, InterventionSpec, default_group, gradient};
use memscope_core::studies::sensitivity::{self, DEFAULT_EPOCHS_BACK, SensitivitySpec};
use memscope_core::util::memory::{Memory, megabytes};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Experiment folder (default: the bundled demo).
    #[arg(long)]
    pub experiment: Option<PathBuf>,
    /// Timed runs per task.
    #[arg(long, default_value_t = 20, allow_negative_numbers = true, value_parser = args::positive)]
    pub runs: usize,
    /// Time a large model's tasks instead (one forward pass, cold and warm interventions
    /// ranked globally and within the last conv, gradient scores): for a torchvision ResNet
    /// at 224 px, compared with PyTorch by bench/scale.
    #[arg(long)]
    pub scale: bool,
    /// Time fine-tuning steps instead (ERM and the silent-majority code objective, batch 100,
    /// from the last checkpoint), compared with PyTorch by bench/train.
    #[arg(long, conflicts_with = "scale")]
    pub train: bool,
    /// With --scale: memory for cached activations, MB.
    #[arg(long, default_value_t = 4096, value_parser = args::count)]
    pub cache_mb: usize,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub(super) fn time<T>(f: impl FnOnce() -> Result<T>) -> Result<(f64, T)> {
    let start = Instant::now();
    let out = f()?;
    Ok((start.elapsed().as_secs_f64() * 1e3, out))
}

/// The benchmark intervention: zero-out top-3 global by the gradient of the smallest
/// training group, measured on val, once.
pub(super) fn spec(group: usize, epoch: usize) -> InterventionSpec {
    InterventionSpec::neurons(epoch).zero_out().gradient_of(Some(group)).top_k(3).on(Split::Val).repeats(1)
}

pub fn run(args: BenchArgs, device_name: &str, device: &Device, data: &super::DataFlags) -> Result<()> {
    let runs = args.runs;
    let (experiment, dataset) =
        super::open_experiment(args.experiment, &data.options(&super::args::SubsetArgs::default()))?;
    let epoch = experiment.last_epoch();
    let group = default_group(&dataset);
    if args.scale {
        let report = super::bench_scale::run(&experiment, &dataset, device, runs, args.cache_mb)?;
        return args
            .output
            .emit(&report, &Provenance::new(&experiment, &dataset.changes, epoch, &spec(group, epoch))?);
    }
    if args.train {
        let report = super::bench_train::run(&experiment, &dataset, device, runs)?;
        return args
            .output
            .emit(&report, &Provenance::new(&experiment, &dataset.changes, epoch, &"bench --train")?);
    }
    let fresh = || Session::new(experiment.clone(), dataset.clone(), device.clone());
    let mut timings = Vec::new();

    // Cold: a new session each time, nothing cached (checkpoint, baseline, gradient).
    let mut cold = Vec::new();
    let mut after = Vec::new();
    for _ in 0..runs {
        let mut session = fresh()?;
        let (ms, result) = time(|| intervention::run(&mut session, &spec(group, epoch), &mut Silent))?;
        cold.push(ms);
        after = result.groups.iter().map(|g| g.after).collect();
    }
    timings.push(Timing::of(
        "cold",
        "intervention, cold (zero-out top-3 global by smallest-group gradient, val)",
        cold,
    ));

    let mut session = fresh()?;
    intervention::run(&mut session, &spec(group, epoch), &mut Silent)?;
    let rss_before = megabytes(Memory::Resident);
    let warm = (0..runs)
        .map(|_| time(|| intervention::run(&mut session, &spec(group, epoch), &mut Silent)).map(|t| t.0));
    timings.push(Timing::of("warm", "intervention, warm (same request again)", warm.collect::<Result<_>>()?));
    let warm_rss_growth_mb = rss_before.zip(megabytes(Memory::Resident)).map(|(a, b)| b - a);

    let mut grads = Vec::new();
    for _ in 0..runs {
        let mut session = fresh()?;
        session.network(epoch)?;
        let space = session.space(&CandidateFilter::default(), Granularity::Unit)?;
        let (ms, _) = time(|| {
            for g in 0..dataset.num_groups() {
                let c: Criterion = gradient(Some(g), 0);
                session.scores(epoch, &c, &space)?;
            }
            Ok(())
        })?;
        grads.push(ms);
    }
    timings.push(Timing::of("grads", "gradient scores of all groups (train, lowest-confidence:200)", grads));

    let study = SensitivitySpec {
        epoch,
        split: Split::Val,
        epochs_back: DEFAULT_EPOCHS_BACK.into_iter().filter(|&n| n <= epoch).collect(),
        threshold: 0.01,
        candidates: CandidateFilter::default(),
    };
    let mut sens = Vec::new();
    let mut changes = Vec::new();
    for _ in 0..runs.min(5) {
        let mut session = fresh()?;
        let (ms, result) = time(|| sensitivity::run(&mut session, &study, &mut memscope_core::jobs::Silent))?;
        sens.push(ms);
        changes = result.rows.iter().map(|r| r.change.clone()).collect();
    }
    timings.push(Timing::of(
        "sens",
        "sensitive-layer study (every layer x 5, 10, 20, 30, 40 epochs back, val)",
        sens,
    ));

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
        Err(e) => eprintln!("memscope bench: explorer start-up not timed: {e:#}"),
    }

    let report = BenchReport {
        experiment: experiment.dir.display().to_string(),
        threads: tch::get_num_threads(),
        runs,
        timings,
        explorer_peak_rss_mb: peak_rss,
        warm_rss_growth_mb,
        intervention_after: after,
        sensitivity_changes: changes,
    };
    args.output.emit(&report, &Provenance::new(&experiment, &dataset.changes, epoch, &spec(group, epoch))?)
}

struct ExplorerRun {
    first_frame_ms: f64,
    first_result_ms: f64,
    peak_rss_mb: f64,
}

/// Runs this binary's explorer `runs` times in a pseudo-terminal (util-linux `script`), once
/// quitting after its first frame and once after its first intervention's result is drawn;
/// wall time from exec to exit, and the peak memory the explorer reports at exit.
fn explorer_runs(experiment: &Path, device: &str, runs: usize) -> Result<Vec<ExplorerRun>> {
    let exe = std::env::current_exe().context("cannot find the memscope executable")?;
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
