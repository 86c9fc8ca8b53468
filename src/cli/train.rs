//! `memscope train`: ERM training with a checkpoint per epoch.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};

use super::output::percent;
use memscope_core::train::{EpochReport, TrainPlan, train};

#[derive(clap::Args, Debug)]
#[command(mut_args(|arg| super::args::describe_fit(arg, &TrainPlan::default().training, ", or the --config plan's")))]
pub struct TrainArgs {
    /// Folder to write the experiment to.
    #[arg(long)]
    pub out: PathBuf,
    /// A RON file with `name`, `model`, `dataset` and `training` (all optional);
    /// flags below override its training settings.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Replace an existing experiment at --out.
    #[arg(long)]
    pub force: bool,
    #[arg(long)]
    pub name: Option<String>,
    /// Train on an image folder instead of the plan's data set: waterbirds:DIR, celeba:DIR or
    /// csv:FILE (evaluation transform of that layout at 224 px).
    #[arg(long, value_parser = clap::builder::ValueParser::new(|s: &str| s.parse::<memscope_core::data::folder::FolderSpec>()))]
    pub data: Option<memscope_core::data::folder::FolderSpec>,
    #[command(flatten)]
    pub folder: super::args::FolderArgs,
    #[command(flatten)]
    pub fit: super::args::FitArgs,
    #[arg(long)]
    pub seed: Option<u64>,
}

/// Trains as `args` say; `skip_bad_images` leaves a folder's bad images out (listed on stderr).
pub fn run(args: TrainArgs, device: &Device, skip_bad_images: bool) -> Result<()> {
    let mut plan = match &args.config {
        Some(path) => TrainPlan::read(path)?,
        None => TrainPlan::default(),
    };
    let t = &mut plan.training;
    if let Some(v) = args.name {
        plan.name = v;
    }
    if let Some(mut spec) = args.data {
        // Recorded absolute, so the experiment finds it from any working directory.
        spec.path = std::path::absolute(&spec.path)
            .with_context(|| format!("cannot resolve --data path {}", spec.path.display()))?;
        plan.dataset = memscope_core::data::DatasetSpec::Folder(spec);
    }
    // Also on a --config plan's folder; refused on the digits.
    args.folder.apply(&mut plan.dataset)?;
    args.fit.apply(t);
    if let Some(v) = args.seed {
        t.seed = v;
    }
    plan.training.validate()?;
    let dataset = plan.dataset.load_with(skip_bad_images)?;
    if let Some(listing) = dataset.changes.skipped_listing(&dataset.name) {
        eprintln!("{listing}");
    }

    let printer = EpochPrinter::new(plan.training.epochs);
    let experiment = train(
        &plan,
        &dataset,
        &args.out,
        args.force,
        device,
        &mut |p| printer.report(p),
        &mut memscope_core::jobs::Silent,
    )?;
    printer.finish();
    eprintln!(
        "wrote {} checkpoints and experiment.ron to {}",
        experiment.manifest.checkpoints.len(),
        experiment.dir.display()
    );
    Ok(())
}

/// Per-epoch lines of a training run: a progress bar on a terminal, plain lines otherwise.
pub(super) struct EpochPrinter {
    bar: Option<ProgressBar>,
}

impl EpochPrinter {
    pub(super) fn new(epochs: usize) -> EpochPrinter {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(epochs as u64);
            bar.set_style(
                ProgressStyle::with_template("{elapsed_precise} [{bar:30}] epoch {pos}/{len} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar
        });
        EpochPrinter { bar }
    }

    pub(super) fn report(&self, p: &EpochReport) {
        let EpochReport { epoch, epochs, train_loss, val, diagnostics } = p;
        let mut line = format!(
            "loss {}  val worst-group {}  val mean {}",
            train_loss.map(|l| format!("{l:.4}")).unwrap_or_else(|| "-".into()),
            percent(val.worst_group_accuracy),
            percent(val.mean_accuracy_train_weighted)
        );
        if let Some(d) = diagnostics {
            line += &format!(
                "  nt-xent {:.4}  ce {:.4}  |grad| {:.2e}  dense-masked L2 {:.2e}",
                d.ntxent, d.ce, d.grad_norm, d.distance
            );
        }
        match &self.bar {
            Some(bar) => {
                bar.set_position(*epoch as u64);
                bar.set_message(line);
            }
            None => eprintln!("epoch {epoch}/{epochs}  {line}"),
        }
    }

    pub(super) fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish();
        }
    }
}
