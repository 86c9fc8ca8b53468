//! `memscope mitigate` (a mitigation or baseline from an experiment's checkpoint, written
//! as a new experiment) and `memscope compare` (several such experiments side by side).

use std::path::PathBuf;

use anyhow::{Result, bail, ensure};
use burn::prelude::*;

use super::DataFlags;
use super::args::{self, SubsetArgs};
use super::output::OutputArgs;
use super::progress::Bar;
use super::train::EpochPrinter;
use memscope_core::data::augment::Augment;
use memscope_core::experiment::lineage::{
    Critical, Dfr, Features, GroupDro, Jtt, LabelUse, Method, SilentMajority, Variant,
};
use memscope_core::experiment::{Experiment, Schedule};
use memscope_core::mitigate::compare::compare;
use memscope_core::mitigate::{MitigationPlan, dfr, mitigate, released_training};
use memscope_core::neurons::Granularity;
use memscope_core::neurons::scores::Sampling;
use memscope_core::render::Provenance;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MethodArg {
    SilentMajority,
    Erm,
    Jtt,
    GroupDro,
    Dfr,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum VariantArg {
    Code,
    Paper,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum FeaturesArg {
    Probs,
    Logits,
    Penultimate,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum CriticalArg {
    Gradient,
    Magnitude,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ScheduleArg {
    Plateau,
    Constant,
}

#[derive(clap::Args, Debug)]
pub struct MitigateArgs {
    /// The parent experiment (default: the bundled demo). It is read, never changed.
    #[arg(long)]
    pub experiment: Option<PathBuf>,
    /// The parent's checkpoint to start from (default: its last epoch).
    #[arg(long, allow_negative_numbers = true, value_parser = args::count)]
    pub epoch: Option<usize>,
    /// silent-majority (the paper's mitigation; no group labels), erm (more ERM: the control),
    /// jtt (no group labels in training), group-dro (train group labels), dfr (val group labels).
    #[arg(long, value_enum, default_value = "silent-majority")]
    pub method: MethodArg,
    /// Folder of the new experiment; with several --seeds, a folder holding seed-N/ for each.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing experiment at --out (never the parent).
    #[arg(long)]
    pub force: bool,
    /// Seeds to run, e.g. 0,1,2: one experiment each (the seed drives batch order,
    /// augmentation, sampling and DFR's subsets).
    #[arg(long, value_delimiter = ',', default_value = "0", value_parser = args::seed)]
    pub seeds: Vec<u64>,

    /// silent-majority: code (as released: each epoch the 1% smallest-|w| conv weights masked,
    /// NT-Xent both ways with a stop-gradient + 0.2 x cross-entropy on the logits; the release
    /// applies it to softmax outputs, a second softmax) or paper (the slides: critical neurons
    /// of the start checkpoint pruned, NT-Xent(full, pruned) + λ·MSE(softmax, one-hot)).
    #[arg(long, value_enum, default_value = "code")]
    pub variant: VariantArg,
    /// What NT-Xent compares: probs (the released code), logits, penultimate. Default: probs
    /// for code, penultimate (the slides' "features") for paper.
    #[arg(long, value_enum)]
    pub features: Option<FeaturesArg>,
    /// τ of NT-Xent (released: 0.5).
    #[arg(long, default_value_t = 0.5, value_parser = positive_number)]
    pub temperature: f64,
    /// λ on the supervised term (released: 0.2).
    #[arg(long, default_value_t = 0.2, allow_negative_numbers = true, value_parser = args::non_negative)]
    pub lambda: f64,
    /// code: fraction of conv weights masked (released: 0.01); paper: fraction of conv
    /// neurons pruned (the slides' 0.01% = 0.0001; at least one).
    #[arg(long, value_parser = args::fraction)]
    pub fraction: Option<f64>,
    /// paper: how critical neurons are found: gradient (label-free high-loss sampling on
    /// train) or magnitude.
    #[arg(long, value_enum, default_value = "gradient")]
    pub critical: CriticalArg,
    /// paper, --critical gradient: which training examples (the slides: high-loss:256:128).
    #[arg(long, default_value = "high-loss:256:128")]
    pub sampling: Sampling,
    /// paper: what a neuron is (unit = a conv filter, as every other command).
    #[arg(long, default_value = "unit")]
    pub granularity: Granularity,

    /// jtt: the parent's epoch whose training errors are upweighted, T (SpuCo's default 1;
    /// JTT used 60 of 300 on Waterbirds, 1 of 50 on CelebA).
    #[arg(long, default_value_t = 1, allow_negative_numbers = true, value_parser = args::count)]
    pub jtt_epoch: usize,
    /// jtt: λ_up, extra copies of each error per epoch (JTT's Waterbirds and SpuCo's default 100).
    #[arg(long, default_value_t = 100, allow_negative_numbers = true, value_parser = args::count)]
    pub upweight: usize,

    /// group-dro: η, the step size of the group weights (reference: 0.01).
    #[arg(long, default_value_t = 0.01, allow_negative_numbers = true, value_parser = args::non_negative)]
    pub step_size: f64,
    /// group-dro: C of the generalization adjustment C/√n_g (reference commands: 0).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true, value_parser = args::non_negative)]
    pub adjustment: f64,
    /// group-dro: draw batches uniformly over examples instead of group-balanced
    /// (the reference commands balance: --reweight_groups).
    #[arg(long)]
    pub no_reweight_groups: bool,

    /// dfr: values of C tried (reference: 1,0.7,0.3,0.1,0.07,0.03,0.01).
    #[arg(long, value_delimiter = ',', value_parser = positive_number)]
    pub c_grid: Vec<f64>,
    /// dfr: balanced refits averaged (reference: 20).
    #[arg(long, default_value_t = dfr::RETRAINS, allow_negative_numbers = true, value_parser = args::positive)]
    pub retrains: usize,

    /// Fine-tuning (every method but dfr): see the options below for the defaults.
    #[command(flatten)]
    pub fit: args::FitArgs,
    /// plateau (released: x0.5 after more than 1 epoch without a lower loss) or constant.
    #[arg(long, value_enum, default_value = "plateau")]
    pub schedule: ScheduleArg,
    /// Train on the images as they are (default: random resized crop 0.7-1 and flip, released).
    #[arg(long)]
    pub no_augment: bool,
    #[command(flatten)]
    pub subset: SubsetArgs,
}

/// A finite number > 0.
fn positive_number(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err("must be a number > 0".into()),
    }
}

impl MitigateArgs {
    fn method(&self) -> Method {
        match self.method {
            MethodArg::SilentMajority => {
                let variant = match self.variant {
                    VariantArg::Code => Variant::Code,
                    VariantArg::Paper => Variant::Paper,
                };
                let features = match (self.features, variant) {
                    (Some(FeaturesArg::Probs), _) | (None, Variant::Code) => Features::Probs,
                    (Some(FeaturesArg::Logits), _) => Features::Logits,
                    (Some(FeaturesArg::Penultimate), _) | (None, Variant::Paper) => Features::Penultimate,
                };
                Method::SilentMajority(SilentMajority {
                    variant,
                    features,
                    temperature: self.temperature,
                    lambda: self.lambda,
                    fraction: self.fraction.unwrap_or(match variant {
                        Variant::Code => 0.01,
                        Variant::Paper => 0.0001,
                    }),
                    critical: match self.critical {
                        CriticalArg::Gradient => Critical::Gradient(self.sampling),
                        CriticalArg::Magnitude => Critical::Magnitude,
                    },
                    granularity: self.granularity,
                })
            }
            MethodArg::Erm => Method::Erm,
            MethodArg::Jtt => {
                Method::Jtt(Jtt { identification_epoch: self.jtt_epoch, upweight: self.upweight, errors: 0 })
            }
            MethodArg::GroupDro => Method::GroupDro(GroupDro {
                step_size: self.step_size,
                adjustment: self.adjustment,
                reweight_groups: !self.no_reweight_groups,
            }),
            MethodArg::Dfr => Method::Dfr(Dfr {
                c_grid: if self.c_grid.is_empty() { dfr::C_GRID.to_vec() } else { self.c_grid.clone() },
                c: 0.0,
                retrains: self.retrains,
                per_group: 0,
            }),
        }
    }

    fn plan(&self, seed: u64) -> MitigationPlan {
        let mut t = released_training(seed);
        self.fit.apply(&mut t);
        if let ScheduleArg::Constant = self.schedule {
            t.schedule = Schedule::Constant;
        }
        if self.no_augment {
            t.augment = Augment::None;
        }
        MitigationPlan { method: self.method(), start_epoch: self.epoch, training: t, name: None }
    }
}

pub fn run_mitigate(args: MitigateArgs, device: &Device, data: &DataFlags) -> Result<()> {
    ensure!(!args.seeds.is_empty(), "--seeds names no seed");
    let mut seen = args.seeds.clone();
    seen.sort_unstable();
    seen.dedup();
    ensure!(seen.len() == args.seeds.len(), "--seeds lists a seed twice");
    if args.method != MethodArg::SilentMajority
        && (args.features.is_some() || args.fraction.is_some() || !matches!(args.variant, VariantArg::Code))
    {
        bail!("--variant, --features and --fraction apply to --method silent-majority only");
    }
    let (parent, dataset) = super::open_experiment(args.experiment.clone(), &data.options(&args.subset))?;
    memscope_core::mitigate::check_destination(&parent, &args.out)?;
    for &seed in &args.seeds {
        let out =
            if args.seeds.len() == 1 { args.out.clone() } else { args.out.join(format!("seed-{seed}")) };
        if args.seeds.len() > 1 {
            std::fs::create_dir_all(&args.out)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", args.out.display()))?;
        }
        memscope_core::mitigate::check_destination(&parent, &out)?;
        let plan = args.plan(seed);
        plan.training.validate()?;
        parent.checkpoint(plan.start_epoch.unwrap_or_else(|| parent.last_epoch()))?;
        if let Method::Jtt(jtt) = &plan.method {
            parent.checkpoint(jtt.identification_epoch).map_err(|e| anyhow::anyhow!("--jtt-epoch: {e}"))?;
        }
        let labels = plan.method.labels();
        eprintln!(
            "{} from {} epoch {}, seed {seed} -> {}",
            plan.method.label(),
            parent.dir.display(),
            plan.start_epoch.unwrap_or_else(|| parent.last_epoch()),
            out.display()
        );
        let epochs = if matches!(plan.method, Method::Dfr(_)) { 1 } else { plan.training.epochs };
        let printer = EpochPrinter::new(epochs);
        let experiment = mitigate(
            &parent,
            &dataset,
            &plan,
            &out,
            args.force,
            device,
            &mut |p| printer.report(p),
            &mut memscope_core::jobs::Silent,
        )?;
        printer.finish();
        let used = match labels {
            LabelUse::None => "no group labels were used in training".to_string(),
            other => format!("group labels used: {other}"),
        };
        let found = match experiment.manifest.lineage.as_ref().map(|l| &l.method) {
            Some(Method::Jtt(j)) => {
                format!("; error set: {} training examples at epoch {}", j.errors, j.identification_epoch)
            }
            Some(Method::Dfr(d)) => format!("; C = {} chosen, {} per group in each refit", d.c, d.per_group),
            _ => String::new(),
        };
        eprintln!(
            "wrote {} ({} checkpoints; {used}{found})",
            experiment.dir.display(),
            experiment.manifest.checkpoints.len()
        );
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// Experiment folders: a parent and its mitigations; runs of one method (several seeds)
    /// are pooled as mean ± std. A folder that holds seed-N/ experiments stands for them all.
    #[arg(required = true)]
    pub experiments: Vec<PathBuf>,
    #[command(flatten)]
    pub subset: SubsetArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// The experiments `path` stands for: itself, or the seed-N experiments inside it.
pub(super) fn expand(path: &PathBuf) -> Result<Vec<PathBuf>> {
    if path.join(memscope_core::experiment::MANIFEST).exists() {
        return Ok(vec![path.clone()]);
    }
    ensure!(path.is_dir(), "experiment folder {} does not exist", path.display());
    let mut found: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("seed-"))
                && p.join(memscope_core::experiment::MANIFEST).exists()
        })
        .collect();
    found.sort();
    ensure!(
        !found.is_empty(),
        "{} is not an experiment folder and holds no seed-N experiments",
        path.display()
    );
    Ok(found)
}

pub fn run_compare(args: CompareArgs, device: &Device, data: &DataFlags) -> Result<()> {
    let mut dirs = Vec::new();
    for path in &args.experiments {
        dirs.extend(expand(path)?);
    }
    let experiments: Vec<Experiment> = dirs.iter().map(|d| Experiment::open(d)).collect::<Result<_>>()?;
    let dataset = experiments[0].manifest.dataset.open(&experiments[0].dir, &data.options(&args.subset))?;
    let result = compare(&experiments, &dataset, device, &mut Bar::new("compare (experiments)"))?;
    let spec: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    let first = &experiments[0];
    args.output.emit(&result, &Provenance::new(first, &dataset.changes, first.last_epoch(), &spec)?)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use memscope_core::mitigate::default_methods;

    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        mitigate: MitigateArgs,
    }

    #[test]
    fn the_engine_defaults_are_the_command_line_defaults() {
        let parsed = |extra: &[&str]| {
            let mut argv = vec!["memscope", "--out", "x"];
            argv.extend_from_slice(extra);
            Args::try_parse_from(argv).unwrap().mitigate.method()
        };
        let methods = [
            parsed(&["--method", "silent-majority", "--variant", "code"]),
            parsed(&["--method", "silent-majority", "--variant", "paper"]),
            parsed(&["--method", "erm"]),
            parsed(&["--method", "jtt"]),
            parsed(&["--method", "group-dro"]),
            parsed(&["--method", "dfr"]),
        ];
        assert_eq!(default_methods(), methods);
    }
}
