//! `memscope import`: a training run's per-epoch checkpoints as an experiment.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::prelude::*;

use super::output::percent;
use super::progress::Bar;
use memscope_core::data::{DatasetSpec, Split};
use memscope_core::experiment::detect::{self, Hints};
use memscope_core::experiment::import::{ImportPlan, import};
use memscope_core::experiment::{foreign, torchscript};
use memscope_core::model::resnet::{Depth, HeadKind};
use memscope_core::model::{ModelConfig, ResNetConfig};

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The run folder: a PyTorch run's output folder (one file per epoch) or a burn-train
    /// artifact folder (its checkpoint/model-<epoch>.bpk files).
    #[arg(long, value_name = "RUN_DIR")]
    pub checkpoints: PathBuf,
    /// The experiment folder to write (it refers to the checkpoint files; nothing is copied).
    #[arg(long)]
    pub out: PathBuf,
    /// resnet18, resnet34, resnet50 (torchvision's structure and names), vit (timm/DeiT
    /// names) or small-resnet (memscope's demo CNN, as `memscope export` names it). Default:
    /// told by the first file's tensor names, sizes read from its shapes.
    #[arg(long, value_parser = clap::builder::ValueParser::new(arch))]
    pub arch: Option<Arch>,
    /// Outputs of the classifier head (default: the file's head rows; 2 with --arch resnet*).
    #[arg(long, value_parser = super::args::positive)]
    pub classes: Option<usize>,
    /// Attention heads of a ViT: not in a checkpoint's shapes. Default: DeiT's for the width
    /// (192 → 3 Tiny, 384 → 6 Small, 768 → 12 Base); any other width needs it.
    #[arg(long, value_parser = super::args::positive)]
    pub heads: Option<usize>,
    /// LayerNorm epsilon of a ViT. Default: 1e-5 with the authors' `head.0` (their
    /// deit_prune.py uses PyTorch's default), else timm's 1e-6.
    #[arg(long)]
    pub layer_norm_eps: Option<f64>,
    /// Which files hold which epoch: a file name with {epoch} where the number is and * for
    /// anything, relative to RUN_DIR (e.g. 'epoch_{epoch}_checkpoints.pth.tar' or
    /// 'checkpoint/model-{epoch}.bpk'). Default: names with epoch, model, checkpoint or ckpt
    /// followed by the number (epoch_12, epoch-012, model-12, checkpoint_12); init.* is epoch 0.
    #[arg(long)]
    pub pattern: Option<String>,
    /// The data set the model was trained on: digits, digits:SIZE, waterbirds:DIR, celeba:DIR
    /// or csv:FILE.
    #[arg(long, default_value = "digits", value_parser = clap::builder::ValueParser::new(|s: &str| s.parse::<DatasetSpec>()))]
    pub data: DatasetSpec,
    #[command(flatten)]
    pub folder: super::args::FolderArgs,
    /// natural (output i is class i), reversed (the authors' code: output 0 is y = 1), or a
    /// list such as 1,0 giving the class of each output.
    #[arg(long, default_value = "natural")]
    pub label_order: String,
    /// linear (torchvision's `fc`, timm's `head`) or softmax (the authors' `fc.0` / `head.0`
    /// Linear followed by a Softmax; memscope evaluates, scores and trains on the Linear's
    /// logits). Default: as the file has it (linear with --arch resnet*). With --torchscript:
    /// the head layer's name (default: the last rank-2 weight with one row per class).
    #[arg(long)]
    pub head: Option<String>,
    /// A TorchScript classifier (`torch.jit.save` of `torch.jit.script(model)` or
    /// `torch.jit.trace(model, example)`) whose parameters and buffers the run's state dicts
    /// hold; the experiment keeps a copy of it and of every epoch's tensors.
    #[arg(long, value_name = "MODEL.pt")]
    pub torchscript: Option<PathBuf>,
    /// Measure per-group accuracy of every epoch on these splits now (e.g. val or train,val);
    /// otherwise the explorer and the commands measure an epoch when they show it.
    #[arg(long, value_delimiter = ',', value_parser = clap::builder::ValueParser::new(|s: &str| s.parse::<Split>()))]
    pub evaluate: Vec<Split>,
    #[arg(long)]
    pub name: Option<String>,
    /// Replace an existing experiment at --out.
    #[arg(long)]
    pub force: bool,
}

/// An architecture named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    ResNet(Depth),
    /// A timm / DeiT ViT, sized from the file.
    ViT,
    /// memscope's small ResNet (the demo's CNN), sized from the file.
    SmallResNet,
}

fn arch(s: &str) -> Result<Arch> {
    match s.to_lowercase().replace(['-', '_'], "").as_str() {
        "resnet18" => Ok(Arch::ResNet(Depth::ResNet18)),
        "resnet34" => Ok(Arch::ResNet(Depth::ResNet34)),
        "resnet50" => Ok(Arch::ResNet(Depth::ResNet50)),
        "vit" | "deit" => Ok(Arch::ViT),
        "smallresnet" => Ok(Arch::SmallResNet),
        _ => bail!("unknown architecture '{s}' (valid: resnet18, resnet34, resnet50, vit, small-resnet)"),
    }
}

/// The model to import into: as named, or as the first file's tensor names say.
fn model_of(args: &ImportArgs, first: &std::path::Path) -> Result<(ModelConfig, Option<String>)> {
    let head_kind = args.head.as_deref().map(head).transpose()?;
    let hints = Hints {
        heads: args.heads,
        layer_norm_eps: args.layer_norm_eps,
        head: head_kind,
        classes: args.classes,
    };
    if let Some(Arch::ResNet(depth)) = args.arch {
        let config = ResNetConfig {
            depth,
            num_classes: args.classes.unwrap_or(2),
            in_channels: 3,
            head: head_kind.unwrap_or(HeadKind::Linear),
        };
        return Ok((ModelConfig::ResNet(config), None));
    }
    let (bytes, _) = foreign::read(first)?;
    let shapes = detect::shapes(&bytes).with_context(|| first.display().to_string())?;
    let model = match args.arch {
        Some(Arch::ViT) => detect::vit(&shapes, &hints).map(ModelConfig::ViT),
        Some(Arch::SmallResNet) => detect::small_resnet(&shapes, &hints).map(ModelConfig::SmallResNet),
        _ => detect::detect(&shapes, &hints),
    }
    .with_context(|| first.display().to_string())?;
    let said = format!("{}: {}", first.display(), architecture_said(&model, args));
    Ok((model, Some(said)))
}

/// The TorchScript model at `module` for `classes` classes, and which head was chosen.
fn torchscript_model(
    args: &ImportArgs,
    module: &std::path::Path,
    classes: usize,
) -> Result<(ModelConfig, Option<String>)> {
    if let Some(arch) = args.arch {
        bail!("--torchscript takes its architecture from the module: leave out --arch ({arch:?})");
    }
    let config = torchscript::config(module, args.classes.unwrap_or(classes), args.head.as_deref())?;
    let how = if args.head.is_some() {
        "as --head names it"
    } else {
        "the last rank-2 weight with one row per class; --head NAME to change"
    };
    let said = format!(
        "{}: a TorchScript module with {} candidate layers, head {} ({how})",
        module.display(),
        config.layers.len(),
        config.head
    );
    Ok((ModelConfig::TorchScript(config), Some(said)))
}

/// The architecture read from a file, in words, with the options that change what was assumed.
fn architecture_said(model: &ModelConfig, args: &ImportArgs) -> String {
    match model {
        ModelConfig::ViT(c) => format!(
            "a ViT of width {}, depth {}, {} heads{}, patch {} on {}x{}, MLP ratio {}, LayerNorm eps {:e}{}, head {}",
            c.dim,
            c.depth,
            c.heads,
            if args.heads.is_none() { " (DeiT's for this width; --heads to change)" } else { "" },
            c.patch_size,
            c.img_size,
            c.img_size,
            c.mlp_ratio,
            c.layer_norm_eps,
            if args.layer_norm_eps.is_none() { " (--layer-norm-eps to change)" } else { "" },
            if c.head == HeadKind::Linear { "head" } else { "head.0 + Softmax" },
        ),
        ModelConfig::SmallResNet(c) => {
            let list = |v: &[usize; 3]| v.map(|x| x.to_string()).join("/");
            format!(
                "memscope's small ResNet: {} input channels, stem {}, stages of {} channels with {} blocks, {} classes",
                c.in_channels,
                c.stem_channels,
                list(&c.stage_channels),
                list(&c.blocks_per_stage),
                c.num_classes
            )
        }
        other => other.describe(),
    }
}

fn head(s: &str) -> Result<HeadKind> {
    match s {
        "linear" => Ok(HeadKind::Linear),
        "softmax" => Ok(HeadKind::LinearSoftmax),
        _ => bail!("unknown head '{s}' (valid: linear, softmax)"),
    }
}

/// `natural`, `reversed` or a comma-separated ordering of 0..classes.
fn label_order(s: &str, classes: usize) -> Result<Vec<usize>> {
    let order: Vec<usize> =
        match s {
            "natural" => (0..classes).collect(),
            "reversed" => (0..classes).rev().collect(),
            list => list.split(',').map(|v| v.trim().parse::<usize>()).collect::<Result<_, _>>().map_err(
                |_| anyhow::anyhow!("--label-order '{s}': natural, reversed or a list such as 1,0"),
            )?,
        };
    let mut sorted = order.clone();
    sorted.sort_unstable();
    if sorted != (0..classes).collect::<Vec<_>>() {
        bail!("--label-order '{s}' must give each of the {classes} classes once (e.g. reversed, or 1,0)");
    }
    Ok(order)
}

pub fn run(args: ImportArgs, device: &Device) -> Result<()> {
    // Checked before any file is read.
    let mut dataset_spec = args.data.clone();
    args.folder.apply(&mut dataset_spec)?;
    let discovery = memscope_core::experiment::import::discover(&args.checkpoints, args.pattern.as_deref())?;
    let Some(first) = discovery.files.first() else {
        bail!("no checkpoint found in {}", args.checkpoints.display());
    };
    // A TorchScript module's head is found by the data set's number of classes.
    let mut loaded = None;
    let (model, detected) = match &args.torchscript {
        Some(module) => {
            let dataset = loaded.insert(dataset_spec.load()?);
            torchscript_model(&args, module, dataset.class_names.len())?
        }
        None => model_of(&args, &first.path)?,
    };
    let classes = match &model {
        ModelConfig::ResNet(c) => c.num_classes,
        ModelConfig::ViT(c) => c.num_classes,
        ModelConfig::SmallResNet(c) => c.num_classes,
        ModelConfig::TorchScript(c) => c.num_classes,
        ModelConfig::Custom(c) => c.num_classes,
    };
    if let DatasetSpec::Folder(spec) = &mut dataset_spec {
        // Recorded absolute, so the experiment finds it from any working directory.
        spec.path = std::path::absolute(&spec.path)
            .map_err(|e| anyhow::anyhow!("cannot resolve --data path {}: {e}", spec.path.display()))?;
    }
    let plan = ImportPlan {
        run: args.checkpoints.clone(),
        pattern: args.pattern.clone(),
        model,
        dataset: dataset_spec,
        label_order: label_order(&args.label_order, classes)?,
        name: args.name.clone(),
        evaluate: args.evaluate.clone(),
        module: args.torchscript.clone(),
    };
    let dataset = match loaded {
        Some(dataset) => dataset,
        None => plan.dataset.load()?,
    };
    let mut bar = Bar::new("import");
    // Said once the import succeeded: a failure is one line.
    let mut lines = Vec::new();
    let mut on_file = |found: &memscope_core::experiment::import::Found,
                       file: &memscope_core::experiment::ImportedFile,
                       reports: &[(Split, memscope_core::eval::AccuracyReport)]| {
        let mut how = file.format.clone();
        if let Some(w) = &file.wrapper {
            how.push_str(&format!(", state dict from '{w}'"));
        }
        if let Some(p) = &file.stripped_prefix {
            how.push_str(&format!(", '{p}' removed"));
        }
        let accuracy: String = reports
            .iter()
            .map(|(split, r)| format!("  {split} worst-group {}", percent(r.worst_group_accuracy)))
            .collect();
        lines.push(format!("epoch {:>3}  {}  ({how}){accuracy}", found.epoch, found.path.display()));
    };
    let experiment =
        import(&plan, &discovery, &dataset, &args.out, args.force, device, &mut on_file, &mut bar)?;
    drop(bar);
    if let Some(detected) = detected {
        eprintln!("architecture from {detected}");
    }
    for line in lines {
        eprintln!("{line}");
    }
    say_done(&args, &discovery, &experiment);
    Ok(())
}

/// What import says once it succeeded, after each file's line: the files passed over and
/// where the experiment is.
fn say_done(
    args: &ImportArgs,
    discovery: &memscope_core::experiment::import::Discovery,
    experiment: &memscope_core::experiment::Experiment,
) {
    if !discovery.skipped.is_empty() {
        let shown = discovery.skipped.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
        let more = if discovery.skipped.len() > 5 { ", …" } else { "" };
        eprintln!(
            "passed over {} file(s) with no epoch in their name (pattern {}): {shown}{more}",
            discovery.skipped.len(),
            discovery.pattern
        );
    }
    let epochs: Vec<usize> = experiment.epochs().collect();
    let kept = match &args.torchscript {
        Some(_) => "copies of the module and of each epoch's tensors are kept there",
        None => "the files stay where they are and are checked by sha256 when opened",
    };
    eprintln!(
        "imported {} checkpoints (epochs {}) into {}; {kept}",
        epochs.len(),
        memscope_core::experiment::epoch_ranges(epochs.into_iter()),
        experiment.dir.display()
    );
}
