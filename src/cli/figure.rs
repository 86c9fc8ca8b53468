//! `memscope figure KIND`: the paper's plots as SVG or PNG, computed with the same settings
//! as the matching command, or drawn from an exported result (`--from`).

use std::path::PathBuf;
use std::sync::LazyLock;

use anyhow::{Result, bail};
use burn::prelude::*;
use clap::Subcommand;

use super::DataFlags;
use super::args::{self, Kind, SubsetArgs};
use super::intervene::ChangeArgs;
use super::progress::Bar;
use super::select::{Count, Scoring, Target};
use super::studies::{RanksSettings, SensitivitySettings};
use memscope_core::data::Split;
use memscope_core::experiment::Experiment;
use memscope_core::figure::{self, Figure, ImageFormat};
use memscope_core::neurons::select::Selection;
use memscope_core::render::Provenance;
use memscope_core::session::Session;
use memscope_core::studies::DEFAULT_SPLIT;
use memscope_core::studies::diagnostics::{self, RunFolder};
use memscope_core::studies::epochs::{self, EpochSeriesSpec};
use memscope_core::studies::grid::{self, DEFAULT_KS, GridSpec};
use memscope_core::studies::intervention::{DEFAULT_REPEATS, InterventionSpec};
use memscope_core::studies::sweep::{self, SweepSpec};
use memscope_core::studies::timeline::{self, TimelineSpec};
use memscope_core::util::fsx::{read_regular, write_output};

/// The command's one line in `memscope --help`: every kind the engine draws, by name.
pub fn about() -> String {
    format!(
        "Draw a figure of the paper ({}) as SVG or PNG, computed as the matching command computes it, \
         or from an exported result",
        figure::KINDS.join(", ")
    )
}

#[derive(clap::Args, Debug)]
pub struct FigureArgs {
    #[command(subcommand)]
    pub kind: FigureKind,
}

/// Where the figure goes, and `--from` / `--json`.
#[derive(clap::Args, Debug, Clone)]
pub struct FigureOut {
    /// The figure's file, .svg or .png (written atomically).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Draw this exported result instead of computing (the settings are the file's): the JSON
    /// of `memscope figure KIND --json`, or of `intervene`, `ranks` or `sensitivity` with
    /// `--format json`.
    #[arg(long, value_name = "RESULT.json")]
    pub from: Option<PathBuf>,
    /// Also write the figure's numbers, with their provenance, as JSON (for --from).
    #[arg(long, value_name = "FILE.json")]
    pub json: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum FigureKind {
    /// Per-group Δacc of zero-out, re-init, noise and neuron rewind at k = 1, 2, 3 (the
    /// slides' Stage 1 figure), with ±1 sd over repeats.
    Bars(BarsArgs),
    /// Both rank histograms of every group (settings as `memscope ranks`).
    Ranks {
        #[command(flatten)]
        settings: RanksSettings,
        #[command(flatten)]
        out: FigureOut,
    },
    /// Sensitive layers per group against rewinding distance, and the layer heat map
    /// (settings as `memscope sensitivity`).
    Sensitivity {
        #[command(flatten)]
        settings: SensitivitySettings,
        #[command(flatten)]
        out: FigureOut,
    },
    /// Per-group, worst-group and mean accuracy over the epochs of an experiment.
    Timeline(TimelineArgs),
    /// Worst-group val accuracy per epoch of mitigation runs (as `memscope compare`).
    Mitigation(MitigationArgs),
    /// Per-epoch NT-Xent, supervised term, gradient norm and dense-vs-masked distance of
    /// mitigation runs, with worst-group val accuracy: a panel each, a line per run (a folder
    /// of seed-N experiments: their mean, shaded min to max).
    Diagnostics(MitigationArgs),
    /// One intervention within each layer in turn, every group's change: the layer × group
    /// grid (settings as `memscope intervene`; each row is `intervene --within LAYER`).
    Sweep(SweepArgs),
    /// One intervention at every checkpoint in turn, every group's change over training
    /// (settings as `memscope intervene`, `--within` included; each point is `intervene
    /// --epoch E`; `--epoch` is ignored).
    Epochs(SweepArgs),
}

#[derive(clap::Args, Debug)]
pub struct SweepArgs {
    #[command(flatten)]
    pub change: ChangeArgs,
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub scoring: Scoring,
    #[command(flatten)]
    pub count: Count,
    #[command(flatten)]
    pub out: FigureOut,
}

#[derive(clap::Args, Debug)]
pub struct BarsArgs {
    #[command(flatten)]
    pub settings: BarsSettings,
    #[command(flatten)]
    pub out: FigureOut,
}

/// `--kinds`' default: the slides' four interventions, as one comma-separated value.
static DEFAULT_KINDS: LazyLock<String> = LazyLock::new(|| {
    let kinds: Vec<String> =
        grid::default_interventions().iter().map(|i| Kind::from(i).to_string()).collect();
    kinds.join(",")
});

/// What `figure bars` computes (as `report` computes it by default).
#[derive(clap::Args, Debug, Clone)]
pub struct BarsSettings {
    /// The interventions, in panel order (zero, reinit, noise, rewind).
    #[arg(long, value_delimiter = ',', default_value = DEFAULT_KINDS.as_str())]
    pub kinds: Vec<Kind>,
    /// The k of each cluster of bars (the slides: 1,2,3).
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_KS, allow_negative_numbers = true,
          value_parser = args::positive)]
    pub ks: Vec<usize>,
    /// Change exactly these neurons instead of a ranking's top k: one cluster of bars, ids as
    /// the outputs write them (stem.conv:13, blocks.3.attn.qkv:k:h2:17; comma-separated).
    #[arg(long, value_name = "ID,...", value_delimiter = ',',
          conflicts_with_all = ["ks", "within", "normalize_layers"])]
    pub neurons: Vec<String>,
    /// Runs of each random intervention (the slides: 10).
    #[arg(long, default_value_t = DEFAULT_REPEATS, allow_negative_numbers = true, value_parser = args::repeats)]
    pub repeats: usize,
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub scoring: Scoring,
}

#[derive(clap::Args, Debug)]
pub struct TimelineArgs {
    /// Experiment folder (default: the bundled demo).
    #[arg(long)]
    pub experiment: Option<PathBuf>,
    /// Split the accuracies are measured on: train, val or test.
    #[arg(long, default_value_t = DEFAULT_SPLIT)]
    pub split: Split,
    #[command(flatten)]
    pub subset: SubsetArgs,
    #[command(flatten)]
    pub out: FigureOut,
}

#[derive(clap::Args, Debug)]
pub struct MitigationArgs {
    /// Experiment folders: a parent and its mitigations (a folder of seed-N experiments
    /// stands for them all).
    #[arg(required_unless_present = "from")]
    pub experiments: Vec<PathBuf>,
    #[command(flatten)]
    pub out: FigureOut,
}

/// The bars' numbers: every intervention at every k, on the session at `epoch` (as
/// `memscope report` computes them with the defaults).
fn bars(
    session: &mut Session,
    epoch: usize,
    args: &BarsSettings,
    progress: &mut dyn memscope_core::jobs::Progress,
) -> Result<(figure::Figure, Provenance)> {
    let seed = args.target.seed;
    let named = super::select::named(session, &args.scoring, &args.neurons)?;
    // Neurons named by hand: one cluster, all of them.
    let ks = match &named {
        Some(Selection::ByHand(ids)) => vec![ids.len()],
        _ => args.ks.clone(),
    };
    let query = args.scoring.query(session.dataset(), seed, named.unwrap_or_default())?;
    let base =
        InterventionSpec::neurons(epoch).seed(seed).query(query).on(args.target.split).repeats(args.repeats);
    let interventions = args.kinds.iter().map(|k| k.intervention(None, false, None)).collect();
    let spec = GridSpec::new(base, interventions, ks);
    let grid = grid::run(session, &spec, progress)?;
    let provenance = Provenance::new(session.experiment(), &session.dataset().changes, epoch, &spec.base)?;
    Ok((Figure::Bars(grid), provenance))
}

pub fn run(args: FigureArgs, device: &Device, data: &DataFlags) -> Result<()> {
    let (kind, out) = match &args.kind {
        FigureKind::Bars(a) => ("bars", &a.out),
        FigureKind::Ranks { out, .. } => ("ranks", out),
        FigureKind::Sensitivity { out, .. } => ("sensitivity", out),
        FigureKind::Timeline(a) => ("timeline", &a.out),
        FigureKind::Mitigation(a) => ("mitigation", &a.out),
        FigureKind::Diagnostics(a) => ("diagnostics", &a.out),
        FigureKind::Sweep(a) => ("sweep", &a.out),
        FigureKind::Epochs(a) => ("epochs", &a.out),
    };
    // Refuse a wrong extension before any computing.
    ImageFormat::of(&out.out)?;
    let (figure, provenance) = match &out.from {
        Some(path) => {
            let bytes = read_regular(path, "result", 256 << 20)?;
            let Ok(text) = String::from_utf8(bytes) else { bail!("{}: not UTF-8 text", path.display()) };
            (Figure::from_json(kind, &text, path)?, Figure::provenance_in(&text))
        }
        None => {
            let (figure, provenance) = compute(&args.kind, device, data)?;
            (figure, Some(provenance))
        }
    };
    if let (Some(json), Some(provenance)) = (&out.json, &provenance) {
        write_output(json, figure.json(provenance)?.as_bytes())?;
    }
    figure::write(&out.out, &figure, provenance.as_ref())
}

fn compute(kind: &FigureKind, device: &Device, data: &DataFlags) -> Result<(Figure, Provenance)> {
    Ok(match kind {
        FigureKind::Bars(args) => {
            let (mut session, epoch) = args.settings.target.open(device, data)?;
            bars(&mut session, epoch, &args.settings, &mut Bar::new("interventions"))?
        }
        FigureKind::Ranks { settings, .. } => {
            let (study, provenance) = settings.run(device, data)?;
            (Figure::Ranks(study), provenance)
        }
        FigureKind::Sensitivity { settings, .. } => {
            let (study, provenance) = settings.run(device, data)?;
            (Figure::Sensitivity(study), provenance)
        }
        FigureKind::Timeline(args) => {
            let (experiment, dataset) =
                super::open_experiment(args.experiment.clone(), &data.options(&args.subset))?;
            let mut session = Session::new(experiment, dataset, device.clone())?;
            let spec = TimelineSpec::every_epoch(session.experiment(), args.split);
            let t = timeline::run(&mut session, &spec, &mut Bar::new("timeline (epochs)"))?;
            let last = session.experiment().last_epoch();
            let provenance = Provenance::new(session.experiment(), &session.dataset().changes, last, &spec)?;
            (Figure::Timeline(t), provenance)
        }
        FigureKind::Mitigation(args) => {
            let runs = open_runs(&args.experiments)?;
            let experiments: Vec<Experiment> = runs.into_iter().flat_map(|r| r.experiments).collect();
            let curves = timeline::mitigation_curves(&experiments)?;
            (Figure::Mitigation(curves), runs_provenance(&experiments)?)
        }
        FigureKind::Diagnostics(args) => {
            let runs = open_runs(&args.experiments)?;
            let curves = diagnostics::diagnostic_curves(&runs)?;
            let experiments: Vec<Experiment> = runs.into_iter().flat_map(|r| r.experiments).collect();
            (Figure::Diagnostics(curves), runs_provenance(&experiments)?)
        }
        FigureKind::Sweep(args) => {
            let (mut session, epoch) = args.target.open(device, data)?;
            let seed = args.target.seed;
            let selection = args.count.selection(&session, &args.scoring)?;
            let query = args.scoring.query(session.dataset(), seed, selection)?;
            let intervention = args.change.intervention()?;
            let base = InterventionSpec::neurons(epoch)
                .seed(seed)
                .query(query)
                .change(intervention)
                .on(args.target.split)
                .repeats(args.change.repeats);
            let spec = SweepSpec {
                random_control: args.count.random_control,
                ..SweepSpec::every_layer(base, session.layers())
            };
            let result = sweep::run(&mut session, &spec, &mut Bar::new("sweep (layers)"))?;
            let provenance = Provenance::new(session.experiment(), &session.dataset().changes, epoch, &spec)?;
            (Figure::Sweep(result), provenance)
        }
        FigureKind::Epochs(args) => {
            let (mut session, last) = args.target.open(device, data)?;
            let seed = args.target.seed;
            let selection = args.count.selection(&session, &args.scoring)?;
            let query = args.scoring.query(session.dataset(), seed, selection)?;
            let base = InterventionSpec::neurons(last)
                .seed(seed)
                .query(query)
                .change(args.change.intervention()?)
                .on(args.target.split)
                .repeats(args.change.repeats);
            let base = args.count.apply(base, &session)?;
            let spec = EpochSeriesSpec::every_epoch(base, session.experiment());
            let result = epochs::run(&mut session, &spec, &mut Bar::new("epoch series (epochs)"))?;
            let last = session.experiment().last_epoch();
            let provenance = Provenance::new(session.experiment(), &session.dataset().changes, last, &spec)?;
            (Figure::Epochs(result), provenance)
        }
    })
}

/// Each folder given, with the experiments it stands for (itself, or the seed-N experiments
/// inside it), opened.
fn open_runs(paths: &[PathBuf]) -> Result<Vec<RunFolder>> {
    let mut runs = Vec::new();
    for path in paths {
        let dirs = super::mitigate::expand(path)?;
        let experiments = dirs.iter().map(|d| Experiment::open(d)).collect::<Result<_>>()?;
        runs.push(RunFolder { given: path.display().to_string(), experiments });
    }
    Ok(runs)
}

/// The provenance of a figure of runs: the first experiment's last checkpoint, and every
/// experiment's folder as the settings.
fn runs_provenance(experiments: &[Experiment]) -> Result<Provenance> {
    let Some(first) = experiments.first() else { bail!("no experiments given") };
    let spec: Vec<String> = experiments.iter().map(|e| e.dir.display().to_string()).collect();
    Provenance::new(first, &Default::default(), first.last_epoch(), &spec)
}
