//! A burn user's own classifier studied by memscope.
//!
//! `custom-burn-model train OUT [EPOCHS]` trains [`model::TinyCnn`] on memscope's spurious
//! digits with burn-train (records under `OUT/run/checkpoint/`), then records the run as the
//! memscope experiment `OUT/experiment`. Any other command line is memscope's own
//! (`custom-burn-model explore OUT/experiment`, `intervene`, `ranks`, `figure`, ...), run by
//! the `memscope` library in this program, which has registered `TinyCnn`: the `memscope`
//! binary alone cannot open the experiment, since it does not contain the type.
//! `custom-burn-model check ...` recomputes an intervention's per-group counts with plain
//! burn, for scripts/custom-burn-model.

mod check;
mod data;
mod model;
mod train;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use memscope_core::data::{DatasetSpec, DigitsSpec};
use memscope_core::device::DeviceSpec;
use memscope_core::experiment::custom::{CustomRun, create};
use memscope_core::jobs::Silent;

fn main() -> ExitCode {
    memscope_core::device::quiet_out_of_memory_panics();
    memscope_core::util::interrupt::install();
    memscope::cli::logger::install();
    // The one line that makes this program's model known to memscope.
    memscope_core::model::custom::register(model::NAME, |device| model::TinyCnn::new(3, 2, device));
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("train") => train_and_record(&args[2..]),
        Some("check") => check::run(&args[2..]),
        _ => memscope::cli::run(std::env::args_os()),
    };
    memscope::cli::exit_code("custom-burn-model", result)
}

/// The digits as memscope's demo uses them.
fn dataset_spec() -> DatasetSpec {
    DatasetSpec::SpuriousDigits(DigitsSpec::default())
}

/// `train OUT [EPOCHS]`.
fn train_and_record(args: &[String]) -> Result<()> {
    let Some(out) = args.first().map(PathBuf::from) else {
        bail!("usage: custom-burn-model train OUT [EPOCHS]");
    };
    let epochs: usize = match args.get(1) {
        Some(n) => n.parse().with_context(|| format!("EPOCHS '{n}' is not a number"))?,
        None => 4,
    };
    let device = DeviceSpec::Cpu.device()?;
    memscope_core::device::seed(&device, 7);
    let spec = dataset_spec();
    let dataset = spec.load()?;
    let run = out.join("run");
    train::train(&dataset, &run, epochs, &device)?;
    record(&run, &out.join("experiment"), epochs, spec, &dataset, &device)
}

/// Records the run's burn records as a memscope experiment.
fn record(
    run: &Path,
    experiment: &Path,
    epochs: usize,
    dataset: DatasetSpec,
    data: &memscope_core::data::GroupedDataset,
    device: &burn::prelude::Device,
) -> Result<()> {
    let custom = CustomRun {
        name: "tiny-cnn on spurious digits".to_string(),
        model: model::NAME.to_string(),
        dataset,
        epochs: (0..=epochs).map(|e| (e, train::record_path(run, e))).collect(),
    };
    let made = create(&custom, data, experiment, true, device, &mut Silent)?;
    println!("experiment {} ({} epochs)", made.dir.display(), made.manifest.checkpoints.len());
    Ok(())
}
