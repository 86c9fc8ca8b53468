//! `memscope export`: checkpoints and data as safetensors for other tools, or the digits
//! data set as a Waterbirds-style image folder.

use std::path::PathBuf;

use anyhow::{Result, bail};

use super::{DataFlags, args};
use memscope_core::data::{DatasetSpec, Split};

/// What `export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// Checkpoints and split data as safetensors, with export.json.
    Safetensors,
    /// The spurious digits as a Waterbirds folder: JPEGs and metadata.csv, all splits.
    Waterbirds,
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Folder to write to (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Experiment folder (default: the bundled demo).
    #[arg(long)]
    pub experiment: Option<PathBuf>,
    /// safetensors (checkpoints and data) or waterbirds (the digits as JPEGs + metadata.csv).
    #[arg(long, value_enum, default_value = "safetensors")]
    pub format: ExportFormat,
    /// Epochs to export (comma-separated; default: the last). safetensors only.
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true, value_parser = args::count)]
    pub epochs: Vec<usize>,
    /// Export every checkpoint. safetensors only.
    #[arg(long, conflicts_with = "epochs")]
    pub all: bool,
    /// Splits whose data to export (comma-separated; default: val,test). safetensors only.
    #[arg(long, value_delimiter = ',')]
    pub splits: Vec<Split>,
    /// Side of the square images, 1..=4096 pixels (default 224). waterbirds only.
    #[arg(long, allow_negative_numbers = true, value_parser = args::image_size)]
    pub size: Option<usize>,
    /// Replace a non-empty --out folder (never one holding an experiment). waterbirds only.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: ExportArgs, data: &DataFlags) -> Result<()> {
    match args.format {
        ExportFormat::Safetensors => safetensors(args, data),
        ExportFormat::Waterbirds => waterbirds(args, data),
    }
}

fn safetensors(args: ExportArgs, data: &DataFlags) -> Result<()> {
    if args.size.is_some() || args.force {
        bail!("--size and --force apply to --format waterbirds");
    }
    let (experiment, dataset) = super::open_experiment(args.experiment, &data.options(&Default::default()))?;
    let epochs: Vec<usize> = if args.all {
        experiment.epochs().collect()
    } else if args.epochs.is_empty() {
        vec![experiment.last_epoch()]
    } else {
        args.epochs
    };
    let splits = if args.splits.is_empty() { vec![Split::Val, Split::Test] } else { args.splits };
    let index = memscope_core::experiment::export::export(
        &experiment,
        &dataset,
        &epochs,
        &splits,
        &args.out,
        &mut memscope_core::jobs::Silent,
    )?;
    eprintln!(
        "wrote {} checkpoint(s), {} data file(s) and export.json to {}",
        index.checkpoints.len(),
        index.data.len(),
        args.out.display()
    );
    Ok(())
}

fn waterbirds(args: ExportArgs, data: &DataFlags) -> Result<()> {
    if !args.epochs.is_empty() || args.all || !args.splits.is_empty() {
        bail!(
            "--epochs, --all and --splits apply to --format safetensors; waterbirds writes every split's images"
        );
    }
    let (experiment, dataset) = super::open_experiment(args.experiment, &data.options(&Default::default()))?;
    if let DatasetSpec::Folder(spec) = &experiment.manifest.dataset {
        bail!(
            "--format waterbirds writes a spurious-digits data set; {} already reads an image folder ({})",
            experiment.dir.display(),
            spec.path.display()
        );
    }
    let size = args.size.unwrap_or(224);
    let summary =
        memscope_core::data::folder::export::export_waterbirds(&dataset, &args.out, size, args.force)?;
    let [train, val, test] = summary.images;
    eprintln!(
        "wrote {} images ({train} train, {val} val, {test} test) at {size}x{size} and metadata.csv to {}",
        train + val + test,
        args.out.display()
    );
    Ok(())
}
