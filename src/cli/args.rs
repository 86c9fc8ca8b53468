//! Typed command-line values: clap parses each option into these (or an engine type) once,
//! so no command sees a string. A range check fails with a message that starts "must";
//! `cli::run` then names the option and value: "--fraction -0.1 must be in (0, 1]".

use std::fmt;
use std::str::FromStr;

use anyhow::{Result, bail};

use memscope_core::data::folder::{CelebaAttributes, Layout, Transform};
use memscope_core::data::{DatasetSpec, GroupedDataset};
use memscope_core::edit::{DEFAULT_EPOCHS_BACK, DEFAULT_NOISE_SIGMA, DEFAULT_REINIT_SIGMA, Intervention};
use memscope_core::experiment::SGD_MOMENTUM;
use memscope_core::neurons::scores::Criterion;
use memscope_core::util::rng::DEFAULT_SEED;

/// A whole number >= 0 (also read when negative, to be refused with a clear message).
pub fn count(text: &str) -> Result<usize, String> {
    match text.parse::<i128>() {
        Ok(n) if n >= 0 => usize::try_from(n).map_err(|_| "must be a smaller number".into()),
        _ => Err("must be a whole number >= 0".into()),
    }
}

/// A whole number >= 1.
pub fn positive(text: &str) -> Result<usize, String> {
    match count(text) {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("must be at least 1".into()),
    }
}

/// A seed: a whole number in 0..=2^64-1.
pub fn seed(text: &str) -> Result<u64, String> {
    text.parse::<u64>().map_err(|_| "must be a whole number in 0..=18446744073709551615".into())
}

/// A libtorch thread count, 0 (libtorch's default) to 1024.
pub fn threads(text: &str) -> Result<usize, String> {
    match count(text) {
        Ok(n) if n <= 1024 => Ok(n),
        _ => Err("must be in 0..=1024 (0: one per core)".into()),
    }
}

/// Runs of a random intervention, 1 to 1000.
pub fn repeats(text: &str) -> Result<usize, String> {
    match count(text) {
        Ok(n) if (1..=1000).contains(&n) => Ok(n),
        _ => Err("must be in 1..=1000".into()),
    }
}

/// A fraction q in (0, 1].
pub fn fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(q) if q.is_finite() && q > 0.0 && q <= 1.0 => Ok(q),
        _ => Err("must be in (0, 1]".into()),
    }
}

/// The side of square images, 1 to 4096 pixels.
pub fn image_size(text: &str) -> Result<usize, String> {
    match count(text) {
        Ok(n) if (1..=4096).contains(&n) => Ok(n),
        _ => Err("must be in 1..=4096 (pixels on a side; 224 for ImageNet-sized models)".into()),
    }
}

/// CelebA's `TARGET,SPURIOUS` attribute columns.
pub fn attributes(text: &str) -> Result<CelebaAttributes, String> {
    match text.split(',').map(str::trim).collect::<Vec<_>>()[..] {
        [target, spurious] if !target.is_empty() && !spurious.is_empty() && target != spurious => {
            Ok(CelebaAttributes { target: target.into(), spurious: spurious.into() })
        }
        _ => Err("must be two different attribute columns, TARGET,SPURIOUS (e.g. Blond_Hair,Male)".into()),
    }
}

/// An evaluation transform: a preset, `key=value` items, or `@FILE` (a RON file).
pub fn transform(text: &str) -> Result<Transform, String> {
    let parsed = match text.strip_prefix('@') {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {path}: {e}")).and_then(
                |ron_text| ron::from_str::<Transform>(&ron_text).map_err(|e| anyhow::anyhow!("{path}: {e}")),
            )
        }
        None => text.parse::<Transform>(),
    };
    parsed.map_err(|e| format!("{e:#}"))
}

/// How an image folder given by `--data` is read (`train`, `import`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct FolderArgs {
    /// The evaluation transform, as torchvision composes it (docs/transforms.md): a preset
    /// (waterbirds, celeba, timm-deit; NAME:SIZE for another size than 224),
    /// key=value items in order (e.g. resize=256,interp=bicubic,crop=224 or
    /// resize=64x64,normalize=imagenet), or @FILE.ron. Default: the layout's preset.
    #[arg(long, value_name = "SPEC", value_parser = transform)]
    pub transform: Option<Transform>,
    /// Side of the images the model sees, for an image folder: Waterbirds' transform (also
    /// csv:'s) resizes to int(N * 256 / 224) and centre-crops N; CelebA's crops 178 and
    /// resizes to N. Default: 224, the papers'. Not for the spurious digits.
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = image_size)]
    pub image_size: Option<usize>,
    /// CelebA's label and spurious attribute: two columns of list_attr_celeba, TARGET,SPURIOUS;
    /// group = 2 x target + spurious. Default: Blond_Hair,Male (the paper's).
    #[arg(long, value_name = "TARGET,SPURIOUS", value_parser = attributes)]
    pub attributes: Option<CelebaAttributes>,
}

impl FolderArgs {
    /// `spec` with these settings; an error when one does not apply to it.
    pub fn apply(&self, spec: &mut DatasetSpec) -> Result<()> {
        let DatasetSpec::Folder(folder) = spec else {
            if self.image_size.is_some() || self.attributes.is_some() || self.transform.is_some() {
                bail!(
                    "--image-size, --transform and --attributes are for an image folder (--data waterbirds:, celeba:, \
                     csv:), not the spurious digits (drawn at digits:SIZE with import, image_size in a train --config)"
                );
            }
            return Ok(());
        };
        if let Some(transform) = &self.transform {
            folder.transform = transform.clone();
        }
        if let Some(size) = self.image_size {
            folder.transform = folder.transform.clone().with_size(size)?;
        }
        if let Some(attributes) = &self.attributes {
            let Layout::Celeba(chosen) = &mut folder.layout else {
                bail!(
                    "--attributes chooses CelebA's columns; a waterbirds: or csv: folder has its labels and groups"
                );
            };
            *chosen = attributes.clone();
        }
        Ok(())
    }
}

/// A finite number >= 0 (σ, thresholds).
pub fn non_negative(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err("must be a number >= 0".into()),
    }
}

/// `--max-per-group` and `--subset-seed`: a seeded stratified subset of every split.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SubsetArgs {
    /// Keep at most N examples per group of every split: the first N of a seeded shuffle of
    /// each group (a smaller group keeps all); every output says so.
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = positive)]
    pub max_per_group: Option<usize>,
    /// Seed of the --max-per-group shuffle.
    #[arg(long, value_name = "S", default_value_t = DEFAULT_SEED, allow_negative_numbers = true,
          value_parser = seed, requires = "max_per_group")]
    pub subset_seed: u64,
}

/// Memory and pass sizes of a session (`--cache-mb`, `--model-cache-mb`, `--eval-batch`,
/// `--grad-batch`): they change speed and peak memory, not a count (gradient scores summed in
/// other batches may differ in their last float digits).
#[derive(clap::Args, Debug, Clone)]
pub struct SessionArgs {
    /// Memory for cached activations, MB (0 turns the cache off): an intervention confined
    /// to later layers resumes from the activations cached at a stage boundary.
    #[arg(long, default_value_t = memscope_core::session::DEFAULT_ACTIVATION_BUDGET >> 20,
          allow_negative_numbers = true, value_parser = count)]
    pub cache_mb: usize,
    /// Memory for each of the caches of networks, weights and gradients, MB (least recently
    /// used evicted first; a ResNet-50 epoch is about 100 MB in each).
    #[arg(long, default_value_t = memscope_core::session::DEFAULT_MODEL_BUDGET >> 20,
          allow_negative_numbers = true, value_parser = count)]
    pub model_cache_mb: usize,
    /// Examples per forward pass when measuring accuracy: with the two batches read ahead,
    /// what bounds the memory of an image folder's pixels (3 x N x 3 x side² x 4 bytes: 180 MB at
    /// 224 px) and of the activations.
    #[arg(long, value_name = "N", default_value_t = memscope_core::data::batch::EVAL_BATCH,
          allow_negative_numbers = true, value_parser = positive)]
    pub eval_batch: usize,
    /// Examples per backward pass of a gradient score (larger sets are accumulated; scores may
    /// differ in their last float digits); lower it when a large model's backward pass does not
    /// fit in GPU memory.
    #[arg(long, value_name = "N", default_value_t = memscope_core::data::batch::GRAD_BATCH,
          allow_negative_numbers = true, value_parser = positive)]
    pub grad_batch: usize,
}

impl SessionArgs {
    pub fn budgets(&self) -> memscope_core::session::Budgets {
        memscope_core::session::Budgets {
            activations: self.cache_mb.saturating_mul(1 << 20),
            models: self.model_cache_mb.saturating_mul(1 << 20),
            batches: memscope_core::data::batch::BatchSizes {
                eval: self.eval_batch,
                gradient: self.grad_batch,
            },
        }
    }
}

/// `--group`: resolved against the data set once it is open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupArg {
    /// `G2` or `2`.
    Index(usize),
    /// A group's name, e.g. `0-4 on land`.
    Name(String),
    /// `all`: every example (label-free).
    All,
}

impl FromStr for GroupArg {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "all" => GroupArg::All,
            _ => match s.strip_prefix('G').unwrap_or(s).parse::<usize>() {
                Ok(g) => GroupArg::Index(g),
                Err(_) => GroupArg::Name(s.to_string()),
            },
        })
    }
}

impl fmt::Display for GroupArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupArg::Index(g) => write!(f, "G{g}"),
            GroupArg::Name(name) => f.write_str(name),
            GroupArg::All => f.write_str("all"),
        }
    }
}

impl GroupArg {
    /// The group's number in `dataset` (`None`: all examples), or an error listing the groups.
    pub fn resolve(&self, dataset: &GroupedDataset) -> Result<Option<usize>> {
        let found = match self {
            GroupArg::All => return Ok(None),
            GroupArg::Index(g) => Some(*g).filter(|&g| g < dataset.num_groups()),
            GroupArg::Name(name) => dataset.group_names.iter().position(|n| n == name),
        };
        if let Some(g) = found {
            return Ok(Some(g));
        }
        let valid: Vec<String> =
            dataset.group_names.iter().enumerate().map(|(g, name)| format!("G{g} ({name})")).collect();
        bail!("unknown group '{self}' (valid: {}, or all)", valid.join(", "))
    }
}

/// `--criterion`: what scores a neuron.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CriterionArg {
    Magnitude,
    Gradient,
}

impl FromStr for CriterionArg {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "magnitude" => Ok(CriterionArg::Magnitude),
            "gradient" => Ok(CriterionArg::Gradient),
            other => bail!("unknown criterion '{other}' (valid: magnitude, gradient)"),
        }
    }
}

impl fmt::Display for CriterionArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CriterionArg::Magnitude => "magnitude",
            CriterionArg::Gradient => "gradient",
        })
    }
}

impl From<&Criterion> for CriterionArg {
    fn from(criterion: &Criterion) -> Self {
        match criterion {
            Criterion::Magnitude => CriterionArg::Magnitude,
            Criterion::Gradient { .. } => CriterionArg::Gradient,
        }
    }
}

/// `--kind`: what an intervention does to the selected neurons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Zero,
    Reinit,
    Noise,
    Rewind,
}

impl FromStr for Kind {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "zero" | "zero-out" | "prune" => Ok(Kind::Zero),
            "reinit" => Ok(Kind::Reinit),
            "noise" => Ok(Kind::Noise),
            "rewind" => Ok(Kind::Rewind),
            other => bail!("unknown intervention kind '{other}' (valid: zero, reinit, noise, rewind)"),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Zero => "zero",
            Kind::Reinit => "reinit",
            Kind::Noise => "noise",
            Kind::Rewind => "rewind",
        })
    }
}

impl From<&Intervention> for Kind {
    /// A layer rewind is a rewind (of the layer `rewind` names).
    fn from(intervention: &Intervention) -> Self {
        match intervention {
            Intervention::ZeroOut => Kind::Zero,
            Intervention::Reinit { .. } => Kind::Reinit,
            Intervention::Noise { .. } => Kind::Noise,
            Intervention::RewindNeurons { .. } | Intervention::RewindLayer { .. } => Kind::Rewind,
        }
    }
}

impl Kind {
    /// The change of this kind to the selected neurons, with the authors' σ and distance
    /// where none is given.
    pub fn intervention(self, sigma: Option<f64>, uniform: bool, epochs_back: Option<usize>) -> Intervention {
        match self {
            Kind::Zero => Intervention::ZeroOut,
            Kind::Reinit => Intervention::Reinit { sigma: sigma.unwrap_or(DEFAULT_REINIT_SIGMA), uniform },
            Kind::Noise => Intervention::Noise { sigma: sigma.unwrap_or(DEFAULT_NOISE_SIGMA) },
            Kind::Rewind => {
                Intervention::RewindNeurons { epochs_back: epochs_back.unwrap_or(DEFAULT_EPOCHS_BACK) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_refuse_what_lies_outside_them() {
        assert_eq!(fraction("0.05"), Ok(0.05));
        assert_eq!(fraction("1"), Ok(1.0));
        for bad in ["0", "-0.1", "1.5", "nan", "x"] {
            assert_eq!(fraction(bad), Err("must be in (0, 1]".into()), "{bad}");
        }
        assert_eq!(count("-1"), Err("must be a whole number >= 0".into()));
        assert_eq!(positive("0"), Err("must be at least 1".into()));
        assert_eq!(threads("1024"), Ok(1024));
        assert!(threads("1025").is_err());
        assert_eq!(non_negative("-1"), Err("must be a number >= 0".into()));
        assert_eq!(repeats("1001"), Err("must be in 1..=1000".into()));
    }

    #[test]
    fn groups_parse_by_number_or_name() {
        let parse = |s: &str| s.parse::<GroupArg>().unwrap_or(GroupArg::All);
        assert_eq!(parse("G2"), GroupArg::Index(2));
        assert_eq!(parse("3"), GroupArg::Index(3));
        assert_eq!(parse("all"), GroupArg::All);
        assert_eq!(parse("5-9 on land"), GroupArg::Name("5-9 on land".into()));
        assert!("shake".parse::<Kind>().is_err());
        assert_eq!("prune".parse::<Kind>().unwrap(), Kind::Zero);
    }
}

/// Optimiser settings shared by `train` and `mitigate`; each given one replaces the default
/// (`train`: the plan's; `mitigate`: the released mitigation's Adam, lr 2e-4, no weight
/// decay, batch 100, 21 epochs). Ranges are checked with the settings. Each command says its
/// defaults in `--help` through [`describe_fit`].
#[derive(clap::Args, Debug, Clone, Default)]
pub struct FitArgs {
    /// adam or sgd.
    #[arg(long, value_parser = clap::builder::ValueParser::new(|s: &str| s.parse::<memscope_core::experiment::OptimizerKind>()))]
    pub optimizer: Option<memscope_core::experiment::OptimizerKind>,
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    #[arg(long, allow_negative_numbers = true,
          help = format!("SGD momentum (with --optimizer sgd and no --momentum: {SGD_MOMENTUM})"))]
    pub momentum: Option<f64>,
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long)]
    pub epochs: Option<usize>,
}

impl FitArgs {
    /// `settings` with every option given replacing its value.
    pub fn apply(&self, t: &mut memscope_core::experiment::TrainSettings) {
        if let Some(v) = self.optimizer {
            t.optimizer = v;
            if v == memscope_core::experiment::OptimizerKind::Sgd
                && self.momentum.is_none()
                && t.momentum == 0.0
            {
                t.momentum = SGD_MOMENTUM;
            }
        }
        if let Some(v) = self.lr {
            t.learning_rate = v;
        }
        if let Some(v) = self.momentum {
            t.momentum = v;
        }
        if let Some(v) = self.weight_decay {
            t.weight_decay = v;
        }
        if let Some(v) = self.batch_size {
            t.batch_size = v;
        }
        if let Some(v) = self.epochs {
            t.epochs = v;
        }
    }
}

/// `arg` described with the default in `defaults` when it is one of [`FitArgs`]' numbers
/// (`--lr`, `--weight-decay`, `--batch-size`, `--epochs`), `whose` saying where that default
/// applies; any other argument as it is. For `Command::mut_args`.
pub fn describe_fit(
    arg: clap::Arg,
    defaults: &memscope_core::experiment::TrainSettings,
    whose: &str,
) -> clap::Arg {
    let text = match arg.get_id().as_str() {
        "lr" => format!("Learning rate (default {:e}{whose})", defaults.learning_rate),
        "weight_decay" => format!("Weight decay (default {}{whose})", defaults.weight_decay),
        "batch_size" => format!("Training examples per batch (default {}{whose})", defaults.batch_size),
        "epochs" => format!("Epochs to train (default {}{whose})", defaults.epochs),
        _ => return arg,
    };
    arg.help(text)
}
