//! `memscope bench`: timings of the engine on an experiment (the bundled demo by default),
//! for BENCHMARKS.md and the side-by-side comparison with PyTorch (`bench/run`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use serde::Serialize;

use super::output::{Format, OutputArgs, csv, table, to_json};
use crate::data::Split;
use crate::intervene::Intervention;
use crate::neurons::scores::{Criterion, Sampling};
use crate::neurons::select::{Scope, Selection};
use crate::neurons::{CandidateFilter, Granularity};
use crate::session::Session;
use crate::studies::intervention::{InterventionSpec, run as intervene};
use crate::studies::sensitivity::{self, DEFAULT_EPOCHS_BACK, SensitivitySpec};
use crate::util::memory::{Memory, megabytes};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Experiment folder (default: the bundled demo).
    #[arg(long)]
    pub experiment: Option<PathBuf>,
    /// Timed runs per task.
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Serialize)]
pub struct Timing {
    /// Stable name for scripts (bench/reference.py matches tasks by it).
    pub key: String,
    pub task: String,
    pub runs: usize,
    pub median_ms: f64,
    pub p95_ms: f64,
    pub min_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub experiment: String,
    pub threads: i32,
    pub timings: Vec<Timing>,
    /// Peak resident memory of the explorer process that ran the first intervention, MB
    /// (median over runs); `None` when the explorer could not be timed.
    pub explorer_peak_rss_mb: Option<f64>,
    /// Growth of this process's resident memory over the warm interventions, MB (a leak
    /// shows here; `None` off Linux).
    pub warm_rss_growth_mb: Option<f64>,
    /// The benchmark intervention's per-group accuracy after the change, to check a
    /// reference implementation against.
    pub intervention_after: Vec<Option<f64>>,
    /// The sensitive-layer study's signed changes, `[row][group]`, rows in study order.
    pub sensitivity_changes: Vec<Vec<Option<f64>>>,
}

fn timing(key: &str, task: &str, mut ms: Vec<f64>) -> Timing {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    Timing {
        key: key.into(),
        task: task.into(),
        runs: ms.len(),
        median_ms: at(0.5),
        p95_ms: at(0.95),
        min_ms: ms[0],
    }
}

fn time<T>(f: impl FnOnce() -> Result<T>) -> Result<(f64, T)> {
    let start = Instant::now();
    let out = f()?;
    Ok((start.elapsed().as_secs_f64() * 1e3, out))
}

/// The benchmark intervention: zero-out top-3 global by the gradient of the smallest
/// training group, measured on val.
fn spec(group: usize, epoch: usize) -> InterventionSpec {
    InterventionSpec {
        epoch,
        split: Split::Val,
        intervention: Intervention::ZeroOut,
        criterion: Criterion::Gradient {
            group: Some(group),
            split: Split::Train,
            sampling: Sampling::default(),
            seed: 0,
        },
        selection: Selection::TopK(3),
        scope: Scope::Global,
        normalize_layers: false,
        granularity: Granularity::Unit,
        candidates: CandidateFilter::default(),
        repeats: 1,
        seed: 0,
    }
}

pub fn run(args: BenchArgs, device_name: &str, device: &Device) -> Result<()> {
    let format = args.output.format()?;
    let runs = args.runs.max(1);
    let (experiment, dataset) = super::open_experiment(args.experiment)?;
    let epoch = experiment.last_epoch();
    let group = super::select::smallest_group(&dataset);
    let fresh = || Session::new(experiment.clone(), dataset.clone(), device.clone());
    let mut timings = Vec::new();

    // Cold: a new session each time, nothing cached (checkpoint, baseline, gradient).
    let mut cold = Vec::new();
    let mut after = Vec::new();
    for _ in 0..runs {
        let mut session = fresh()?;
        let (ms, result) = time(|| intervene(&mut session, &spec(group, epoch)))?;
        cold.push(ms);
        after = result.groups.iter().map(|g| g.after).collect();
    }
    timings.push(timing(
        "cold",
        "intervention, cold (zero-out top-3 global by smallest-group gradient, val)",
        cold,
    ));

    let mut session = fresh()?;
    intervene(&mut session, &spec(group, epoch))?;
    let rss_before = megabytes(Memory::Resident);
    let warm = (0..runs).map(|_| time(|| intervene(&mut session, &spec(group, epoch))).map(|t| t.0));
    timings.push(timing("warm", "intervention, warm (same request again)", warm.collect::<Result<_>>()?));
    let warm_rss_growth_mb = rss_before.zip(megabytes(Memory::Resident)).map(|(a, b)| b - a);

    let mut grads = Vec::new();
    for _ in 0..runs {
        let mut session = fresh()?;
        session.network(epoch)?;
        let space = session.space(&CandidateFilter::default(), Granularity::Unit)?;
        let (ms, _) = time(|| {
            for g in 0..dataset.num_groups() {
                let c = Criterion::Gradient {
                    group: Some(g),
                    split: Split::Train,
                    sampling: Sampling::default(),
                    seed: 0,
                };
                session.scores(epoch, &c, &space)?;
            }
            Ok(())
        })?;
        grads.push(ms);
    }
    timings.push(timing("grads", "gradient scores of all groups (train, lowest-confidence:200)", grads));

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
        let (ms, result) = time(|| sensitivity::run(&mut session, &study, &mut crate::jobs::Silent))?;
        sens.push(ms);
        changes = result.rows.iter().map(|r| r.change.clone()).collect();
    }
    timings.push(timing(
        "sens",
        "sensitive-layer study (every layer x 5, 10, 20, 30, 40 epochs back, val)",
        sens,
    ));

    let mut peak_rss = None;
    match explorer_runs(&experiment.dir, device_name, runs.min(10)) {
        Ok(runs) => {
            timings.push(timing(
                "first_frame",
                "explorer: exec to first frame drawn (in a pseudo-terminal, then quits)",
                runs.iter().map(|r| r.first_frame_ms).collect(),
            ));
            timings.push(timing(
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
        timings,
        explorer_peak_rss_mb: peak_rss,
        warm_rss_growth_mb,
        intervention_after: after,
        sensitivity_changes: changes,
    };
    let text = match format {
        Format::Json => to_json(&report)?,
        Format::Csv => {
            // One row per measurement; the memory figures as rows of their own.
            let mut rows: Vec<Vec<String>> = report
                .timings
                .iter()
                .map(|t| {
                    let ms = |v: f64| format!("{v:.3}");
                    vec![
                        t.key.clone(),
                        t.runs.to_string(),
                        ms(t.median_ms),
                        ms(t.p95_ms),
                        ms(t.min_ms),
                        "ms".into(),
                    ]
                })
                .collect();
            for (key, value) in [
                ("explorer_peak_rss", report.explorer_peak_rss_mb),
                ("warm_rss_growth", report.warm_rss_growth_mb),
            ] {
                if let Some(mb) = value {
                    let v = format!("{mb:.1}");
                    rows.push(vec![key.into(), "1".into(), v.clone(), v.clone(), v, "MB".into()]);
                }
            }
            csv(&["key", "runs", "median", "p95", "min", "unit"], rows)
        }
        Format::Table => {
            let rows = report.timings.iter().map(|t| {
                vec![
                    t.task.clone(),
                    t.runs.to_string(),
                    format!("{:.1}", t.median_ms),
                    format!("{:.1}", t.p95_ms),
                ]
            });
            let mb = |v: Option<f64>| v.map_or("not measured".into(), |m| format!("{m:.0} MB"));
            format!(
                "{} (libtorch threads: {})\n{}\nexplorer peak resident memory after the first intervention: {}\n\
                 resident memory growth over the {runs} warm interventions: {}\n",
                report.experiment,
                report.threads,
                table(&["task", "runs", "median ms", "p95 ms"], rows),
                mb(report.explorer_peak_rss_mb),
                mb(report.warm_rss_growth_mb),
            )
        }
    };
    args.output.emit(&text)
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
