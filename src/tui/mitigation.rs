//! The Mitigation view's state: the form (method, epochs, seed), the run in progress or the
//! last one, the runs finished in this session with their comparison against the parent, and
//! the runs folder's finished runs as last read. Pure but for that read (small files, when the
//! view is shown): the worker runs the jobs (`Job::Mitigate`, `Job::Compare`), the loop opens
//! a run.

use std::path::{Path, PathBuf};

use crate::tui::app::{Action, Panel};
use crate::tui::runs::{Entry, FoundRun, Listing};

use memscope_core::data::DatasetSpec;
use memscope_core::experiment::Diagnostics;
use memscope_core::experiment::Experiment;
use memscope_core::experiment::lineage::{LabelUse, Method};
use memscope_core::mitigate::compare::Comparison;
use memscope_core::mitigate::{MitigationPlan, default_methods, released_training};
use memscope_core::train::EpochReport;

/// A method offered: the engine's presets, in [`default_methods`] order.
pub use memscope_core::mitigate::Preset as Choice;
pub static METHODS: std::sync::LazyLock<Vec<Choice>> =
    std::sync::LazyLock::new(|| memscope_core::mitigate::presets().copied().collect());

/// Epochs a run fine-tunes by default: enough for a demo (the released default is 21).
pub const DEFAULT_EPOCHS: usize = 5;
pub const MAX_EPOCHS: usize = 200;
/// Where runs go, under the current directory, unless [`RUNS_DIR_VAR`] names a folder.
pub const RUNS_DIR: &str = "memscope-runs";
/// The environment variable that moves the runs folder.
pub const RUNS_DIR_VAR: &str = "MEMSCOPE_RUNS_DIR";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Method,
    Epochs,
    Seed,
}

pub const FIELDS: [Field; 3] = [Field::Method, Field::Epochs, Field::Seed];

#[derive(Clone, Debug, PartialEq)]
pub struct MitigationForm {
    /// One of [`default_methods`].
    pub method: Method,
    pub epochs: usize,
    pub seed: u64,
}

impl Default for MitigationForm {
    fn default() -> Self {
        // The first method the engine lists, with its default settings.
        let method = memscope_core::mitigate::METHODS[0].defaults();
        MitigationForm { method, epochs: DEFAULT_EPOCHS, seed: memscope_core::util::rng::DEFAULT_SEED }
    }
}

/// How the form, the run and the comparison name `method`.
pub fn choice_of(method: &Method) -> &'static Choice {
    let at = default_methods().iter().position(|m| m == method).unwrap_or(0);
    &METHODS[at % METHODS.len()]
}

impl MitigationForm {
    /// Moves `field` by `step`: the method wraps around, epochs stay in 1..=MAX_EPOCHS, the
    /// seed at 0 or above.
    pub fn step(&mut self, field: Field, step: isize) {
        match field {
            Field::Method => {
                let methods = default_methods();
                let at = methods.iter().position(|m| *m == self.method).unwrap_or(0) as isize;
                let to = (at + step).rem_euclid(methods.len() as isize) as usize;
                if let Some(method) = methods.into_iter().nth(to) {
                    self.method = method;
                }
            }
            Field::Epochs => {
                self.epochs = (self.epochs as isize + step).clamp(1, MAX_EPOCHS as isize) as usize
            }
            Field::Seed => self.seed = self.seed.saturating_add_signed(step as i64),
        }
    }

    pub fn choice(&self) -> &'static Choice {
        choice_of(&self.method)
    }

    /// DFR refits the last layer once; the epochs field does not apply.
    /// Whether the method fine-tunes for the form's epochs (DFR refits the last layer once).
    pub fn fine_tunes(&self) -> bool {
        self.method.mitigation().fine_tunes()
    }

    pub fn labels(&self) -> LabelUse {
        self.method.labels()
    }

    /// Epochs the run will record after its start (epoch 0).
    pub fn planned_epochs(&self) -> usize {
        if self.fine_tunes() { self.epochs } else { 1 }
    }

    /// The run: this method, the released fine-tuning on the parent's `dataset` with this
    /// many epochs and this seed, from `start_epoch` of the parent.
    pub fn plan(&self, dataset: &DatasetSpec, start_epoch: usize) -> MitigationPlan {
        let mut training = released_training(dataset, self.seed);
        training.epochs = self.epochs;
        let (method, start_epoch) = (self.method.clone(), Some(start_epoch));
        MitigationPlan { method, start_epoch, training, name: None, eval_train: true }
    }

    /// `<parent>-<method>-seed<N>`, the run folder's name before any `-2`.
    pub fn stem(&self, parent: &str) -> String {
        let parent: String =
            parent.chars().map(|c| if c.is_alphanumeric() || "-_.".contains(c) { c } else { '-' }).collect();
        let parent = parent.trim_start_matches('.');
        let parent = if parent.is_empty() { "experiment" } else { parent };
        format!("{parent}-{}-seed{}", self.choice().slug, self.seed)
    }
}

/// The runs folder given the value of [`RUNS_DIR_VAR`], made absolute.
pub fn runs_dir_from(var: Option<std::ffi::OsString>) -> PathBuf {
    let dir = var.filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(RUNS_DIR));
    std::path::absolute(&dir).unwrap_or(dir)
}

/// `runs/stem`, else `runs/stem-2`, `-3`, …: the first that `taken` says is free.
pub fn free_folder(runs: &Path, stem: &str, taken: impl Fn(&Path) -> bool) -> PathBuf {
    (1..)
        .map(|n| if n == 1 { runs.join(stem) } else { runs.join(format!("{stem}-{n}")) })
        .find(|p| !taken(p))
        .unwrap_or_else(|| runs.join(stem))
}

/// Whether a run folder name is in use: the folder exists (or a link by that name does), or
/// another writer holds its lock.
pub fn taken_on_disk(path: &Path) -> bool {
    let lock = path.file_name().map(|n| path.with_file_name(format!(".{}.lock", n.to_string_lossy())));
    path.symlink_metadata().is_ok() || lock.is_some_and(|l| l.symlink_metadata().is_ok())
}

/// What the worker's mitigation job needs: the plan, and where to put the run.
#[derive(Clone, Debug)]
pub struct MitigationRequest {
    pub plan: MitigationPlan,
    pub runs_dir: PathBuf,
    /// The folder's name before any `-2` (see [`free_folder`]).
    pub stem: String,
}

/// One recorded epoch of a run, as the chart needs it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochPoint {
    pub epoch: usize,
    pub epochs: usize,
    pub train_loss: Option<f64>,
    pub val_worst: Option<f64>,
    pub val_mean: Option<f64>,
    /// The objective's terms over the epoch (silent-majority).
    pub diagnostics: Option<Diagnostics>,
}

impl From<&EpochReport> for EpochPoint {
    fn from(r: &EpochReport) -> Self {
        EpochPoint {
            epoch: r.epoch,
            epochs: r.epochs,
            train_loss: r.train_loss,
            val_worst: r.val.worst_group_accuracy,
            val_mean: r.val.mean_accuracy_train_weighted,
            diagnostics: r.diagnostics,
        }
    }
}

/// What a running mitigation tells the explorer before it finishes.
#[derive(Clone, Debug, PartialEq)]
pub enum Update {
    /// The folder chosen; sent first.
    Writing(PathBuf),
    /// An epoch recorded (epoch 0 is the start).
    Epoch(EpochPoint),
}

#[derive(Clone, Debug, PartialEq)]
pub enum RunState {
    Queued,
    Running,
    Finished,
    Cancelled,
    Failed(String),
}

/// The run in progress, or the last one.
#[derive(Clone, Debug)]
pub struct Run {
    /// The worker's job id, known from its first update.
    pub job: Option<u64>,
    pub method: Method,
    pub seed: u64,
    pub parent: String,
    pub start_epoch: usize,
    pub epochs: usize,
    pub out: Option<PathBuf>,
    pub curve: Vec<EpochPoint>,
    pub state: RunState,
    /// What the run found (JTT's error set, DFR's C), once finished.
    pub found: Option<String>,
}

impl Run {
    /// A finished mitigation run read from its folder, drawn as a run of this session is
    /// (none for an experiment no mitigation wrote); without `out`: the list names the folder.
    pub fn recorded(found: &FoundRun) -> Option<Run> {
        let lineage = found.lineage.as_ref()?;
        Some(Run {
            job: None,
            method: lineage.method.clone(),
            seed: lineage.seed,
            parent: lineage.parent_name.clone(),
            start_epoch: lineage.start_epoch,
            epochs: found.curve.last().map_or(0, |p| p.epoch),
            out: None,
            curve: found.curve.clone(),
            state: RunState::Finished,
            found: lineage.method.mitigation().found(),
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    Curves,
    Compare,
}

/// An experiment in the comparison, with its label in the table.
#[derive(Clone, Debug, PartialEq)]
pub struct Compared {
    pub dir: PathBuf,
    pub label: String,
}

/// The Mitigation view's state.
pub struct MitigationState {
    pub form: MitigationForm,
    /// The form's field under the cursor.
    pub field: Field,
    /// Absolute.
    pub runs_dir: PathBuf,
    pub run: Option<Run>,
    /// The parents runs started from and the runs finished in this session, in order.
    pub compared: Vec<Compared>,
    /// Of the first `comparison.experiments.len()` entries of `compared`.
    pub comparison: Option<Comparison>,
    /// The runs finished in this session, in order.
    pub finished: Vec<PathBuf>,
    pub page: Page,
    /// The runs folder as read when the view was last shown: its finished runs and
    /// comparisons, listed while this session has started no run.
    pub listing: Option<Listing>,
    /// The entry of the listing's finished runs shown (under the cursor).
    pub picked: usize,
}

impl MitigationState {
    pub fn new(runs_dir: PathBuf) -> MitigationState {
        MitigationState {
            form: MitigationForm::default(),
            field: Field::Method,
            runs_dir,
            run: None,
            compared: Vec::new(),
            comparison: None,
            finished: Vec::new(),
            page: Page::Curves,
            listing: None,
            picked: 0,
        }
    }

    /// Reads the runs folder again (`groups` and `train`: the open experiment's group names
    /// and training counts, for a run's train-weighted mean).
    pub fn rescan(&mut self, groups: &[String], train: &[usize]) {
        let listing = crate::tui::runs::scan(&self.runs_dir, groups, train);
        self.picked = self.picked.min(listing.finished().len().saturating_sub(1));
        self.listing = Some(listing);
    }

    /// Whether the view lists the runs folder's finished runs: this session started none
    /// and the folder holds some.
    pub fn lists_runs(&self) -> bool {
        self.run.is_none() && self.listing.as_ref().is_some_and(|l| !l.finished().is_empty())
    }

    /// Moves the cursor among the listed runs by `rows`.
    pub fn pick(&mut self, rows: isize) {
        let len = self.listing.as_ref().map_or(0, |l| l.finished().len()) as isize;
        self.picked = (self.picked as isize).saturating_add(rows).clamp(0, (len - 1).max(0)) as usize;
    }

    /// The listed entry under the cursor.
    pub fn picked_entry(&self) -> Option<Entry<'_>> {
        self.listing.as_ref().and_then(|l| l.finished().get(self.picked).copied())
    }

    /// `$MEMSCOPE_RUNS_DIR` when set and not empty, else `memscope-runs` under the current
    /// directory; made absolute so the screen shows it whole.
    pub fn default_runs_dir() -> PathBuf {
        runs_dir_from(std::env::var_os(RUNS_DIR_VAR))
    }

    pub fn busy(&self) -> bool {
        self.run.as_ref().is_some_and(|r| matches!(r.state, RunState::Queued | RunState::Running))
    }

    /// The folder a run started now would be written to (before any `-2`).
    pub fn target(&self, parent: &str) -> PathBuf {
        self.runs_dir.join(self.form.stem(parent))
    }

    /// Records a new run from `parent` at `epoch` and returns the job's request.
    pub fn start(&mut self, parent: &Experiment, epoch: usize) -> MitigationRequest {
        let name = &parent.manifest.name;
        if !self.compared.iter().any(|c| c.dir == parent.dir) {
            let label = if self.compared.is_empty() { "parent".to_string() } else { name.clone() };
            self.compared.push(Compared { dir: parent.dir.clone(), label });
        }
        self.run = Some(Run {
            job: None,
            method: self.form.method.clone(),
            seed: self.form.seed,
            parent: name.clone(),
            start_epoch: epoch,
            epochs: self.form.planned_epochs(),
            out: None,
            curve: Vec::new(),
            state: RunState::Queued,
            found: None,
        });
        self.page = Page::Curves;
        MitigationRequest {
            plan: self.form.plan(&parent.manifest.dataset, epoch),
            runs_dir: self.runs_dir.clone(),
            stem: self.form.stem(name),
        }
    }

    /// A message from the running job `id`.
    pub fn on_update(&mut self, id: u64, update: Update) {
        let Some(run) = self.run.as_mut() else { return };
        match update {
            Update::Writing(out) => {
                run.job = Some(id);
                run.out = Some(out);
                run.state = RunState::Running;
            }
            Update::Epoch(point) if run.job == Some(id) => {
                run.epochs = point.epochs;
                run.curve.retain(|p| p.epoch < point.epoch);
                run.curve.push(point);
            }
            Update::Epoch(_) => {}
        }
    }

    /// The run finished as `experiment`: returns the experiments to compare now.
    pub fn on_finished(&mut self, experiment: &Experiment) -> Vec<PathBuf> {
        if let Some(run) = self.run.as_mut() {
            run.state = RunState::Finished;
            run.out = Some(experiment.dir.clone());
            run.found = experiment.manifest.lineage.as_ref().and_then(|l| l.method.mitigation().found());
            let suffix = experiment
                .dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .and_then(|n| n.rsplit_once("-seed").map(|(_, s)| s.to_string()))
                .unwrap_or_else(|| run.seed.to_string());
            let label = format!("{} s{suffix}", choice_of(&run.method).short);
            self.compared.push(Compared { dir: experiment.dir.clone(), label });
            self.finished.push(experiment.dir.clone());
        }
        self.compared.iter().map(|c| c.dir.clone()).collect()
    }

    /// Job `id` stopped without a result: if it was the run, say so.
    pub fn on_stopped(&mut self, id: u64, state: RunState) -> bool {
        match self.run.as_mut() {
            Some(run) if run.job == Some(id) && matches!(run.state, RunState::Running) => {
                run.state = state;
                true
            }
            _ => false,
        }
    }

    /// A key in this view: in the form ↑↓ move among the fields and ←→ change one; in the
    /// results ←→ flip between the curves and the comparison.
    pub fn update(&mut self, action: Action, focus: Panel) {
        match (focus, action.step(), action.rows()) {
            (Panel::Form, Some(step), _) => self.form.step(self.field, step),
            (Panel::Form, None, Some(rows)) => {
                let at = FIELDS.iter().position(|&f| f == self.field).unwrap_or(0) as isize;
                self.field = FIELDS[at.saturating_add(rows).clamp(0, FIELDS.len() as isize - 1) as usize];
            }
            (Panel::Results, Some(_), _) if self.comparison.is_some() => self.flip_page(),
            _ => {}
        }
    }

    /// Between the curves and the comparison (where the screen shows one at a time).
    pub fn flip_page(&mut self) {
        self.page = match self.page {
            Page::Curves => Page::Compare,
            Page::Compare => Page::Curves,
        };
    }

    pub fn on_comparison(&mut self, comparison: Comparison) {
        self.comparison = Some(comparison);
        self.page = Page::Compare;
    }

    /// The run to open: the last that finished in this session, else the listed run under
    /// the cursor.
    pub fn finished_run(&self) -> Option<&Path> {
        let listed = || match self.picked_entry() {
            Some(Entry::Run(run)) if self.run.is_none() => Some(run.dir.as_path()),
            _ => None,
        };
        self.finished.last().map(PathBuf::as_path).or_else(listed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runs_folder_follows_the_variable_and_is_absolute() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(runs_dir_from(None), cwd.join("memscope-runs"));
        assert_eq!(runs_dir_from(Some("".into())), cwd.join("memscope-runs"));
        assert_eq!(runs_dir_from(Some("/data/runs".into())), Path::new("/data/runs"));
        assert_eq!(runs_dir_from(Some("rel/runs".into())), cwd.join("rel/runs"));
    }

    #[test]
    fn run_folders_take_the_next_free_suffix() {
        let runs = Path::new("/r");
        let taken = |names: &'static [&'static str]| move |p: &Path| names.iter().any(|n| runs.join(n) == p);
        assert_eq!(free_folder(runs, "d-erm-seed0", taken(&[])), runs.join("d-erm-seed0"));
        assert_eq!(free_folder(runs, "d-erm-seed0", taken(&["d-erm-seed0"])), runs.join("d-erm-seed0-2"));
        assert_eq!(
            free_folder(runs, "d-erm-seed0", taken(&["d-erm-seed0", "d-erm-seed0-2"])),
            runs.join("d-erm-seed0-3")
        );
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("x");
        assert!(!taken_on_disk(&run));
        std::fs::write(dir.path().join(".x.lock"), "1").unwrap();
        assert!(taken_on_disk(&run), "a run being written by another process");
    }

    #[test]
    fn the_form_names_its_run_and_builds_the_plan() {
        let mut form = MitigationForm::default();
        assert_eq!((form.choice().slug, form.epochs, form.seed), ("silent-majority-code", 5, 0));
        assert_eq!(form.stem("spurious-digits"), "spurious-digits-silent-majority-code-seed0");
        assert_eq!(form.stem("../a b"), "-a-b-silent-majority-code-seed0");
        form.step(Field::Method, -1);
        assert_eq!(
            (form.choice().name, form.labels(), form.planned_epochs()),
            ("dfr", LabelUse::ValGroups, 1)
        );
        form.step(Field::Method, -2);
        assert_eq!(form.labels(), LabelUse::None, "jtt reads no group labels");
        form.step(Field::Method, 1);
        assert_eq!(form.labels(), LabelUse::TrainGroups, "group-dro");
        form.step(Field::Epochs, -10);
        form.step(Field::Seed, -1);
        form.step(Field::Seed, 2);
        assert_eq!((form.epochs, form.seed), (1, 2));
        let plan = form.plan(&DatasetSpec::default(), 17);
        assert_eq!((plan.start_epoch, plan.training.epochs, plan.training.seed), (Some(17), 1, 2));
        assert_eq!(plan.training.learning_rate, released_training(&DatasetSpec::default(), 0).learning_rate);
        assert_eq!(plan.method.name(), "group-dro");
    }
}
