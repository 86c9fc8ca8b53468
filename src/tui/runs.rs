//! The runs folder as the explorer lists it: the experiments in it (a mitigation run with the
//! val curve it recorded) and the results `memscope compare --format json --out FILE` left
//! there. Read from disk when asked (the Mitigation view, the experiment picker), never
//! trained or evaluated: a finished run shows at once.

use std::path::{Path, PathBuf};

use memscope_core::eval::summarize;
use memscope_core::experiment::lineage::Lineage;
use memscope_core::experiment::{Experiment, MANIFEST};
use memscope_core::mitigate::compare::Comparison;

use super::mitigation::EpochPoint;

/// The most entries read from one folder (a runs folder holds tens).
const MAX_ENTRIES: usize = 500;
/// A `compare` result is a few kilobytes per experiment: larger JSON files are something else.
const MAX_JSON_BYTES: u64 = 4 << 20;

/// An experiment found in the runs folder.
#[derive(Clone, Debug, PartialEq)]
pub struct FoundRun {
    pub dir: PathBuf,
    pub name: String,
    /// Its parent and method, for a mitigation run.
    pub lineage: Option<Lineage>,
    /// Val worst-group and mean accuracy per epoch, as the run recorded them (the mean
    /// weighted by the open experiment's training groups where the groups are the same, else
    /// none).
    pub curve: Vec<EpochPoint>,
}

impl FoundRun {
    /// The method in a few words, or what the experiment is without one.
    pub fn what(&self) -> String {
        match &self.lineage {
            Some(l) => format!("{} from {} epoch {}", l.method.label(), l.parent_name, l.start_epoch),
            None => "trained (no parent)".into(),
        }
    }
}

/// A `memscope compare` result found in the runs folder.
#[derive(Clone, Debug)]
pub struct FoundComparison {
    pub file: PathBuf,
    pub comparison: Comparison,
}

/// What the runs folder holds.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    pub dir: PathBuf,
    pub runs: Vec<FoundRun>,
    pub comparisons: Vec<FoundComparison>,
    /// Experiment folders that did not open (a run being written, a damaged manifest).
    pub unreadable: usize,
}

impl Listing {
    /// The mitigation runs, then the comparisons: the Mitigation view's list.
    pub fn finished(&self) -> Vec<Entry<'_>> {
        let runs = self.runs.iter().filter(|r| r.lineage.is_some()).map(Entry::Run);
        runs.chain(self.comparisons.iter().map(Entry::Comparison)).collect()
    }
}

/// One line of the Mitigation view's list.
#[derive(Clone, Copy, Debug)]
pub enum Entry<'a> {
    Run(&'a FoundRun),
    Comparison(&'a FoundComparison),
}

/// The folders under `dir` that are experiments: each child with a manifest, and the
/// `seed-N` experiments inside a child without one (`mitigate --out DIR --seeds …`).
fn experiment_dirs(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let children = |d: &Path| -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(d)
            .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).take(MAX_ENTRIES).collect())
            .unwrap_or_default();
        paths.sort();
        paths
    };
    let (mut experiments, mut files) = (Vec::new(), Vec::new());
    for path in children(dir) {
        if path.join(MANIFEST).exists() {
            experiments.push(path);
        } else if path.is_dir() {
            experiments.extend(children(&path).into_iter().filter(|p| p.join(MANIFEST).exists()));
        } else {
            files.push(path);
        }
    }
    (experiments, files)
}

/// Reads the runs folder `dir`; `groups` and `train` are the open experiment's group names
/// and training counts (a run on the same groups gets its train-weighted mean).
pub fn scan(dir: &Path, groups: &[String], train: &[usize]) -> Listing {
    let (experiments, files) = experiment_dirs(dir);
    let mut listing = Listing { dir: dir.to_path_buf(), ..Listing::default() };
    for path in experiments {
        match Experiment::open(&path) {
            Ok(experiment) => listing.runs.push(found(&experiment, groups, train)),
            Err(_) => listing.unreadable += 1,
        }
    }
    listing.comparisons = files.into_iter().filter_map(|file| comparison(&file)).collect();
    listing
}

fn found(experiment: &Experiment, groups: &[String], train: &[usize]) -> FoundRun {
    let m = &experiment.manifest;
    let same = m.groups == groups;
    let weights: Vec<f64> = train.iter().map(|&n| n as f64).collect();
    let last = experiment.last_epoch();
    let mut checkpoints: Vec<_> = m.checkpoints.iter().collect();
    checkpoints.sort_by_key(|c| c.epoch);
    let curve = checkpoints
        .into_iter()
        .map(|c| {
            let (worst, _) = summarize(&c.val_accuracy, &vec![1.0; c.val_accuracy.len()]);
            let mean = if same { summarize(&c.val_accuracy, &weights).1 } else { None };
            EpochPoint {
                epoch: c.epoch,
                epochs: last,
                train_loss: c.train_loss,
                val_worst: worst.map(|w| w.1),
                val_mean: mean,
                diagnostics: c.diagnostics,
            }
        })
        .collect();
    FoundRun { dir: experiment.dir.clone(), name: m.name.clone(), lineage: m.lineage.clone(), curve }
}

/// `file` as a `compare` result, if it is one.
fn comparison(file: &Path) -> Option<FoundComparison> {
    let small = std::fs::metadata(file).is_ok_and(|m| m.is_file() && m.len() <= MAX_JSON_BYTES);
    if !small || file.extension().is_none_or(|e| e != "json") {
        return None;
    }
    let text = std::fs::read_to_string(file).ok()?;
    let comparison: Comparison = serde_json::from_str(&text).ok()?;
    Some(FoundComparison { file: file.to_path_buf(), comparison })
}

/// Labels narrow enough for the comparison table: `parent` for the one experiment without a
/// parent, else the name less the parent's, the method's slug shortened (`sm-code s0` for
/// `spurious-digits-silent-majority-code-seed0`).
pub fn short_labels(c: &Comparison) -> Vec<String> {
    let parents: Vec<&str> =
        c.experiments.iter().filter(|e| e.parent.is_none()).map(|e| e.name.as_str()).collect();
    let parent = match parents.as_slice() {
        [one] => Some(*one),
        _ => None,
    };
    c.experiments
        .iter()
        .map(|e| {
            if e.parent.is_none() {
                return if parent.is_some() { "parent".to_string() } else { e.name.clone() };
            }
            let name = parent.and_then(|p| e.name.strip_prefix(p)?.strip_prefix('-')).unwrap_or(&e.name);
            let preset = memscope_core::mitigate::presets()
                .filter(|p| name.starts_with(p.slug))
                .max_by_key(|p| p.slug.len());
            let name = match preset {
                Some(p) => format!("{}{}", p.short, &name[p.slug.len()..]),
                None => name.to_string(),
            };
            name.replace("-seed", " s")
        })
        .collect()
}
