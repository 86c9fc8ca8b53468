//! `memscope export`: checkpoints and data as safetensors for other tools.

use std::path::PathBuf;

use anyhow::Result;

use crate::data::Split;

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Folder to write to (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Experiment folder (default: the bundled demo).
    #[arg(long)]
    pub experiment: Option<PathBuf>,
    /// Epochs to export (comma-separated; default: the last).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true, value_parser = super::args::count)]
    pub epochs: Vec<usize>,
    /// Export every checkpoint.
    #[arg(long, conflicts_with = "epochs")]
    pub all: bool,
    /// Splits whose data to export (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "val,test")]
    pub splits: Vec<Split>,
}

pub fn run(args: ExportArgs) -> Result<()> {
    let (experiment, dataset) = super::open_experiment(args.experiment)?;
    let epochs: Vec<usize> = if args.all {
        experiment.epochs().collect()
    } else if args.epochs.is_empty() {
        vec![experiment.last_epoch()]
    } else {
        args.epochs
    };
    let index = crate::experiment::export::export(
        &experiment,
        &dataset,
        &epochs,
        &args.splits,
        &args.out,
        &mut crate::jobs::Silent,
    )?;
    eprintln!(
        "wrote {} checkpoint(s), {} data file(s) and export.json to {}",
        index.checkpoints.len(),
        index.data.len(),
        args.out.display()
    );
    Ok(())
}
