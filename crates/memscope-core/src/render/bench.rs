//! `memscope-bench`: timings and memory of the engine's main tasks.

use serde::Serialize;

use super::Render;
use super::text::{csv, table};

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

impl Timing {
    /// Median, 95th percentile and minimum of `ms` (at least one value).
    pub fn of(key: &str, task: &str, mut ms: Vec<f64>) -> Timing {
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| ms.get(((ms.len().max(1) - 1) as f64 * q).round() as usize).copied().unwrap_or(0.0);
        Timing {
            key: key.into(),
            task: task.into(),
            runs: ms.len(),
            median_ms: at(0.5),
            p95_ms: at(0.95),
            min_ms: at(0.0),
        }
    }
}

/// The timings as a table: task, runs, median and p95 in ms with `decimals` decimals.
pub fn timing_table(timings: &[Timing], decimals: usize) -> String {
    let rows = timings.iter().map(|t| {
        vec![
            t.task.clone(),
            t.runs.to_string(),
            format!("{:.decimals$}", t.median_ms),
            format!("{:.decimals$}", t.p95_ms),
        ]
    });
    table(&["task", "runs", "median ms", "p95 ms"], rows)
}

/// The timings as CSV rows: key, runs, median, p95, min in ms with three decimals.
pub fn timing_rows(timings: &[Timing]) -> Vec<Vec<String>> {
    let ms = |v: f64| format!("{v:.3}");
    timings
        .iter()
        .map(|t| vec![t.key.clone(), t.runs.to_string(), ms(t.median_ms), ms(t.p95_ms), ms(t.min_ms)])
        .collect()
}

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub experiment: String,
    pub threads: i32,
    /// Timed runs per task.
    #[serde(skip)]
    pub runs: usize,
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

impl Render for BenchReport {
    fn table(&self) -> String {
        let mb = |v: Option<f64>| v.map_or("not measured".into(), |m| format!("{m:.0} MB"));
        format!(
            "{} (libtorch threads: {})\n{}\nexplorer peak resident memory after the first intervention: {}\n\
             resident memory growth over the {} warm interventions: {}\n",
            self.experiment,
            self.threads,
            timing_table(&self.timings, 1),
            mb(self.explorer_peak_rss_mb),
            self.runs,
            mb(self.warm_rss_growth_mb),
        )
    }

    /// One row per measurement; the memory figures as rows of their own.
    fn csv(&self) -> String {
        let mut rows = timing_rows(&self.timings);
        rows.iter_mut().for_each(|row| row.push("ms".into()));
        for (key, value) in
            [("explorer_peak_rss", self.explorer_peak_rss_mb), ("warm_rss_growth", self.warm_rss_growth_mb)]
        {
            if let Some(mb) = value {
                let v = format!("{mb:.1}");
                rows.push(vec![key.into(), "1".into(), v.clone(), v.clone(), v, "MB".into()]);
            }
        }
        csv(&["key", "runs", "median", "p95", "min", "unit"], rows)
    }
}

/// `memscope-bench --scale`: the tasks of a large model (a torchvision ResNet at 224 px),
/// each timed, with the accuracies a reference implementation must reproduce.
#[derive(Debug, Serialize)]
pub struct ScaleReport {
    pub experiment: String,
    pub threads: i32,
    pub val_examples: usize,
    /// The layer the within-layer intervention ranks in (the last conv of the last stage).
    pub layer: String,
    /// Memory for cached activations, MB.
    pub cache_mb: usize,
    pub timings: Vec<Timing>,
    /// Per-group val accuracy of the unchanged network.
    pub forward_accuracy: Vec<Option<f64>>,
    /// Per-group val accuracy after zeroing the top-3 neurons by the smallest group's gradient,
    /// ranked globally and within `layer`.
    pub global_after: Vec<Option<f64>>,
    pub layer_after: Vec<Option<f64>>,
    /// Peak resident memory of this process, MB.
    pub peak_rss_mb: Option<f64>,
}

impl Render for ScaleReport {
    fn table(&self) -> String {
        format!(
            "{} ({} val examples; libtorch threads: {}; activation cache {} MB)\n{}\npeak resident memory: {}\n",
            self.experiment,
            self.val_examples,
            self.threads,
            self.cache_mb,
            timing_table(&self.timings, 0),
            self.peak_rss_mb.map_or("not measured".into(), |m| format!("{m:.0} MB")),
        )
    }

    fn csv(&self) -> String {
        csv(&["key", "runs", "median_ms", "p95_ms", "min_ms"], timing_rows(&self.timings))
    }
}
