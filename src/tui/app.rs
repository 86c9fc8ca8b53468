//! The explorer's state and every change to it. Keys become `Action`s (see
//! [`keymap`](super::keymap)); `update` routes each to where it belongs (the navigation kept
//! here, the intervention form, the current view's own state) and returns the `Effect`s (jobs
//! for the worker, export, cancel, opening a run) for the loop to run; `on_event` does the
//! same with the worker's messages.

mod chosen;
mod events;
mod mitigation;
mod nav;
mod picker;
mod prompt;
mod requests;
pub mod tour;
mod views;

use std::path::PathBuf;
use std::time::Instant;

use super::form::Form;
use super::keymap::Keymap;
use super::mitigation::MitigationState;
use super::status::Status;
use super::worker::Job;
use memscope_core::data::{DataChanges, GroupedDataset, Split};
use memscope_core::device::describe::DeviceInfo;
use memscope_core::eval::{AccuracyReport, summarize};
use memscope_core::experiment::Experiment;
use memscope_core::inspect::{GroupInfo, group_infos};
use memscope_core::model::LayerInfo;
use memscope_core::report::ReportData;
use memscope_core::studies::intervention::smallest;

pub use picker::Openable;
pub use prompt::{Edit, Prompt, PromptKind};
pub use views::{
    BAR_SCALES, BarsState, EpochsState, HISTORY, HelpState, ImagesState, RanksState, SensitivityState,
    SweepState,
};

/// Rows PgUp and PgDn move.
const PAGE: isize = 10;
/// Farther than any list is long: Home and End.
const FAR: isize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Panel {
    Epochs,
    Layers,
    Groups,
    Form,
    Results,
}

const PANELS: [Panel; 5] = [Panel::Epochs, Panel::Layers, Panel::Groups, Panel::Form, Panel::Results];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    Bars,
    Ranks,
    Neurons,
    History,
    Sensitivity,
    Mitigation,
    Sweep,
    Epochs,
    Images,
}

pub const VIEWS: [(View, &str); 9] = [
    (View::Bars, "Bars"),
    (View::Ranks, "Ranks"),
    (View::Neurons, "Neurons"),
    (View::History, "History"),
    (View::Sensitivity, "Sensitivity"),
    (View::Mitigation, "Mitigation"),
    (View::Sweep, "Sweep"),
    (View::Epochs, "Epochs"),
    (View::Images, "Images"),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    NextPanel,
    PrevPanel,
    Up,
    Down,
    /// Ten rows up / down (PgUp, PgDn).
    PageUp,
    PageDown,
    /// The first / last row (Home or g, End or G).
    First,
    Last,
    Left,
    Right,
    Run,
    Cancel,
    Help,
    Quit,
    Export,
    /// Every study of `memscope report` at this epoch and split, written as the HTML page
    /// (and its numbers as JSON) into the export folder.
    Report,
    /// The next bar scale of [`BAR_SCALES`].
    Scale,
    Show(View),
    /// Open the last finished mitigation run in the explorer.
    Open,
    /// Pin the shown intervention (or unpin it), to see it beside the next.
    Pin,
    /// In the Neurons view: choose the neuron at the cursor by hand (or drop it).
    PinNeuron,
    /// Switch between the two bundled demos (the ResNet and the ViT, on the same data).
    Demo,
    /// Start the guided tour, or end it.
    Tour,
    /// The tour's next / previous step.
    TourNext,
    TourPrev,
    /// Open a prompt: `:` jump to an epoch, `/` filter the layers.
    Ask(PromptKind),
    /// A key while a prompt is open.
    Prompt(Edit),
    /// A click on a panel, on one of its list rows (counted from the list's first) or not.
    Click {
        panel: Panel,
        row: Option<usize>,
    },
    /// The wheel, over a panel or not (rows; negative is up).
    Wheel {
        panel: Option<Panel>,
        delta: isize,
    },
}

impl Action {
    /// Rows the action moves in a list, the form or the results (negative: up).
    pub fn rows(self) -> Option<isize> {
        match self {
            Action::Up => Some(-1),
            Action::Down => Some(1),
            Action::PageUp => Some(-PAGE),
            Action::PageDown => Some(PAGE),
            Action::First => Some(-FAR),
            Action::Last => Some(FAR),
            Action::Wheel { delta, .. } => Some(delta),
            _ => None,
        }
    }

    /// The step a value takes (←/→).
    pub fn step(self) -> Option<isize> {
        match self {
            Action::Left => Some(-1),
            Action::Right => Some(1),
            _ => None,
        }
    }
}

/// What the loop does after an update. A few per key press, never stored: a `Job` inline
/// costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Effect {
    Submit(Job),
    Cancel,
    Export,
    /// Write the report whose numbers the worker computed.
    SaveReport(Box<ReportData>),
    /// Reload the explorer on this experiment (a finished mitigation run).
    Open(PathBuf),
}

/// What keys mean now: the help overlay and a prompt take them before anything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Help,
    Prompt,
}

/// One epoch on the timeline, from the experiment file.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochRow {
    pub epoch: usize,
    pub train_worst: Option<f64>,
    pub val_worst: Option<f64>,
    pub val_mean: Option<f64>,
}

#[derive(Clone, Debug)]
pub struct Running {
    pub id: u64,
    pub label: &'static str,
    pub started: Instant,
    pub done: usize,
    pub total: usize,
}

pub struct App {
    // What is explored (fixed until another experiment is opened).
    /// The experiment explored (exports name its folder, checkpoints and their hashes).
    pub experiment: Experiment,
    pub name: String,
    pub epochs: Vec<EpochRow>,
    pub layers: Vec<LayerInfo>,
    pub groups: Vec<GroupInfo>,
    /// How the data differs from the experiment's whole data set; shown on the status line.
    pub data_changes: DataChanges,
    /// The groups panel's accuracies: of this epoch and split.
    pub baseline: Option<(usize, Split, AccuracyReport)>,

    // Navigation.
    pub focus: Panel,
    pub epoch: usize,
    pub layer: usize,
    pub group: usize,
    pub view: View,
    /// Rows scrolled in the results panel (reset when its content changes).
    pub scroll: usize,
    /// Layers whose name contains this are listed (empty: all).
    pub layer_filter: String,
    /// An open prompt (`:` epoch, `/` layer filter) and what has been typed.
    pub prompt: Option<Prompt>,
    /// What the `O` prompt offers, read when it opened.
    pub picker: Vec<Openable>,
    /// The experiments explored before this one in this session, oldest first.
    pub visited: Vec<PathBuf>,
    /// The guided tour's current step, while it runs.
    pub tour: Option<usize>,

    /// The intervention form, which every view but Mitigation runs.
    pub form: Form,
    // Each view's own state.
    pub bars: BarsState,
    pub ranks: RanksState,
    pub sensitivity: SensitivityState,
    pub sweep: SweepState,
    pub series: EpochsState,
    pub images: ImagesState,
    pub mitigation: MitigationState,
    pub help: HelpState,

    // Jobs and status.
    pub running: Option<Running>,
    /// The experiment (its name) `o` or `d` opens once the running job has stopped.
    pub opening: Option<String>,
    pub status: Status,
    /// The device the engine runs on and the libtorch (the header and help name them); none
    /// in tests that draw without opening one.
    pub device: Option<DeviceInfo>,
    /// Where `e` writes, absolute (the config's `export_dir`, else the current directory).
    pub export_dir: PathBuf,
    /// The keys in effect (the config's rebindings): dispatch reads them, and every text that
    /// names a key (panels, captions, the tour, status notes) names it from here.
    pub keys: Keymap,
    pub quit: bool,
}

impl App {
    pub fn new(experiment: &Experiment, dataset: &GroupedDataset, layers: Vec<LayerInfo>) -> App {
        let epochs = timeline(experiment, dataset);
        // Start on the last epoch, the smallest training group (the engine's default), the
        // first layer.
        let group = smallest(&dataset.train_group_counts());
        App {
            experiment: experiment.clone(),
            name: experiment.manifest.name.clone(),
            epoch: epochs.len().saturating_sub(1),
            epochs,
            layers,
            groups: group_infos(dataset),
            data_changes: dataset.changes.clone(),
            baseline: None,
            focus: Panel::Form,
            layer: 0,
            group,
            view: View::Bars,
            scroll: 0,
            layer_filter: String::new(),
            prompt: None,
            picker: Vec::new(),
            visited: Vec::new(),
            tour: None,
            form: Form::default(),
            bars: BarsState::default(),
            ranks: RanksState::default(),
            sensitivity: SensitivityState::default(),
            sweep: SweepState::default(),
            series: EpochsState::default(),
            images: ImagesState::default(),
            mitigation: MitigationState::new(MitigationState::default_runs_dir()),
            help: HelpState::default(),
            running: None,
            opening: None,
            status: Status::Idle,
            device: None,
            export_dir: std::path::absolute(".").unwrap_or_else(|_| PathBuf::from(".")),
            keys: Keymap::default(),
            quit: false,
        }
    }

    pub fn epoch_number(&self) -> usize {
        self.epochs.get(self.epoch).map(|e| e.epoch).unwrap_or(0)
    }

    pub fn layer_name(&self) -> &str {
        self.layers.get(self.layer).map(|l| l.name.as_str()).unwrap_or("")
    }

    pub fn group_label(&self) -> String {
        format!("G{}", self.group)
    }

    /// What keys mean now.
    pub fn mode(&self) -> Mode {
        if self.help.open {
            Mode::Help
        } else if self.prompt.is_some() {
            Mode::Prompt
        } else {
            Mode::Normal
        }
    }

    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        let effects = self.apply(action);
        self.follow_layer();
        effects
    }

    /// Keeps the form's q, k, v scopes to a fused qkv layer.
    pub(crate) fn follow_layer(&mut self) {
        let qkv = self.layers.get(self.layer).is_some_and(|l| l.heads.is_some());
        self.form.set_qkv(qkv);
    }

    /// Routes `action`: help and a prompt take keys first, then each action goes to the
    /// navigation, the form or the view it belongs to.
    fn apply(&mut self, action: Action) -> Vec<Effect> {
        if self.help.open && action != Action::Quit {
            self.help.update(action);
            return Vec::new();
        }
        match action {
            Action::Quit => {
                self.quit = true;
                vec![Effect::Cancel]
            }
            Action::Help => {
                self.help.open = true;
                Vec::new()
            }
            Action::Prompt(edit) => self.edit_prompt(edit),
            Action::NextPanel => self.cycle_focus(1),
            Action::PrevPanel => self.cycle_focus(-1),
            Action::Up | Action::Down | Action::PageUp | Action::PageDown | Action::First | Action::Last => {
                self.move_in(action)
            }
            Action::Left | Action::Right => self.change_value(action),
            Action::Show(view) => self.show(view),
            Action::Run => self.run(),
            Action::Cancel => self.cancel(),
            Action::Export => vec![Effect::Export],
            Action::Report => vec![Effect::Submit(Job::Report(self.report_spec()))],
            Action::Scale | Action::Pin => {
                let note = self.bars.update(action);
                self.note(note)
            }
            Action::PinNeuron => self.pin_neuron(),
            Action::Open => self.open_run(),
            Action::Demo => self.demo(),
            Action::Tour | Action::TourNext | Action::TourPrev => self.tour(action),
            Action::Ask(kind) => self.ask(kind),
            Action::Click { panel, row } => self.click(panel, row),
            Action::Wheel { panel, .. } => {
                if let Some(panel) = panel {
                    self.focus = panel;
                }
                self.move_in(action)
            }
        }
    }

    /// ←→: the focused form's field, or in the results the current view's value.
    fn change_value(&mut self, action: Action) -> Vec<Effect> {
        match (self.focus, self.view) {
            (Panel::Form | Panel::Results, View::Mitigation) => {
                self.mitigation.update(action, self.focus);
                Vec::new()
            }
            (Panel::Form, _) => {
                let split = self.form.split();
                self.form.step(action.step().unwrap_or(0));
                if self.form.split() == split {
                    return Vec::new();
                }
                let mut effects = vec![Effect::Submit(self.baseline_job())];
                effects.extend(self.view_job().map(Effect::Submit));
                effects
            }
            (Panel::Results, View::Sensitivity) => {
                self.sensitivity.update(action);
                Vec::new()
            }
            // ←→ change a value (a form field, a distance, a page); views switch with their
            // numbers only.
            _ => Vec::new(),
        }
    }

    /// Enter: the current view's job.
    fn run(&mut self) -> Vec<Effect> {
        let job = match self.view {
            View::Ranks => self.rank_job(),
            View::Sensitivity => self.sensitivity_job(),
            View::Mitigation => return self.start_mitigation(),
            View::Sweep => Job::Sweep(self.sweep_spec()),
            View::Epochs => Job::Epochs(self.epoch_series_spec()),
            View::Images => Job::Flips(self.flips_spec()),
            View::Bars | View::Neurons | View::History => Job::Intervene(self.spec()),
        };
        vec![Effect::Submit(job)]
    }

    /// Esc: stops the running job; with none, dismisses a note or an error.
    fn cancel(&mut self) -> Vec<Effect> {
        if self.running.is_none() {
            self.dismiss_message();
            return Vec::new();
        }
        self.status = Status::Cancelling;
        vec![Effect::Cancel]
    }

    fn demo(&mut self) -> Vec<Effect> {
        match memscope_core::experiment::demo::other(&self.experiment.dir) {
            Ok(dir) => vec![Effect::Open(dir)],
            Err(e) => self.note(Some(Status::Error(format!("{e:#}")))),
        }
    }

    /// A note or an error on the status line, gone (the line shows how to begin again).
    fn dismiss_message(&mut self) {
        if matches!(self.status, Status::Note(_) | Status::Error(_)) {
            self.status = Status::Idle;
        }
    }

    /// Shows `status` if there is one; no effects.
    fn note(&mut self, status: Option<Status>) -> Vec<Effect> {
        if let Some(status) = status {
            self.status = status;
        }
        Vec::new()
    }
}

/// The experiment's epochs with their recorded worst-group and mean accuracies.
fn timeline(experiment: &Experiment, dataset: &GroupedDataset) -> Vec<EpochRow> {
    let weights = dataset.train_proportions();
    experiment
        .manifest
        .checkpoints
        .iter()
        .map(|c| {
            let (train_worst, _) = summarize(&c.train_accuracy, &weights);
            let (val_worst, val_mean) = summarize(&c.val_accuracy, &weights);
            EpochRow {
                epoch: c.epoch,
                train_worst: train_worst.map(|w| w.1),
                val_worst: val_worst.map(|w| w.1),
                val_mean,
            }
        })
        .collect()
}
