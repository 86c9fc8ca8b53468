//! `memscope intervene` and `memscope rewind`: one intervention and its per-group change.

use std::fmt::Write as _;

use anyhow::Result;
use burn::prelude::*;

use super::output::{Format, OutputArgs, csv, percent, table, to_json};
use super::select::{Count, Scoring, Target};
use crate::intervene::{DEFAULT_EPOCHS_BACK, DEFAULT_NOISE_SIGMA, DEFAULT_REINIT_SIGMA, Intervention};
use crate::neurons::Granularity;
use crate::neurons::scores::Criterion;
use crate::neurons::select::{Scope, Selection};
use crate::studies::intervention::{InterventionResult, InterventionSpec, run};

#[derive(clap::Args, Debug)]
pub struct InterveneArgs {
    /// zero (prune), reinit, noise, or rewind (the selected neurons to an earlier epoch).
    #[arg(long, default_value = "zero")]
    pub kind: String,
    /// σ of re-init (default 0.02) or noise (default 0.01), from the authors' configurations.
    #[arg(long, allow_negative_numbers = true)]
    pub sigma: Option<f64>,
    /// Re-initialise with σ·Uniform[0, 1) (the code's threshold script) instead of N(0, σ²).
    #[arg(long)]
    pub uniform: bool,
    /// How far back a rewind goes (default 10 epochs).
    #[arg(long)]
    pub epochs_back: Option<usize>,
    /// Runs of a random intervention, averaged (the slides: 10).
    #[arg(long, default_value_t = 10)]
    pub repeats: usize,
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
    /// How far back (default 10 epochs).
    #[arg(long, default_value_t = DEFAULT_EPOCHS_BACK)]
    pub epochs_back: usize,
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run_intervene(args: InterveneArgs, device: &Device) -> Result<()> {
    let format = args.output.format()?;
    let intervention = match args.kind.as_str() {
        "zero" | "zero-out" | "prune" => Intervention::ZeroOut,
        "reinit" => {
            Intervention::Reinit { sigma: args.sigma.unwrap_or(DEFAULT_REINIT_SIGMA), uniform: args.uniform }
        }
        "noise" => Intervention::Noise { sigma: args.sigma.unwrap_or(DEFAULT_NOISE_SIGMA) },
        "rewind" => {
            Intervention::RewindNeurons { epochs_back: args.epochs_back.unwrap_or(DEFAULT_EPOCHS_BACK) }
        }
        other => anyhow::bail!("unknown intervention kind '{other}' (valid: zero, reinit, noise, rewind)"),
    };
    let granularity = args.scoring.granularity()?;
    let (mut session, epoch, split) = args.target.open(device)?;
    let criterion = args.scoring.criterion(session.dataset(), args.target.seed)?;
    let space = session.space(&args.scoring.candidates(), granularity)?;
    let in_scope = match args.scoring.scope() {
        Scope::Global => space.total(),
        Scope::Layer(name) => space.range(space.layer_index(&name)?).len(),
    };
    let spec = InterventionSpec {
        epoch,
        split,
        intervention,
        criterion,
        selection: args.count.selection(in_scope)?,
        scope: args.scoring.scope(),
        normalize_layers: args.scoring.normalize_layers,
        granularity,
        candidates: args.scoring.candidates(),
        repeats: args.repeats,
        seed: args.target.seed,
    };
    let result = run(&mut session, &spec)?;
    args.output.emit(&render(&result, format)?)
}

pub fn run_rewind(args: RewindArgs, device: &Device) -> Result<()> {
    let format = args.output.format()?;
    let (mut session, epoch, split) = args.target.open(device)?;
    let spec = InterventionSpec {
        epoch,
        split,
        intervention: Intervention::RewindLayer { layer: args.layer, epochs_back: args.epochs_back },
        criterion: Criterion::Magnitude,
        selection: Selection::TopK(0),
        scope: Scope::Global,
        normalize_layers: false,
        granularity: Granularity::Unit,
        candidates: Default::default(),
        repeats: 1,
        seed: args.target.seed,
    };
    let result = run(&mut session, &spec)?;
    args.output.emit(&render(&result, format)?)
}

fn render(result: &InterventionResult, format: Format) -> Result<String> {
    Ok(match format {
        Format::Json => to_json(result)?,
        Format::Csv => render_csv(result),
        Format::Table => render_table(result),
    })
}

/// A signed change in percentage points, or n/a.
pub fn points(value: Option<f64>) -> String {
    match value {
        Some(v) => format!("{:+.1}", 100.0 * v),
        None => "n/a".into(),
    }
}

pub fn headline(result: &InterventionResult) -> String {
    let s = &result.spec;
    match &s.intervention {
        Intervention::RewindLayer { .. } => {
            format!("{} at epoch {}, measured on {}", s.intervention, s.epoch, s.split)
        }
        _ => format!(
            "{} of the {} {} neurons ({} of {} in scope {}) by {}{}, epoch {}, measured on {}",
            s.intervention,
            s.selection,
            s.granularity,
            result.neurons.len(),
            result.candidates,
            s.scope,
            s.criterion,
            if s.normalize_layers { ", layer-normalised" } else { "" },
            s.epoch,
            s.split
        ),
    }
}

fn render_table(result: &InterventionResult) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", headline(result));
    if result.runs > 1 {
        let _ = writeln!(out, "mean of {} runs (seeds from {})", result.runs, result.spec.seed);
    }
    if !result.neurons.is_empty() {
        let rows = result.neurons.iter().map(|n| {
            vec![
                n.id.to_string(),
                format!("{:.4e}", n.score),
                format!("{:.1}", n.score_percentile),
                format!("{:.4}", n.magnitude),
                format!("{:.1}", n.magnitude_percentile),
            ]
        });
        let _ = writeln!(
            out,
            "\nSelected neurons (percentile rank: 100 = largest)\n{}",
            table(&["neuron", "score", "score pct", "magnitude", "magnitude pct"], rows)
        );
    }
    let rows = result.groups.iter().map(|g| {
        let after = match (g.after, g.after_std) {
            (Some(a), Some(sd)) if result.runs > 1 => format!("{} ± {:.1}", percent(Some(a)), 100.0 * sd),
            (a, _) => percent(a),
        };
        let mark = if Some(g.group) == result.before.worst_group { " (worst)" } else { "" };
        vec![
            format!("G{} {}{mark}", g.group, g.name),
            g.examples.to_string(),
            percent(g.before),
            after,
            points(g.change),
            g.abs_change.map(|c| format!("{:.1}", 100.0 * c)).unwrap_or_else(|| "n/a".into()),
        ]
    });
    let _ = writeln!(
        out,
        "\nAccuracy on {} (change in percentage points; |change| is the slides' Δacc)\n{}",
        result.spec.split,
        table(&["group", "examples", "before", "after", "change", "|change|"], rows)
    );
    let (b, a) = (&result.before_summary, &result.after_summary);
    let _ = writeln!(
        out,
        "worst-group accuracy   {} -> {}",
        percent(b.worst_group_accuracy),
        percent(a.worst_group_accuracy)
    );
    let _ = writeln!(
        out,
        "mean accuracy          {} -> {}  (weighted by TRAINING group proportions)",
        percent(b.mean_accuracy_train_weighted),
        percent(a.mean_accuracy_train_weighted)
    );
    out
}

fn render_csv(result: &InterventionResult) -> String {
    let f = |v: Option<f64>| v.map(|v| format!("{v:.6}")).unwrap_or_default();
    let rows = result.groups.iter().map(|g| {
        vec![
            g.group.to_string(),
            g.name.clone(),
            g.examples.to_string(),
            f(g.before),
            f(g.after),
            f(g.after_std),
            f(g.change),
            f(g.abs_change),
        ]
    });
    csv(&["group", "name", "examples", "before", "after", "after_std", "change", "abs_change"], rows)
}
