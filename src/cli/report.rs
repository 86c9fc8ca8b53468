//! `memscope report`: computes the Stage 1 story on one session (each study with the
//! settings its own command uses by default, so each number matches that command) and writes
//! one self-contained HTML page.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use clap::{Args, FromArgMatches};

use super::DataFlags;
use super::args::{self, SubsetArgs};
use super::figure::BarsSettings;
use super::progress::Bar;
use super::studies::{ControlArgs, RanksSettings, SensitivitySettings};
use memscope_core::data::Split;
use memscope_core::jobs::{Progress, Silent};
use memscope_core::render::Provenance;
use memscope_core::report::{ReportData, html};
use memscope_core::studies::intervention::DEFAULT_REPEATS;
use memscope_core::studies::sensitivity::DEFAULT_EPOCHS_BACK;
use memscope_core::studies::timeline::{self, TimelineSpec};
use memscope_core::studies::{control, grid, ranks, sensitivity};
use memscope_core::util::fsx::write_output;

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Experiment folder (default: the bundled demo).
    #[arg(long)]
    pub experiment: Option<PathBuf>,
    /// Epoch studied (default: the last).
    #[arg(long, allow_negative_numbers = true, value_parser = args::count)]
    pub epoch: Option<usize>,
    /// Split the accuracies are measured on: train, val or test.
    #[arg(long, default_value = "val")]
    pub split: Split,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = args::seed)]
    pub seed: u64,
    /// Runs of each random intervention and random control draws (the slides: 10).
    #[arg(long, default_value_t = DEFAULT_REPEATS, allow_negative_numbers = true, value_parser = args::repeats)]
    pub repeats: usize,
    #[command(flatten)]
    pub subset: SubsetArgs,
    /// The page (written atomically), e.g. report.html.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Also write every number on the page as JSON.
    #[arg(long, value_name = "FILE.json")]
    pub json: Option<PathBuf>,
}

/// A command's settings as it would parse `argv` (its defaults for everything not given).
fn settings<T: Args + FromArgMatches>(argv: &[String]) -> Result<T> {
    let command = T::augment_args(clap::Command::new("report").no_binary_name(true));
    let matches = command.try_get_matches_from(argv).context("cannot build the report's settings")?;
    T::from_arg_matches(&matches).context("cannot build the report's settings")
}

impl ReportArgs {
    /// The options every study shares.
    fn common(&self, epoch: usize) -> Vec<String> {
        let mut argv = vec!["--split".into(), self.split.to_string(), "--seed".into(), self.seed.to_string()];
        argv.extend(["--epoch".into(), epoch.to_string()]);
        if let Some(dir) = &self.experiment {
            argv.extend(["--experiment".into(), dir.display().to_string()]);
        }
        if let Some(n) = self.subset.max_per_group {
            argv.extend([
                "--max-per-group".into(),
                n.to_string(),
                "--subset-seed".into(),
                self.subset.subset_seed.to_string(),
            ]);
        }
        argv
    }
}

pub fn run(args: ReportArgs, device: &Device, data: &DataFlags) -> Result<()> {
    if !args.out.extension().is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"))
    {
        bail!("--out {}: the report's file must end in .html", args.out.display());
    }
    // The epoch first (the default: the experiment's last), so that every study names it.
    let probe: RanksSettings = settings(&args.common(0))?;
    let (mut session, _) = probe.target.open(device, data)?;
    let epoch = args.epoch.unwrap_or_else(|| session.experiment().last_epoch());
    session.experiment().checkpoint(epoch)?;
    if epoch == 0 {
        bail!("--epoch 0: the report rewinds layers and neurons, which needs an epoch after 0");
    }
    let common = args.common(epoch);
    let with = |extra: &[&str]| -> Vec<String> {
        common.iter().cloned().chain(extra.iter().map(|s| s.to_string())).collect()
    };
    let repeats = args.repeats.to_string();
    let bars: BarsSettings = settings(&with(&["--repeats", &repeats]))?;
    let ranks_settings: RanksSettings = settings(&common)?;
    // The slides' distances that fit before the epoch (all of them from epoch 40 on).
    let mut distances: Vec<String> =
        DEFAULT_EPOCHS_BACK.iter().filter(|&&n| n <= epoch).map(usize::to_string).collect();
    if distances.is_empty() {
        distances.push(epoch.to_string());
    }
    let distances = distances.join(",");
    let sensitivity_settings: SensitivitySettings = settings(&with(&["--epochs-back", &distances]))?;
    let control_args: ControlArgs = settings(&with(&["--repeats", &repeats]))?;

    let mut bar = Bar::new("report (studies)");
    let steps = 6;
    bar.report(0, steps)?;
    let erm = session.baseline(epoch, args.split)?;
    let spec = TimelineSpec { split: args.split, epochs: session.experiment().epochs().collect() };
    let timeline = timeline::run(&mut session, &spec, &mut Silent)?;
    bar.report(1, steps)?;
    let seed = bars.target.seed;
    let query =
        bars.scoring.query(session.dataset(), seed, memscope_core::neurons::select::Selection::TopK(1))?;
    let base = memscope_core::studies::intervention::InterventionSpec::neurons(epoch)
        .seed(seed)
        .query(query)
        .on(bars.target.split)
        .repeats(bars.repeats);
    let grid =
        grid::run(&mut session, &base, &super::figure::interventions(&bars.kinds), &bars.ks, &mut Silent)?;
    bar.report(2, steps)?;
    let ranks = ranks::run(&mut session, &ranks_settings.spec(epoch), &mut Silent)?;
    bar.report(3, steps)?;
    let sensitivity = sensitivity::run(&mut session, &sensitivity_settings.spec(epoch), &mut Silent)?;
    bar.report(4, steps)?;
    let control_spec = control_args.spec(session.dataset(), epoch)?;
    let control = control::run(&mut session, &control_spec, &mut Silent)?;
    bar.report(5, steps)?;

    let experiment = session.experiment();
    let checkpoints = experiment
        .epochs()
        .map(|e| experiment.checkpoint(e).map(|c| (e, c.file.clone(), c.sha256.clone())))
        .collect::<Result<Vec<_>>>()?;
    let request = serde_json::json!({
        "split": args.split, "seed": args.seed, "repeats": args.repeats, "epoch": epoch,
        "intervention": base, "ranks": ranks.spec, "sensitivity": sensitivity.spec, "control": control.spec,
    });
    let provenance = Provenance::new(experiment, &session.dataset().changes, epoch, &request)?;
    let data = ReportData {
        provenance,
        dataset: session.dataset().name.clone(),
        train_counts: session.dataset().train_group_counts(),
        erm,
        timeline,
        bars: grid,
        ranks,
        sensitivity,
        control,
        checkpoints,
    };
    let page = html(&data)?;
    bar.report(6, steps)?;
    if let Some(json) = &args.json {
        let text = serde_json::to_string_pretty(&data).context("cannot serialise the report's numbers")?;
        write_output(json, (text + "\n").as_bytes())?;
    }
    write_output(&args.out, page.as_bytes())
}
