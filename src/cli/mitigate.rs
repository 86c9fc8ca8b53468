//! `memscope mitigate` (a mitigation or baseline from an experiment's checkpoint, written
//! as a new experiment) and `memscope compare` (several such experiments side by side).

use std::path::{Path, PathBuf};

use anyhow::{Result, bail, ensure};
use burn::prelude::*;
use clap::builder::{PossibleValuesParser, TypedValueParser};

use super::DataFlags;
use super::args::{self, SubsetArgs};
use super::output::OutputArgs;
use super::progress::Bar;
use super::train::EpochPrinter;
use memscope_core::data::augment::Augment;
use memscope_core::data::{DatasetSpec, GroupedDataset};
use memscope_core::experiment::lineage::{
    Critical, Dfr, Features, GroupDro, Jtt, LabelUse, Method, SilentMajority, Variant,
};
use memscope_core::experiment::{CrossEntropyOn, Experiment, Schedule, TrainSettings};
use memscope_core::mitigate::compare::compare;
use memscope_core::mitigate::method::{self, METHODS, MethodInfo};
use memscope_core::mitigate::{MitigationPlan, MitigationRun, mitigate, released_training, silent_majority};
use memscope_core::neurons::Granularity;
use memscope_core::neurons::scores::Sampling;
use memscope_core::render::Provenance;
use memscope_core::util::rng::DEFAULT_SEED;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum VariantArg {
    Code,
    Paper,
}

impl From<VariantArg> for Variant {
    fn from(v: VariantArg) -> Self {
        match v {
            VariantArg::Code => Variant::Code,
            VariantArg::Paper => Variant::Paper,
        }
    }
}

impl From<Variant> for VariantArg {
    fn from(v: Variant) -> Self {
        match v {
            Variant::Code => VariantArg::Code,
            Variant::Paper => VariantArg::Paper,
        }
    }
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum FeaturesArg {
    Probs,
    Logits,
    Penultimate,
}

impl From<FeaturesArg> for Features {
    fn from(f: FeaturesArg) -> Self {
        match f {
            FeaturesArg::Probs => Features::Probs,
            FeaturesArg::Logits => Features::Logits,
            FeaturesArg::Penultimate => Features::Penultimate,
        }
    }
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum CriticalArg {
    Gradient,
    Magnitude,
}

impl From<&Critical> for CriticalArg {
    fn from(c: &Critical) -> Self {
        match c {
            Critical::Gradient(_) => CriticalArg::Gradient,
            Critical::Magnitude => CriticalArg::Magnitude,
        }
    }
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum CeOnArg {
    Softmax,
    Logits,
}

impl From<CeOnArg> for CrossEntropyOn {
    fn from(c: CeOnArg) -> Self {
        match c {
            CeOnArg::Softmax => CrossEntropyOn::Softmax,
            CeOnArg::Logits => CrossEntropyOn::Logits,
        }
    }
}

impl From<CrossEntropyOn> for CeOnArg {
    fn from(c: CrossEntropyOn) -> Self {
        match c {
            CrossEntropyOn::Softmax => CeOnArg::Softmax,
            CrossEntropyOn::Logits => CeOnArg::Logits,
        }
    }
}

/// `--augment`: the release's crop (scale 0.7-1, ratio 3/4-4/3), with or without its flip.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum AugmentArg {
    None,
    Crop,
    CropFlip,
}

impl From<AugmentArg> for Augment {
    fn from(a: AugmentArg) -> Self {
        let released = Augment::released();
        match (a, released) {
            (AugmentArg::None, _) => Augment::None,
            (AugmentArg::CropFlip, released) => released,
            (AugmentArg::Crop, Augment::CropFlip { scale, ratio, .. }) => {
                Augment::CropFlip { scale, ratio, flip: false }
            }
            (AugmentArg::Crop, Augment::None) => Augment::None,
        }
    }
}

/// The released fine-tuning (its defaults, whatever the data set).
fn released() -> TrainSettings {
    released_training(&DatasetSpec::default(), DEFAULT_SEED)
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ScheduleArg {
    Plateau,
    Constant,
}

impl From<&Schedule> for ScheduleArg {
    fn from(s: &Schedule) -> Self {
        match s {
            Schedule::Plateau { .. } => ScheduleArg::Plateau,
            Schedule::Constant => ScheduleArg::Constant,
        }
    }
}

/// `--method`: one of the engine's methods, by name.
fn method_parser() -> impl TypedValueParser<Value = &'static MethodInfo> {
    PossibleValuesParser::new(METHODS.map(|m| m.name))
        .try_map(|name| method::find(&name).ok_or("not a method"))
}

/// `--method`'s help: each method's name and what it is.
fn method_help() -> String {
    METHODS.iter().map(|m| format!("{} ({})", m.name, m.about)).collect::<Vec<_>>().join(", ")
}

/// Where the fine-tuning defaults apply: the methods that fine-tune (from the released
/// settings, [`MitigationPlan::released`]), and those that ignore them.
fn fit_whose() -> String {
    let (tuning, not): (Vec<_>, Vec<_>) =
        METHODS.iter().partition(|m| m.defaults().mitigation().fine_tunes());
    let names = |ms: &[&&MethodInfo]| ms.iter().map(|m| m.name).collect::<Vec<_>>().join(", ");
    let mut whose = format!(" for --method {}, as released", names(&tuning));
    if !not.is_empty() {
        whose += &format!("; {} does not fine-tune and ignores it", names(&not));
    }
    whose
}

#[derive(clap::Args, Debug)]
#[command(mut_args(|arg| args::describe_fit(arg, &MitigationPlan::default().training, &fit_whose())))]
pub struct MitigateArgs {
    /// The parent experiment (default: the bundled demo). It is read, never changed.
    #[arg(long)]
    pub experiment: Option<PathBuf>,
    /// The parent's checkpoint to start from (default: its last epoch).
    #[arg(long, allow_negative_numbers = true, value_parser = args::count)]
    pub epoch: Option<usize>,
    #[arg(long, help = method_help(), default_value = METHODS[0].name, value_parser = method_parser())]
    pub method: &'static MethodInfo,
    /// Folder of the new experiment; with several --seeds, a folder holding seed-N/ for each.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing experiment at --out (never the parent).
    #[arg(long)]
    pub force: bool,
    /// Seeds to run, e.g. 0,1,2: one experiment each (the seed drives batch order,
    /// augmentation, sampling and DFR's subsets).
    #[arg(long, value_delimiter = ',', default_values_t = [DEFAULT_SEED], value_parser = args::seed)]
    pub seeds: Vec<u64>,

    /// silent-majority: code (as released: each epoch the 1% smallest-|w| prunable weights
    /// masked, a ResNet's convs or a ViT's block Linears, NT-Xent both ways with a
    /// stop-gradient + 0.2 x cross-entropy, see --ce-on) or paper (memscope's reading of the
    /// slides, not the authors' code: critical neurons of the start checkpoint pruned,
    /// NT-Xent(full, pruned) + λ·MSE(softmax, one-hot)).
    #[arg(long, value_enum, default_value_t = VariantArg::from(SilentMajority::default().variant))]
    pub variant: VariantArg,
    /// What NT-Xent compares: probs (the released code), logits, penultimate. Default: probs
    /// for code, penultimate (the slides' "features") for paper.
    #[arg(long, value_enum)]
    pub features: Option<FeaturesArg>,
    /// τ of NT-Xent (released: 0.5).
    #[arg(long, default_value_t = SilentMajority::default().temperature, value_parser = positive_number)]
    pub temperature: f64,
    /// λ on the supervised term (released: 0.2).
    #[arg(long, default_value_t = SilentMajority::default().lambda, allow_negative_numbers = true,
          value_parser = args::non_negative)]
    pub lambda: f64,
    /// code: fraction of the prunable weights masked (released: 0.01; 0 masks nothing, the
    /// mask ablation: the masked pass is the dense pass); paper: fraction of conv neurons
    /// pruned (the slides' 0.01% = 0.0001; at least one).
    #[arg(long, visible_alias = "prune-fraction", value_parser = prune_fraction)]
    pub fraction: Option<f64>,
    /// paper: how critical neurons are found: gradient (label-free high-loss sampling on
    /// train) or magnitude.
    #[arg(long, value_enum, default_value_t = CriticalArg::from(&SilentMajority::paper().critical))]
    pub critical: CriticalArg,
    /// paper, --critical gradient: which training examples (the slides: high-loss:256:128).
    #[arg(long, default_value_t = Sampling::LABEL_FREE)]
    pub sampling: Sampling,
    /// paper: what a neuron is: unit (a conv filter, as every other command), kernel, or
    /// weight (then --fraction is a fraction of conv weights: at the demo's size 0.01% of
    /// units rounds up to one whole filter of 336).
    #[arg(long, default_value_t = SilentMajority::paper().granularity)]
    pub granularity: Granularity,

    /// jtt: the parent's epoch whose training errors are upweighted, T (SpuCo's default 1;
    /// JTT used 60 of 300 on Waterbirds, 1 of 50 on CelebA).
    #[arg(long, default_value_t = Jtt::default().identification_epoch, allow_negative_numbers = true,
          value_parser = args::count)]
    pub jtt_epoch: usize,
    /// jtt: λ_up, extra copies of each error per epoch (JTT's Waterbirds and SpuCo's default 100).
    #[arg(long, default_value_t = Jtt::default().upweight, allow_negative_numbers = true,
          value_parser = args::count)]
    pub upweight: usize,

    /// group-dro: η, the step size of the group weights (reference: 0.01).
    #[arg(long, default_value_t = GroupDro::default().step_size, allow_negative_numbers = true,
          value_parser = args::non_negative)]
    pub step_size: f64,
    /// group-dro: C of the generalization adjustment C/√n_g (reference commands: 0).
    #[arg(long, default_value_t = GroupDro::default().adjustment, allow_negative_numbers = true,
          value_parser = args::non_negative)]
    pub adjustment: f64,
    /// group-dro: draw batches uniformly over examples instead of group-balanced
    /// (the reference commands balance: --reweight_groups).
    #[arg(long)]
    pub no_reweight_groups: bool,

    /// dfr: values of C tried (reference: 1,0.7,0.3,0.1,0.07,0.03,0.01).
    #[arg(long, value_delimiter = ',', value_parser = positive_number)]
    pub c_grid: Vec<f64>,
    /// dfr: balanced refits averaged (reference: 20).
    #[arg(long, default_value_t = Dfr::default().retrains, allow_negative_numbers = true,
          value_parser = args::positive)]
    pub retrains: usize,

    /// Fine-tuning (every method but dfr): see the options below for the defaults.
    #[command(flatten)]
    pub fit: args::FitArgs,
    /// plateau (released: x0.5 after more than 1 epoch without a lower loss) or constant.
    #[arg(long, value_enum, default_value_t = ScheduleArg::from(&released().schedule))]
    pub schedule: ScheduleArg,
    /// Adam's ε (released: PyTorch's 1e-8; `memscope train` uses burn's 1e-5).
    #[arg(long, default_value_t = released().adam_epsilon, value_parser = positive_number)]
    pub adam_eps: f64,
    /// What the supervised cross-entropy reads: softmax (released: the head ends in a
    /// softmax, so the loss applies a second one) or logits.
    #[arg(long, value_enum, default_value_t = CeOnArg::from(released().ce_on))]
    pub ce_on: CeOnArg,
    /// Augmentation of every training batch: crop (random resized crop, scale 0.7-1),
    /// crop-flip (and a horizontal flip) or none. Default: the data set's policy, the
    /// release's crop-flip, crop alone on the digits (a mirrored digit is not that digit).
    #[arg(long, value_enum, conflicts_with = "no_augment")]
    pub augment: Option<AugmentArg>,
    /// Train on the images as they are (the same as --augment none).
    #[arg(long)]
    pub no_augment: bool,
    /// Evaluate the train split after every epoch (the default, as the release does: the
    /// record's per-group train accuracies).
    #[arg(long, overrides_with = "no_eval_train")]
    pub eval_train: bool,
    /// Record val only after each epoch (faster; the train accuracies are left empty).
    #[arg(long, overrides_with = "eval_train")]
    pub no_eval_train: bool,
    #[command(flatten)]
    pub subset: SubsetArgs,
}

/// A fraction in [0, 1] (0: the code variant's mask ablation).
fn prune_fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(q) if (0.0..=1.0).contains(&q) => Ok(q),
        _ => Err("must be in [0, 1] (0: nothing masked, --variant code only)".into()),
    }
}

/// A finite number > 0.
fn positive_number(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err("must be a number > 0".into()),
    }
}

impl MitigateArgs {
    /// The method's default settings with every option given for it.
    fn method(&self) -> Method {
        let mut method = self.method.defaults();
        match &mut method {
            Method::SilentMajority(sm) => *sm = self.silent_majority(),
            Method::Jtt(jtt) => {
                jtt.identification_epoch = self.jtt_epoch;
                jtt.upweight = self.upweight;
            }
            Method::GroupDro(dro) => {
                dro.step_size = self.step_size;
                dro.adjustment = self.adjustment;
                dro.reweight_groups = !self.no_reweight_groups;
            }
            Method::Dfr(dfr) => {
                if !self.c_grid.is_empty() {
                    dfr.c_grid = self.c_grid.clone();
                }
                dfr.retrains = self.retrains;
            }
            // Methods without options of their own (erm).
            _ => {}
        }
        method
    }

    /// The variant's settings (the released code's or the slides') with the options given.
    fn silent_majority(&self) -> SilentMajority {
        let mut sm = SilentMajority::of(self.variant.into());
        if let Some(features) = self.features {
            sm.features = features.into();
        }
        if let Some(fraction) = self.fraction {
            sm.fraction = fraction;
        }
        sm.temperature = self.temperature;
        sm.lambda = self.lambda;
        sm.critical = match self.critical {
            CriticalArg::Gradient => Critical::Gradient(self.sampling),
            CriticalArg::Magnitude => Critical::Magnitude,
        };
        sm.granularity = self.granularity;
        sm
    }

    /// The run of `seed` from a parent trained on `dataset`.
    fn plan(&self, dataset: &DatasetSpec, seed: u64) -> MitigationPlan {
        let mut plan = MitigationPlan::released(self.method(), dataset, seed);
        plan.start_epoch = self.epoch;
        self.fit.apply(&mut plan.training);
        if let ScheduleArg::Constant = self.schedule {
            plan.training.schedule = Schedule::Constant;
        }
        plan.training.adam_epsilon = self.adam_eps;
        plan.training.ce_on = self.ce_on.into();
        if let Some(augment) = self.augment {
            plan.training.augment = augment.into();
        }
        if self.no_augment {
            plan.training.augment = Augment::None;
        }
        plan.eval_train = !self.no_eval_train;
        plan
    }

    /// Refuses seeds named twice or none, and options of another method.
    fn check(&self) -> Result<()> {
        ensure!(!self.seeds.is_empty(), "--seeds names no seed");
        let mut seen = self.seeds.clone();
        seen.sort_unstable();
        seen.dedup();
        ensure!(seen.len() == self.seeds.len(), "--seeds lists a seed twice");
        if self.method.name != silent_majority::INFO.name
            && (self.features.is_some()
                || self.fraction.is_some()
                || !matches!(self.variant, VariantArg::Code))
        {
            bail!("--variant, --features and --fraction apply to --method silent-majority only");
        }
        if self.fraction == Some(0.0) && !matches!(self.variant, VariantArg::Code) {
            bail!("--fraction 0 (nothing masked, the mask ablation) applies to --variant code only");
        }
        Ok(())
    }

    /// Where the run of `seed` goes: --out, or seed-N inside it for several seeds.
    fn out(&self, seed: u64) -> Result<PathBuf> {
        if self.seeds.len() == 1 {
            return Ok(self.out.clone());
        }
        std::fs::create_dir_all(&self.out)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", self.out.display()))?;
        Ok(self.out.join(format!("seed-{seed}")))
    }
}

pub fn run_mitigate(args: MitigateArgs, device: &Device, data: &DataFlags) -> Result<()> {
    args.check()?;
    let (parent, dataset) = super::open_experiment(args.experiment.clone(), &data.options(&args.subset))?;
    memscope_core::mitigate::check_destination(&parent, &args.out)?;
    for &seed in &args.seeds {
        let out = args.out(seed)?;
        memscope_core::mitigate::check_destination(&parent, &out)?;
        let plan = args.plan(&parent.manifest.dataset, seed);
        run_one(&parent, &dataset, &plan, &out, args.force, device)?;
    }
    Ok(())
}

/// Runs `plan`, saying on stderr what runs, each epoch, and what was written and found.
fn run_one(
    parent: &Experiment,
    dataset: &GroupedDataset,
    plan: &MitigationPlan,
    out: &Path,
    overwrite: bool,
    device: &Device,
) -> Result<()> {
    plan.training.validate()?;
    let start = plan.start_epoch.unwrap_or_else(|| parent.last_epoch());
    parent.checkpoint(start)?;
    if let Method::Jtt(jtt) = &plan.method {
        parent.checkpoint(jtt.identification_epoch).map_err(|e| anyhow::anyhow!("--jtt-epoch: {e}"))?;
    }
    let seed = plan.training.seed;
    eprintln!(
        "{} from {} epoch {start}, seed {seed} -> {}",
        plan.method.label(),
        parent.dir.display(),
        out.display()
    );
    let printer = EpochPrinter::new(plan.method.epochs(&plan.training));
    let experiment = mitigate(MitigationRun {
        parent,
        dataset,
        plan,
        out,
        overwrite,
        device,
        on_epoch: &mut |p| printer.report(p),
        progress: &mut memscope_core::jobs::Silent,
    })?;
    printer.finish();
    let used = match plan.method.labels() {
        LabelUse::None => "no group labels were used in training".to_string(),
        other => format!("group labels used: {other}"),
    };
    let found = experiment
        .manifest
        .lineage
        .as_ref()
        .and_then(|l| l.method.mitigation().found())
        .map(|f| format!("; {f}"))
        .unwrap_or_default();
    eprintln!(
        "wrote {} ({} checkpoints; {used}{found})",
        experiment.dir.display(),
        experiment.manifest.checkpoints.len()
    );
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
        let names: Vec<&str> = METHODS.iter().map(|m| m.name).collect();
        assert_eq!(names, ["silent-majority", "erm", "jtt", "group-dro", "dfr"]);
    }
}
