//! `memscope scores`, `ranks`, `sensitivity` and `control`.

use std::fmt::Write as _;

use anyhow::Result;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::intervene::points;
use super::output::{Format, OutputArgs, csv, percent, table, to_json};
use super::select::{Candidates, Scoring, Target};
use crate::neurons::scores::Criterion;
use crate::neurons::select::Selection;
use crate::studies::intervention::{RankingSpec, SelectedNeuron, selected_neurons};
use crate::studies::{control, ranks, sensitivity};

#[derive(clap::Args, Debug)]
pub struct ScoresArgs {
    /// How many of the top neurons to list.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub scoring: Scoring,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// The answer of `memscope scores`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScoreList {
    pub ranking: RankingSpec,
    pub granularity: String,
    pub candidates: usize,
    pub neurons: Vec<SelectedNeuron>,
}

pub fn run_scores(args: ScoresArgs, device: &Device) -> Result<()> {
    let format = args.output.format()?;
    let granularity = args.scoring.granularity()?;
    let (mut session, epoch, _) = args.target.open(device)?;
    let space = session.space(&args.scoring.candidates(), granularity)?;
    let ranking = RankingSpec {
        epoch,
        criterion: args.scoring.criterion(session.dataset(), args.target.seed)?,
        scope: args.scoring.scope(),
        normalize_layers: args.scoring.normalize_layers,
        selection: Selection::TopK(0),
        seed: args.target.seed,
    };
    let (candidates, _, _) = selected_neurons(&mut session, &ranking, &space)?;
    let ranking = RankingSpec { selection: Selection::TopK(args.top.min(candidates)), ..ranking };
    let (candidates, _, neurons) = selected_neurons(&mut session, &ranking, &space)?;
    let list = ScoreList { ranking, granularity: granularity.to_string(), candidates, neurons };
    let rows = list.neurons.iter().enumerate().map(|(i, n)| {
        vec![
            (i + 1).to_string(),
            n.id.to_string(),
            format!("{:.4e}", n.score),
            format!("{:.1}", n.score_percentile),
            format!("{:.4}", n.magnitude),
            format!("{:.1}", n.magnitude_percentile),
        ]
    });
    let header = ["rank", "neuron", "score", "score pct", "magnitude", "magnitude pct"];
    let text = match format {
        Format::Json => to_json(&list)?,
        Format::Csv => csv(&header, rows),
        Format::Table => format!(
            "Top {} of {} {} neurons (scope {}) by {}, epoch {}\n{}",
            list.neurons.len(),
            list.candidates,
            list.granularity,
            list.ranking.scope,
            list.ranking.criterion,
            epoch,
            table(&header, rows)
        ),
    };
    args.output.emit(&text)
}

#[derive(clap::Args, Debug)]
pub struct RanksArgs {
    /// Top fraction of neurons taken by each score (the paper: 0.0001 = 0.01%; at least
    /// one neuron is taken).
    #[arg(long, default_value_t = 0.0001)]
    pub fraction: f64,
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub scoring: Scoring,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run_ranks(args: RanksArgs, device: &Device) -> Result<()> {
    let format = args.output.format()?;
    let (mut session, epoch, _) = args.target.open(device)?;
    let spec = ranks::RankSpec {
        epoch,
        fraction: args.fraction,
        granularity: args.scoring.granularity()?,
        candidates: args.scoring.candidates(),
        split: args.scoring.score_split.parse()?,
        sampling: args.scoring.sampling.parse()?,
        seed: args.target.seed,
    };
    let study = ranks::run(&mut session, &spec, &mut crate::jobs::Silent)?;
    let bins: Vec<String> = (0..ranks::BINS).map(|b| format!("{}-{}", 5 * b, 5 * b + 5)).collect();
    let text = match format {
        Format::Json => to_json(&study)?,
        Format::Csv => {
            let mut header = vec!["group", "direction"];
            header.extend(bins.iter().map(String::as_str));
            let rows = study.groups.iter().flat_map(|g| {
                [
                    ("magnitude_rank_of_top_gradient", &g.magnitude_rank_of_top_gradient),
                    ("gradient_rank_of_top_magnitude", &g.gradient_rank_of_top_magnitude),
                ]
                .map(|(dir, h)| {
                    let mut row = vec![g.group.to_string(), dir.to_string()];
                    row.extend(h.iter().map(|c| c.to_string()));
                    row
                })
            });
            csv(&header, rows)
        }
        Format::Table => {
            let mut out = format!(
                "Rank histograms, epoch {epoch}: the top {} of {} {} neurons by each score \
                 (gradient on {} with {}); counts per 5-point percentile bin, 100 = largest\n",
                study.selected, study.candidates, spec.granularity, spec.split, spec.sampling
            );
            let shown: Vec<usize> = (0..ranks::BINS).rev().take(6).collect();
            let mut header = vec!["group".to_string(), "histogram".to_string()];
            header.extend(shown.iter().map(|&b| bins[b].clone()));
            header.push("below 70".into());
            header.push("in both tops".into());
            let rows = study.groups.iter().flat_map(|g| {
                [
                    ("magnitude rank of top-gradient", &g.magnitude_rank_of_top_gradient),
                    ("gradient rank of top-magnitude", &g.gradient_rank_of_top_magnitude),
                ]
                .map(|(what, h)| {
                    let mut row = vec![format!("G{} {}", g.group, g.name), what.to_string()];
                    row.extend(shown.iter().map(|&b| h[b].to_string()));
                    row.push(h[..ranks::BINS - shown.len()].iter().sum::<usize>().to_string());
                    row.push(g.overlap.to_string());
                    row
                })
            });
            let header: Vec<&str> = header.iter().map(String::as_str).collect();
            out.push_str(&table(&header, rows));
            out.push('\n');
            out
        }
    };
    args.output.emit(&text)
}

#[derive(clap::Args, Debug)]
pub struct SensitivityArgs {
    /// Rewinding distances in epochs (the slides: 5,10,20,30,40).
    #[arg(long, value_delimiter = ',', default_values_t = sensitivity::DEFAULT_EPOCHS_BACK)]
    pub epochs_back: Vec<usize>,
    /// A layer is sensitive for a group when |accuracy change| >= this (0.01 = 1 point).
    #[arg(long, default_value_t = 0.01)]
    pub threshold: f64,
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub layers: Candidates,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run_sensitivity(args: SensitivityArgs, device: &Device) -> Result<()> {
    let format = args.output.format()?;
    let (mut session, epoch, split) = args.target.open(device)?;
    let spec = sensitivity::SensitivitySpec {
        epoch,
        split,
        epochs_back: args.epochs_back.clone(),
        threshold: args.threshold,
        candidates: args.layers.filter(),
    };
    let study = sensitivity::run(&mut session, &spec, &mut crate::jobs::Silent)?;
    let groups: Vec<String> = study.groups.iter().enumerate().map(|(g, _)| format!("G{g}")).collect();
    let text = match format {
        Format::Json => to_json(&study)?,
        Format::Csv => {
            let mut header = vec!["layer".to_string(), "epochs_back".to_string()];
            header.extend(groups.iter().map(|g| format!("{g}_change")));
            let rows = study.rows.iter().map(|r| {
                let mut row = vec![r.layer.clone(), r.epochs_back.to_string()];
                row.extend(r.change.iter().map(|c| c.map(|c| format!("{c:.6}")).unwrap_or_default()));
                row
            });
            csv(&header.iter().map(String::as_str).collect::<Vec<_>>(), rows)
        }
        Format::Table => {
            let mut out = format!(
                "Sensitive layers, epoch {epoch}, {split}: signed accuracy change (points) when one layer is \
                 rewound n epochs; * marks |change| >= {:.1} points\n",
                100.0 * spec.threshold
            );
            for (i, &n) in spec.epochs_back.iter().enumerate() {
                let mut header = vec![format!("rewind {n}")];
                header.extend(study.groups.iter().enumerate().map(|(g, name)| format!("G{g} {name}")));
                let rows = study.rows.iter().filter(|r| r.epochs_back == n).map(|r| {
                    let mut row = vec![r.layer.clone()];
                    row.extend(
                        r.change
                            .iter()
                            .zip(&r.sensitive)
                            .map(|(c, &s)| format!("{}{}", points(*c), if s { "*" } else { " " })),
                    );
                    row
                });
                let mut rows: Vec<Vec<String>> = rows.collect();
                let mut count = vec!["sensitive layers".to_string()];
                count.extend(study.counts[i].iter().map(|c| format!("{c} ")));
                rows.push(count);
                let header: Vec<&str> = header.iter().map(String::as_str).collect();
                let _ = writeln!(out, "{}", table(&header, rows));
            }
            let _ = writeln!(
                out,
                "before: {}",
                study
                    .before
                    .groups
                    .iter()
                    .map(|g| format!("G{} {}", g.group, percent(g.accuracy)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            out
        }
    };
    args.output.emit(&text)
}

#[derive(clap::Args, Debug)]
pub struct ControlArgs {
    /// Fractions of the candidates zeroed (the slides: 0.0001,0.0002,0.0003).
    #[arg(long, value_delimiter = ',', default_values_t = [0.0001, 0.0002, 0.0003])]
    pub fractions: Vec<f64>,
    /// Random draws of control neurons per fraction.
    #[arg(long, default_value_t = 10)]
    pub repeats: usize,
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub scoring: Scoring,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run_control(args: ControlArgs, device: &Device) -> Result<()> {
    let format = args.output.format()?;
    let (mut session, epoch, split) = args.target.open(device)?;
    let criterion: Criterion = args.scoring.criterion(session.dataset(), args.target.seed)?;
    let spec = control::ControlSpec {
        epoch,
        split,
        fractions: args.fractions.clone(),
        criterion,
        granularity: args.scoring.granularity()?,
        candidates: args.scoring.candidates(),
        repeats: args.repeats,
        seed: args.target.seed,
    };
    let study = control::run(&mut session, &spec)?;
    let text = match format {
        Format::Json => to_json(&study)?,
        Format::Csv => {
            let rows = study.rows.iter().flat_map(|r| {
                let mut rows = Vec::new();
                for (which, changes) in [("critical", &r.critical), ("control", &r.control)] {
                    for g in changes.iter() {
                        rows.push(vec![
                            r.fraction.to_string(),
                            r.count.to_string(),
                            which.to_string(),
                            g.group.to_string(),
                            g.change.map(|c| format!("{c:.6}")).unwrap_or_default(),
                            g.abs_change.map(|c| format!("{c:.6}")).unwrap_or_default(),
                        ]);
                    }
                }
                rows
            });
            csv(&["fraction", "count", "neurons", "group", "change", "abs_change"], rows)
        }
        Format::Table => {
            let mut header = vec!["zeroed".to_string(), "neurons".to_string()];
            header.extend(session.dataset().group_names.iter().enumerate().map(|(g, n)| format!("G{g} {n}")));
            let rows = study.rows.iter().flat_map(|r| {
                [("critical (top)", &r.critical), ("control (random)", &r.control)].map(|(which, changes)| {
                    let mut row =
                        vec![format!("{} ({:.2}%)", r.count, 100.0 * r.fraction), which.to_string()];
                    row.extend(changes.iter().map(|g| points(g.change)));
                    row
                })
            });
            let header: Vec<&str> = header.iter().map(String::as_str).collect();
            format!(
                "Control, epoch {epoch}, {split}: signed accuracy change (points) from zeroing the top neurons by {} \
                 vs the same number drawn at random outside the top (mean of {} draws), of {} {} neurons\n{}\n",
                spec.criterion,
                spec.repeats,
                study.candidates,
                spec.granularity,
                table(&header, rows)
            )
        }
    };
    args.output.emit(&text)
}
