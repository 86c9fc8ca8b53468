//! `memscope bench`: timings of the engine on an experiment (the bundled demo by default),
//! for BENCHMARKS.md and the side-by-side comparison with PyTorch (`bench/run`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use burn::prelude::*;
use serde::Serialize;

use super::output::{Format, OutputArgs, table, to_json};
use crate::data::Split;
use crate::intervene::Intervention;
use crate::neurons::scores::{Criterion, Sampling};
use crate::neurons::select::{Scope, Selection};
use crate::neurons::{CandidateFilter, Granularity};
use crate::session::Session;
use crate::studies::intervention::{InterventionSpec, run as intervene};
use crate::studies::sensitivity::{self, DEFAULT_EPOCHS_BACK, SensitivitySpec};

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
    /// The benchmark intervention's per-group accuracy after the change, to check a
    /// reference implementation against.
    pub intervention_after: Vec<Option<f64>>,
    /// The sensitive-layer study's signed changes, `[row][group]`, rows in study order.
    pub sensitivity_changes: Vec<Vec<Option<f64>>>,
}

fn timing(task: &str, mut ms: Vec<f64>) -> Timing {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    Timing { task: task.into(), runs: ms.len(), median_ms: at(0.5), p95_ms: at(0.95), min_ms: ms[0] }
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

pub fn run(args: BenchArgs, device: &Device) -> Result<()> {
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
    timings.push(timing("intervention, cold (zero-out top-3 global by smallest-group gradient, val)", cold));

    let mut session = fresh()?;
    intervene(&mut session, &spec(group, epoch))?;
    let warm = (0..runs).map(|_| time(|| intervene(&mut session, &spec(group, epoch))).map(|t| t.0));
    timings.push(timing("intervention, warm (same request again)", warm.collect::<Result<_>>()?));

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
    timings.push(timing("gradient scores of all groups (train, lowest-confidence:200)", grads));

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
        let (ms, result) = time(|| sensitivity::run(&mut session, &study, &mut |_, _| true))?;
        sens.push(ms);
        changes = result.rows.iter().map(|r| r.change.clone()).collect();
    }
    timings.push(timing("sensitive-layer study (every layer x 5, 10, 20, 30, 40 epochs back, val)", sens));

    let report = BenchReport {
        experiment: experiment.dir.display().to_string(),
        threads: tch::get_num_threads(),
        timings,
        intervention_after: after,
        sensitivity_changes: changes,
    };
    let text = match format {
        Format::Json => to_json(&report)?,
        _ => {
            let rows = report.timings.iter().map(|t| {
                vec![
                    t.task.clone(),
                    t.runs.to_string(),
                    format!("{:.1}", t.median_ms),
                    format!("{:.1}", t.p95_ms),
                ]
            });
            format!(
                "{} (libtorch threads: {})\n{}\n",
                report.experiment,
                report.threads,
                table(&["task", "runs", "median ms", "p95 ms"], rows)
            )
        }
    };
    args.output.emit(&text)
}
