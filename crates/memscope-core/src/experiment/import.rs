//! `memscope import`: another tool's training run (one checkpoint file per epoch, written
//! by PyTorch, safetensors or burn) as an experiment, without copying the weights. The
//! experiment records each file's path, size and sha256; opening a checkpoint later reads
//! the file again and names it when it changed or is gone.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use burn::prelude::*;
use regex::Regex;

use super::manifest::{CheckpointEntry, FORMAT, ImportSource, ImportedFile, Manifest};
use super::{Experiment, ExperimentWriter, checkpoint, foreign};
use crate::data::{DatasetSpec, GroupedDataset, Split};
use crate::eval::{AccuracyReport, evaluate};
use crate::jobs::{Progress, Within};
use crate::model::{ModelConfig, Network};
use crate::util::fsx::{LINK_LOOP, is_link_loop};

/// Endings of the files a run folder's checkpoints have.
pub(crate) const EXTENSIONS: [&str; 8] =
    [".pth.tar", ".pth", ".pt", ".bin", ".ckpt", ".tar", ".safetensors", ".bpk"];

/// What the default pattern recognises, as recorded in the experiment.
pub(crate) const AUTO_PATTERN: &str = "auto";

/// The default rule: `epoch`, `model`, `checkpoint` or `ckpt`, an optional `_`, `-` or `=`,
/// then the epoch (`epoch_12`, `epoch-012`, `model-12`, `checkpoint_12`, `epoch=3`).
const AUTO_EPOCH: &str = r"(?i)(?:^|[^a-z])(?:epoch|model|checkpoint|ckpt)[_\-=]?(\d+)(?:[^0-9]|$)";
/// A file of the initialisation (epoch 0) under the default rule: `init.pt`, `initial_model.pth`.
const AUTO_INIT: &str = r"(?i)^init(?:ial|ialization|ialisation)?(?:[._\-]|$)";

/// Everything `memscope import` needs.
#[derive(Clone, Debug)]
pub struct ImportPlan {
    /// The run folder (a PyTorch run's output folder or a burn-train artifact folder).
    pub run: PathBuf,
    /// A file-name pattern with `{epoch}` (and `*` for anything), relative to `run`; none for
    /// the default rule.
    pub pattern: Option<String>,
    pub model: ModelConfig,
    pub dataset: DatasetSpec,
    /// The class each output of the files' head stands for (`[1, 0]`: reversed).
    pub label_order: Vec<usize>,
    pub name: Option<String>,
    /// Splits whose per-group accuracy is measured at every epoch (none: measured when shown).
    pub evaluate: Vec<Split>,
    /// The TorchScript module a `ModelConfig::TorchScript` model is copied from.
    pub module: Option<PathBuf>,
}

/// A checkpoint file found in the run folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub epoch: usize,
    pub path: PathBuf,
}

/// The files a pattern found, and the candidate files it passed over.
#[derive(Clone, Debug)]
pub struct Discovery {
    pub pattern: String,
    pub files: Vec<Found>,
    pub skipped: Vec<String>,
}

/// The checkpoint files of the run at `run`, sorted by epoch. With no pattern, files whose
/// names carry an epoch (see `AUTO_EPOCH`) or mark the initialisation are taken from `run`,
/// or from `run/checkpoint` (burn-train's layout: `model-<epoch>.bpk`, where `optim-` and
/// `scheduler-` files are passed over) when `run` holds none.
pub fn discover(run: &Path, pattern: Option<&str>) -> Result<Discovery> {
    match std::fs::metadata(run) {
        Err(e) if is_link_loop(&e) => bail!("run folder {} {LINK_LOOP}", run.display()),
        Err(_) => bail!("run folder {} does not exist", run.display()),
        Ok(meta) if !meta.is_dir() => bail!(
            "{} is a file: pass the folder that holds the run's checkpoints (and --pattern to pick files)",
            run.display()
        ),
        Ok(_) => {}
    }
    match pattern {
        Some(pattern) => with_pattern(run, pattern),
        None => {
            let found = automatic(run)?;
            let burn_train = run.join("checkpoint");
            if found.files.is_empty() && burn_train.is_dir() {
                let inner = automatic(&burn_train)?;
                if !inner.files.is_empty() {
                    return Ok(inner);
                }
            }
            ensure!(
                !found.files.is_empty(),
                "no checkpoint in {} has an epoch in its name ({}; pass --pattern, e.g. 'epoch_{{epoch}}.pth')",
                run.display(),
                listing(&found.skipped)
            );
            Ok(found)
        }
    }
}

/// "found: a.pth, b.pth, … (12 files)" or "the folder holds no checkpoint files".
fn listing(names: &[String]) -> String {
    if names.is_empty() {
        return format!("the folder holds no files ending in {}", EXTENSIONS.join(", "));
    }
    let shown = names.iter().take(4).cloned().collect::<Vec<_>>().join(", ");
    let more = if names.len() > 4 { format!(", … ({} files)", names.len()) } else { String::new() };
    format!("found: {shown}{more}")
}

/// Regular files directly in `dir` with a checkpoint ending, sorted by name.
fn candidates(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        let path = entry.path();
        if path.is_file() && EXTENSIONS.iter().any(|e| name.to_lowercase().ends_with(e)) {
            out.push((name, path));
        }
    }
    out.sort();
    Ok(out)
}

fn strip_extension(name: &str) -> &str {
    let lower = name.to_lowercase();
    EXTENSIONS.iter().find(|e| lower.ends_with(*e)).map(|e| &name[..name.len() - e.len()]).unwrap_or(name)
}

fn automatic(dir: &Path) -> Result<Discovery> {
    let epoch = Regex::new(AUTO_EPOCH)?;
    let init = Regex::new(AUTO_INIT)?;
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for (name, path) in candidates(dir)? {
        let stem = strip_extension(&name);
        let number = epoch.captures(stem).map(|c| c[1].to_string());
        match number {
            Some(n) => files.push(Found { epoch: parse_epoch(&n, &name)?, path }),
            None if init.is_match(stem) => files.push(Found { epoch: 0, path }),
            None => skipped.push(name),
        }
    }
    finish(dir, AUTO_PATTERN.to_string(), files, skipped)
}

fn parse_epoch(digits: &str, name: &str) -> Result<usize> {
    digits.parse::<usize>().ok().filter(|e| *e <= super::manifest::MAX_EPOCH).with_context(|| {
        format!("{name}: epoch {digits} is out of range (valid: 0..={})", super::manifest::MAX_EPOCH)
    })
}

fn with_pattern(run: &Path, pattern: &str) -> Result<Discovery> {
    ensure!(
        pattern.matches("{epoch}").count() == 1,
        "--pattern '{pattern}' must contain {{epoch}} once, where the epoch number is (e.g. 'epoch_{{epoch}}_checkpoints.pth.tar')"
    );
    let (folder, file) = match pattern.rsplit_once('/') {
        Some((folder, file)) => (run.join(folder), file),
        None => (run.to_path_buf(), pattern),
    };
    ensure!(
        !folder.to_string_lossy().contains(['*', '{']),
        "--pattern '{pattern}': only the file name may hold * or {{epoch}}"
    );
    let mut regex = String::from("^");
    for (i, part) in file.split("{epoch}").enumerate() {
        if i > 0 {
            regex.push_str(r"(\d+)");
        }
        regex.push_str(&part.split('*').map(regex::escape).collect::<Vec<_>>().join(".*"));
    }
    regex.push('$');
    let regex = Regex::new(&regex).with_context(|| format!("--pattern '{pattern}' is not usable"))?;
    ensure!(folder.is_dir(), "--pattern '{pattern}': {} is not a folder", folder.display());
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&folder)
        .with_context(|| format!("cannot list {}", folder.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok().map(|n| (n, e.path())))
        .filter(|(_, p)| p.is_file())
        .collect();
    entries.sort();
    for (name, path) in entries {
        match regex.captures(&name) {
            Some(c) => files.push(Found { epoch: parse_epoch(&c[1], &name)?, path }),
            None => skipped.push(name),
        }
    }
    ensure!(
        !files.is_empty(),
        "no file in {} matches --pattern '{pattern}' ({})",
        folder.display(),
        listing(&skipped)
    );
    finish(&folder, pattern.to_string(), files, skipped)
}

/// Sorts by epoch and refuses two files for one epoch.
fn finish(dir: &Path, pattern: String, mut files: Vec<Found>, skipped: Vec<String>) -> Result<Discovery> {
    files.sort_by(|a, b| (a.epoch, &a.path).cmp(&(b.epoch, &b.path)));
    for pair in files.windows(2) {
        if pair[0].epoch == pair[1].epoch {
            bail!(
                "two files in {} give epoch {}: {} and {} (pass --pattern to choose one naming)",
                dir.display(),
                pair[0].epoch,
                file_name(&pair[0].path),
                file_name(&pair[1].path)
            );
        }
    }
    Ok(Discovery { pattern, files, skipped })
}

pub(crate) fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Reads the checkpoint file at `path` into a network of `model`, its head rows put in class
/// order (`label_order[i]` is the class of the file's output i). Returns the network and
/// what the file is (size, sha256, how it was read).
pub(crate) fn read_checkpoint(
    model: &ModelConfig,
    label_order: &[usize],
    path: &Path,
    device: &Device,
) -> Result<(Network, ImportedFile, String)> {
    let file = foreign::read_file(path)?;
    let mut bytes = file.bytes;
    if label_order.iter().enumerate().any(|(i, &c)| i != c) {
        let mut inverse = vec![0; label_order.len()];
        for (output, &class) in label_order.iter().enumerate() {
            inverse[class] = output;
        }
        bytes = foreign::reorder_rows(bytes, &model.head_params(), &inverse)
            .with_context(|| format!("checkpoint {}", path.display()))?;
    }
    let network =
        checkpoint::decode(model, bytes, device).with_context(|| format!("checkpoint {}", path.display()))?;
    let imported = ImportedFile {
        size: file.size,
        format: file.notes.format,
        wrapper: file.notes.wrapper,
        stripped_prefix: file.notes.stripped_prefix,
    };
    Ok((network, imported, file.sha256))
}

/// The network of an imported checkpoint `entry` of `experiment`, after checking that the
/// file is still the one imported.
pub fn load(experiment: &Experiment, entry: &CheckpointEntry, device: &Device) -> Result<Network> {
    let (Some(recorded), Some(source)) = (&entry.imported, &experiment.manifest.import) else {
        bail!("epoch {} was not imported", entry.epoch);
    };
    let path = experiment.dir.join(&entry.file);
    let changed = "was it replaced? run memscope import again to use the new file";
    match std::fs::metadata(&path) {
        Err(e) if is_link_loop(&e) => {
            bail!("the checkpoint of epoch {} ({}) {LINK_LOOP}", entry.epoch, path.display())
        }
        Err(_) => bail!(
            "the checkpoint of epoch {} ({}) is missing: was the run folder moved or deleted? \
             (the experiment records it relative to {}; run memscope import again)",
            entry.epoch,
            path.display(),
            experiment.dir.display()
        ),
        Ok(meta) if meta.len() != recorded.size => bail!(
            "the checkpoint of epoch {} ({}) changed since it was imported: {} bytes, {} recorded; {changed}",
            entry.epoch,
            path.display(),
            meta.len(),
            recorded.size
        ),
        Ok(_) => {}
    }
    let (network, _, sha256) =
        read_checkpoint(&experiment.manifest.model, &source.label_order, &path, device)?;
    ensure!(
        sha256 == entry.sha256,
        "the checkpoint of epoch {} ({}) changed since it was imported: its sha256 is {sha256}, {} recorded; {changed}",
        entry.epoch,
        path.display(),
        entry.sha256
    );
    Ok(network)
}

/// Hears of each file imported: where it was, what it is, the accuracies measured.
pub(crate) type OnFile<'a> = dyn FnMut(&Found, &ImportedFile, &[(Split, AccuracyReport)]) + 'a;

/// Imports the files `discovery` found (see [`discover`]) of the run `plan` describes into a
/// new experiment at `out` (an existing experiment there is replaced only when `overwrite`
/// is set). `on_file` hears of each file read.
#[allow(clippy::too_many_arguments)]
pub fn import(
    plan: &ImportPlan,
    discovery: &Discovery,
    dataset: &GroupedDataset,
    out: &Path,
    overwrite: bool,
    device: &Device,
    on_file: &mut OnFile<'_>,
    progress: &mut dyn Progress,
) -> Result<Experiment> {
    plan.model.check_fits(dataset.image_shape, dataset.class_names.len())?;
    let classes = dataset.class_names.len();
    let mut order = plan.label_order.clone();
    order.sort_unstable();
    ensure!(
        order == (0..classes).collect::<Vec<_>>(),
        "--label-order {:?} is not an ordering of the data set's {classes} classes",
        plan.label_order
    );
    if let Some(module) = &plan.module {
        return super::torchscript::import(
            plan, module, discovery, dataset, out, overwrite, device, on_file, progress,
        );
    }
    let base = absolute_folder(out)?;
    let manifest = manifest(plan, discovery, dataset);
    let mut writer = ExperimentWriter::create(out, manifest, overwrite)?;
    let total = discovery.files.len();
    for (done, found) in discovery.files.iter().enumerate() {
        let (network, imported, sha256) =
            read_checkpoint(&plan.model, &plan.label_order, &found.path, device)?;
        let mut reports = Vec::new();
        for &split in &plan.evaluate {
            reports.push((
                split,
                evaluate(&network, dataset, split, device, &mut Within::new(progress, done, total))?,
            ));
        }
        let accuracies = |split: Split| -> Vec<Option<f64>> {
            reports
                .iter()
                .find(|(s, _)| *s == split)
                .map(|(_, r)| r.groups.iter().map(|g| g.accuracy).collect())
                .unwrap_or_default()
        };
        on_file(found, &imported, &reports);
        writer.record_external(CheckpointEntry {
            epoch: found.epoch,
            file: relative_to(&base, &std::fs::canonicalize(&found.path)?),
            sha256,
            imported: Some(imported),
            train_loss: None,
            train_accuracy: accuracies(Split::Train),
            val_accuracy: accuracies(Split::Val),
            diagnostics: None,
        })?;
        progress.report(done + 1, total)?;
    }
    writer.finish()
}

/// `out` as an absolute path with its parent's links resolved (the folder itself may not
/// exist yet).
/// The manifest of an imported run, before its checkpoints: the plan's model and data set, the
/// data set's classes and groups, where the run came from.
pub(crate) fn manifest(plan: &ImportPlan, discovery: &Discovery, dataset: &GroupedDataset) -> Manifest {
    Manifest {
        format: FORMAT,
        name: plan.name.clone().unwrap_or_else(|| file_name(&plan.run)),
        model: plan.model.clone(),
        dataset: plan.dataset.clone(),
        classes: dataset.class_names.clone(),
        groups: dataset.group_names.clone(),
        training: None,
        import: Some(ImportSource {
            run: plan.run.display().to_string(),
            pattern: discovery.pattern.clone(),
            label_order: plan.label_order.clone(),
        }),
        lineage: None,
        checkpoints: Vec::new(),
    }
}

pub(crate) fn absolute_folder(out: &Path) -> Result<PathBuf> {
    let absolute = std::path::absolute(out).with_context(|| format!("--out {}", out.display()))?;
    let name = absolute.file_name().with_context(|| format!("--out {} has no folder name", out.display()))?;
    let parent = absolute.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    Ok(std::fs::canonicalize(parent)?.join(name))
}

/// `path` relative to the folder `base` when they share more than the root (the experiment
/// and the run then move together); else `path` as it is.
pub(crate) fn relative_to(base: &Path, path: &Path) -> String {
    let a: Vec<Component> = base.components().collect();
    let b: Vec<Component> = path.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    if common <= 1 {
        return path.display().to_string();
    }
    let mut relative = PathBuf::new();
    for _ in common..a.len() {
        relative.push("..");
    }
    for part in &b[common..] {
        relative.push(part.as_os_str());
    }
    relative.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(relative_to(Path::new("/a/b/exp"), Path::new("/a/b/run/e1.pt")), "../run/e1.pt");
        assert_eq!(relative_to(Path::new("/a/exp"), Path::new("/a/exp/w/e1.pt")), "w/e1.pt");
        assert_eq!(relative_to(Path::new("/x/exp"), Path::new("/y/e1.pt")), "/y/e1.pt");
    }

    #[test]
    fn default_rule_finds_the_usual_names() {
        let epoch = Regex::new(AUTO_EPOCH).unwrap();
        let init = Regex::new(AUTO_INIT).unwrap();
        for (name, expected) in [
            ("epoch_12_checkpoints", Some("12")),
            ("epoch-012", Some("012")),
            ("model-12", Some("12")),
            ("checkpoint_12", Some("12")),
            ("resnet50_epoch=3", Some("3")),
            ("checkpoint_epoch_7", Some("7")),
            ("optim-3", None),
            ("scheduler-3", None),
            ("model_best", None),
            ("step_100", None),
        ] {
            assert_eq!(epoch.captures(name).map(|c| c[1].to_string()).as_deref(), expected, "{name}");
        }
        assert!(init.is_match("init") && init.is_match("initial_model") && !init.is_match("initiative"));
        assert_eq!(strip_extension("epoch_3_checkpoints.pth.tar"), "epoch_3_checkpoints");
    }
}
