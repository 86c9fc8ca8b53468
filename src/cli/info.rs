//! `memscope info`: what an experiment holds and how well it does per group.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Result;
use burn::prelude::*;

use super::output::{Format, OutputArgs, csv, percent, table, to_json};
use crate::data::Split;
use crate::inspect::{ExperimentInfo, describe};
use crate::model::LayerKind;

#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// Experiment folder (default: the bundled demo).
    #[arg(long)]
    pub experiment: Option<PathBuf>,
    /// Epoch to evaluate (default: the last).
    #[arg(long)]
    pub epoch: Option<usize>,
    /// Split to evaluate: train, val or test.
    #[arg(long, default_value = "val")]
    pub split: String,
    #[command(flatten)]
    pub output: OutputArgs,
}

impl Default for InfoArgs {
    fn default() -> Self {
        InfoArgs { experiment: None, epoch: None, split: "val".into(), output: OutputArgs::default() }
    }
}

pub fn run(args: InfoArgs, device: &Device) -> Result<()> {
    let split: Split = args.split.parse()?;
    let format = args.output.format()?;
    let (experiment, dataset) = super::open_experiment(args.experiment)?;
    let epoch = args.epoch.unwrap_or_else(|| experiment.last_epoch());
    let info = describe(&experiment, &dataset, epoch, split, device)?;
    let text = match format {
        Format::Json => to_json(&info)?,
        Format::Table => render_table(&info),
        Format::Csv => render_csv(&info),
    };
    args.output.emit(&text)
}

fn render_table(info: &ExperimentInfo) -> String {
    let mut out = String::new();
    let epochs = match (info.epochs.first(), info.epochs.last()) {
        (Some(first), Some(last)) => format!("{} checkpoints, epochs {first}..={last}", info.epochs.len()),
        _ => "no checkpoints".into(),
    };
    let _ = writeln!(out, "experiment  {}  ({})", info.name, info.experiment);
    let _ = writeln!(out, "model       {} parameters; {epochs}\n", info.parameters);

    let _ =
        writeln!(out, "Layers (a neuron is one output filter of a conv, one output unit of a linear layer)");
    let layers = info.layers.iter().map(|l| {
        let mut role = match l.kind {
            LayerKind::Conv => "conv".to_string(),
            LayerKind::Linear => "linear".to_string(),
        };
        if l.shortcut {
            role.push_str(" (shortcut)");
        }
        if l.head {
            role.push_str(" (head)");
        }
        let shape = l.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x");
        vec![l.name.clone(), role, shape, l.neurons.to_string()]
    });
    let _ = writeln!(out, "{}\n", table(&["layer", "kind", "shape", "neurons"], layers));

    let _ = writeln!(out, "Groups (examples per split)");
    let groups = info.groups.iter().map(|g| {
        vec![
            format!("G{} {}", g.group, g.name),
            g.train.to_string(),
            format!("{:.1}%", 100.0 * g.train_proportion),
            g.val.to_string(),
            g.test.to_string(),
        ]
    });
    let _ = writeln!(out, "{}\n", table(&["group", "train", "train share", "val", "test"], groups));

    let acc = &info.accuracy;
    let _ = writeln!(out, "Accuracy on {} at epoch {}", acc.split, info.epoch);
    let rows = acc.groups.iter().map(|g| {
        let mark = if Some(g.group) == acc.worst_group { "  <- worst" } else { "" };
        vec![
            format!("G{} {}", g.group, g.name),
            g.examples.to_string(),
            g.correct.to_string(),
            format!("{}{mark}", percent(g.accuracy)),
        ]
    });
    let _ = writeln!(out, "{}", table(&["group", "examples", "correct", "accuracy"], rows));
    let worst_name = acc.worst_group.map(|g| format!(" (G{g} {})", acc.groups[g].name)).unwrap_or_default();
    let _ =
        writeln!(out, "worst-group accuracy             {}{worst_name}", percent(acc.worst_group_accuracy));
    let _ = writeln!(
        out,
        "mean accuracy                    {}  (group accuracies weighted by TRAINING group proportions)",
        percent(acc.mean_accuracy_train_weighted)
    );
    let _ = writeln!(
        out,
        "average accuracy                 {}  (over all {} examples of {}, unweighted)",
        percent(acc.average_accuracy),
        acc.groups.iter().map(|g| g.examples).sum::<usize>(),
        acc.split
    );
    out
}

fn render_csv(info: &ExperimentInfo) -> String {
    let acc = &info.accuracy;
    let rows = acc.groups.iter().map(|g| {
        vec![
            info.epoch.to_string(),
            acc.split.to_string(),
            g.group.to_string(),
            g.name.clone(),
            g.examples.to_string(),
            g.correct.to_string(),
            g.accuracy.map(|a| format!("{a:.6}")).unwrap_or_default(),
        ]
    });
    csv(&["epoch", "split", "group", "name", "examples", "correct", "accuracy"], rows)
}
