//! The explorer's state and every change to it: keys become `Action`s, `update` applies
//! them and returns the `Effect`s (jobs for the worker, export, cancel, opening a run) for the
//! loop to run; so does `on_event` with the worker's messages.

mod mitigation;
mod prompt;
mod requests;
pub mod tour;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::form::{FIELDS, Form};
use super::mitigation::{Mitigation, RunState};
use super::status::Status;
use super::worker::{Event, Job, Output};
use memscope_core::data::{DataChanges, GroupedDataset, Split};
use memscope_core::eval::{AccuracyReport, summarize};
use memscope_core::experiment::Experiment;
use memscope_core::inspect::{GroupInfo, group_infos};
use memscope_core::model::LayerInfo;
use memscope_core::studies::epochs::EpochSeries;
use memscope_core::studies::flips::Flips;
use memscope_core::studies::intervention::{InterventionResult, smallest};
use memscope_core::studies::ranks::RankStudy;
use memscope_core::studies::sensitivity::SensitivityStudy;
use memscope_core::studies::sweep::Sweep;

pub use prompt::{Prompt, PromptKind};

/// Runs kept in the history.
pub const HISTORY: usize = 12;

/// Rows PgUp and PgDn move.
const PAGE: isize = 10;
/// Farther than any list is long: Home and End.
const FAR: isize = 1 << 20;

/// The bar scales `b` steps through, in points (half a bar's width); `None`: the smallest of
/// 2, 5, 10, 25, 50, 100 that fits the result (bars of different runs then differ in scale).
pub const BAR_SCALES: [Option<f64>; 7] =
    [Some(100.0), Some(50.0), Some(25.0), Some(10.0), Some(5.0), Some(2.0), None];

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
    /// The next bar scale of [`BAR_SCALES`].
    Scale,
    Show(View),
    /// Open the last finished mitigation run in the explorer.
    Open,
    /// Pin the shown intervention (or unpin it), to see it beside the next.
    Pin,
    /// Switch between the two bundled demos (the ResNet and the ViT, on the same data).
    Demo,
    /// Start the guided tour, or end it.
    Tour,
    /// The tour's next / previous step.
    TourNext,
    TourPrev,
    /// Open a prompt: `:` jump to an epoch, `/` filter the layers.
    Ask(PromptKind),
    /// A click (column, row) and the wheel (row delta) at a screen position.
    Click(u16, u16),
    Wheel(u16, u16, isize),
}

/// What the loop does after an update. A few per key press, never stored: a `Job` inline
/// costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Effect {
    Submit(Job),
    Cancel,
    Export,
    /// Reload the explorer on this experiment (a finished mitigation run).
    Open(PathBuf),
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
    /// The experiment explored (exports name its folder, checkpoints and their hashes).
    pub experiment: Experiment,
    pub name: String,
    pub epochs: Vec<EpochRow>,
    pub layers: Vec<LayerInfo>,
    pub groups: Vec<GroupInfo>,
    pub focus: Panel,
    pub epoch: usize,
    pub layer: usize,
    pub group: usize,
    pub field: usize,
    pub form: Form,
    pub view: View,
    /// Position in [`BAR_SCALES`]: ±100 points unless changed, the same for every run.
    pub scale: usize,
    /// Rows scrolled in the results panel (reset when its content changes).
    pub scroll: usize,
    pub baseline: Option<(usize, Split, AccuracyReport)>,
    pub result: Option<InterventionResult>,
    /// Most recent first.
    pub history: Vec<InterventionResult>,
    pub ranks: Option<RankStudy>,
    pub sensitivity: Option<SensitivityStudy>,
    /// The last layer sweep (the Sweep view).
    pub sweep: Option<Sweep>,
    /// The last epoch series (the Epochs view).
    pub epoch_series: Option<EpochSeries>,
    /// The examples of a group an intervention flipped (the Images view).
    pub flips: Option<Flips>,
    /// A result pinned with `p`, drawn beside the current one.
    pub pinned: Option<InterventionResult>,
    /// The guided tour's current step, while it runs.
    pub tour: Option<usize>,
    /// An open prompt (`:` epoch, `/` layer filter) and what has been typed.
    pub prompt: Option<Prompt>,
    /// Layers whose name contains this are listed (empty: all).
    pub layer_filter: String,
    /// Where each panel was last drawn and the list row at its top (for mouse clicks).
    pub hitboxes: std::cell::RefCell<Vec<(Panel, ratatui::layout::Rect, usize)>>,
    /// Which rewinding distance the sensitivity view shows.
    pub distance: usize,
    pub running: Option<Running>,
    /// Time from submission to result of the last finished job.
    pub last_elapsed: Option<Duration>,
    pub status: Status,
    /// How the data differs from the experiment's whole data set; shown on the status line.
    pub data_changes: DataChanges,
    /// The Mitigation view: its form, the run, the comparison.
    pub mitigation: Mitigation,
    /// Where `e` writes, absolute (the config's `export_dir`, else the current directory).
    pub export_dir: PathBuf,
    pub help: bool,
    /// Rows the help overlay is scrolled.
    pub help_scroll: usize,
    pub quit: bool,
}

impl App {
    pub fn new(experiment: &Experiment, dataset: &GroupedDataset, layers: Vec<LayerInfo>) -> App {
        let weights = dataset.train_proportions();
        let epochs: Vec<EpochRow> = experiment
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
            .collect();
        let groups = group_infos(dataset);
        // Start on the last epoch, the smallest training group (the engine's default), the
        // first layer.
        let group = smallest(&dataset.train_group_counts());
        App {
            experiment: experiment.clone(),
            name: experiment.manifest.name.clone(),
            epoch: epochs.len().saturating_sub(1),
            epochs,
            layers,
            groups,
            focus: Panel::Form,
            layer: 0,
            group,
            field: 0,
            form: Form::default(),
            view: View::Bars,
            scale: 0,
            scroll: 0,
            baseline: None,
            result: None,
            history: Vec::new(),
            ranks: None,
            sensitivity: None,
            sweep: None,
            epoch_series: None,
            flips: None,
            pinned: None,
            tour: None,
            prompt: None,
            layer_filter: String::new(),
            hitboxes: Default::default(),
            distance: 0,
            running: None,
            last_elapsed: None,
            status: Status::Idle,
            data_changes: dataset.changes.clone(),
            mitigation: Mitigation::new(Mitigation::default_runs_dir()),
            export_dir: std::path::absolute(".").unwrap_or_else(|_| PathBuf::from(".")),
            help: false,
            help_scroll: 0,
            quit: false,
        }
    }

    pub fn epoch_number(&self) -> usize {
        self.epochs.get(self.epoch).map(|e| e.epoch).unwrap_or(0)
    }

    pub fn layer_name(&self) -> &str {
        self.layers.get(self.layer).map(|l| l.name.as_str()).unwrap_or("")
    }

    /// Whether the result shown was run with other settings than the form's now.
    pub fn result_stale(&self) -> bool {
        self.result.as_ref().is_some_and(|r| r.spec != self.spec())
    }

    pub fn group_label(&self) -> String {
        format!("G{}", self.group)
    }

    fn move_in(&mut self, delta: isize) -> Vec<Effect> {
        let step = |value: &mut usize, len: usize| {
            if len > 0 {
                *value = (*value as isize + delta).clamp(0, len as isize - 1) as usize;
            }
        };
        match self.focus {
            Panel::Epochs => {
                let mut to = self.epoch;
                step(&mut to, self.epochs.len());
                return self.select_epoch(to);
            }
            Panel::Layers => {
                let shown = self.shown_layers();
                if !shown.is_empty() {
                    let at = shown.iter().position(|&l| l >= self.layer).unwrap_or(0) as isize;
                    self.layer = shown[(at + delta).clamp(0, shown.len() as isize - 1) as usize];
                }
            }
            Panel::Groups => {
                let before = self.group;
                step(&mut self.group, self.groups.len());
                if self.group != before {
                    return vec![Effect::Submit(self.prepare_job())];
                }
            }
            Panel::Form if self.view == View::Mitigation => {
                step(&mut self.mitigation.field, super::mitigation::FIELDS.len())
            }
            Panel::Form => self.field = self.form.move_field(self.field, delta),
            // The drawing clamps the scroll to the last page.
            Panel::Results => self.scroll = (self.scroll as isize + delta).clamp(0, FAR) as usize,
        }
        Vec::new()
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

    fn apply(&mut self, action: Action) -> Vec<Effect> {
        if self.help && !matches!(action, Action::Quit) {
            // ↑↓ PgUp PgDn scroll the help where it does not fit; any other key closes it.
            let delta = match action {
                Action::Up => -1,
                Action::Down => 1,
                Action::Wheel(_, _, d) => d.signum(),
                Action::PageUp => -PAGE,
                Action::PageDown => PAGE,
                _ => 0,
            };
            if delta == 0 {
                self.help = false;
                self.help_scroll = 0;
            } else {
                self.help_scroll = (self.help_scroll as isize + delta).clamp(0, FAR) as usize;
            }
            return Vec::new();
        }
        match action {
            Action::Quit => {
                self.quit = true;
                vec![Effect::Cancel]
            }
            Action::Help => {
                self.help = true;
                Vec::new()
            }
            Action::NextPanel | Action::PrevPanel => {
                let i = PANELS.iter().position(|&p| p == self.focus).unwrap_or(0) as isize;
                let d = if action == Action::NextPanel { 1 } else { -1 };
                self.focus = PANELS[(i + d).rem_euclid(PANELS.len() as isize) as usize];
                Vec::new()
            }
            Action::Up => self.move_in(-1),
            Action::Down => self.move_in(1),
            Action::PageUp => self.move_in(-PAGE),
            Action::PageDown => self.move_in(PAGE),
            Action::First => self.move_in(-FAR),
            Action::Last => self.move_in(FAR),
            Action::Left | Action::Right => {
                let d = if action == Action::Right { 1 } else { -1 };
                match self.focus {
                    Panel::Form if self.view == View::Mitigation => {
                        let m = &mut self.mitigation;
                        m.form.step(super::mitigation::FIELDS[m.field], d);
                        Vec::new()
                    }
                    Panel::Results
                        if self.view == View::Mitigation && self.mitigation.comparison.is_some() =>
                    {
                        self.mitigation.flip_page();
                        Vec::new()
                    }
                    Panel::Form => {
                        let field = FIELDS[self.field];
                        let split = self.form.split();
                        self.form.step(field, d);
                        if self.form.split() != split {
                            let mut effects = vec![Effect::Submit(self.baseline_job())];
                            effects.extend(self.view_job().map(Effect::Submit));
                            return effects;
                        }
                        Vec::new()
                    }
                    Panel::Results if self.view == View::Sensitivity => {
                        let n = self.sensitivity.as_ref().map(|s| s.spec.epochs_back.len()).unwrap_or(0);
                        if n > 0 {
                            self.distance = (self.distance as isize + d).clamp(0, n as isize - 1) as usize;
                        }
                        Vec::new()
                    }
                    // ←→ change a value (a form field, a distance, a page); views switch with
                    // their numbers only.
                    _ => Vec::new(),
                }
            }
            Action::Show(view) => self.show(view),
            Action::Run => match self.view {
                View::Ranks => vec![Effect::Submit(self.rank_job())],
                View::Sensitivity => vec![Effect::Submit(self.sensitivity_job())],
                View::Mitigation => self.start_mitigation(),
                View::Sweep => vec![Effect::Submit(Job::Sweep(self.sweep_spec()))],
                View::Epochs => vec![Effect::Submit(Job::Epochs(self.epoch_series_spec()))],
                View::Images => vec![Effect::Submit(Job::Flips(self.flips_spec()))],
                _ => vec![Effect::Submit(Job::Intervene(self.spec()))],
            },
            Action::Cancel => {
                if self.running.is_some() {
                    self.status = Status::Cancelling;
                    vec![Effect::Cancel]
                } else {
                    Vec::new()
                }
            }
            Action::Export => vec![Effect::Export],
            Action::Scale => {
                self.scale = (self.scale + 1) % BAR_SCALES.len();
                Vec::new()
            }
            Action::Open => self.open_run(),
            Action::Demo => match memscope_core::experiment::demo::other(&self.experiment.dir) {
                Ok(dir) => vec![Effect::Open(dir)],
                Err(e) => {
                    self.status = Status::Error(format!("{e:#}"));
                    Vec::new()
                }
            },
            Action::Pin => {
                self.pinned = match (&self.pinned, &self.result) {
                    (Some(p), Some(r)) if p == r => None,
                    (_, Some(r)) => Some(r.clone()),
                    (_, None) => {
                        self.status = Status::Note("nothing to pin yet: run an intervention first".into());
                        None
                    }
                };
                Vec::new()
            }
            Action::Tour => {
                if self.tour.is_some() {
                    self.tour = None;
                    self.status = Status::Note("tour ended · t starts it again".into());
                    Vec::new()
                } else {
                    self.tour_step(0)
                }
            }
            Action::TourNext | Action::TourPrev => match self.tour {
                Some(at) => {
                    let to = if action == Action::TourNext { at + 1 } else { at.saturating_sub(1) };
                    if to >= tour::STEPS.len() {
                        self.tour = None;
                        self.status = Status::Note("end of the tour · t starts it again".into());
                        Vec::new()
                    } else {
                        self.tour_step(to)
                    }
                }
                None => Vec::new(),
            },
            Action::Ask(kind) => {
                self.prompt = Some(Prompt { kind, text: String::new() });
                if kind == PromptKind::Filter {
                    self.focus = Panel::Layers;
                }
                Vec::new()
            }
            Action::Click(x, y) => self.click(x, y),
            Action::Wheel(x, y, delta) => {
                if let Some(panel) = self.panel_at(x, y) {
                    self.focus = panel;
                }
                self.move_in(delta)
            }
        }
    }

    /// Positions in `layers` of the layers the filter leaves listed, in order.
    pub fn shown_layers(&self) -> Vec<usize> {
        let filter = self.layer_filter.to_lowercase();
        (0..self.layers.len()).filter(|&i| self.layers[i].name.to_lowercase().contains(&filter)).collect()
    }

    fn show(&mut self, view: View) -> Vec<Effect> {
        if view != self.view {
            self.scroll = 0;
        }
        self.view = view;
        if view == View::Sensitivity && self.epoch_number() < 5 {
            self.status =
                Status::Note("sensitive layers need an epoch >= 5 (the shortest rewind is 5 epochs)".into());
        }
        self.view_job().map(Effect::Submit).into_iter().collect()
    }

    /// Applies a message from the worker; returns what follows from it (a finished run is
    /// compared).
    pub fn on_event(&mut self, event: Event) -> Vec<Effect> {
        match event {
            Event::Started { id, label } => {
                self.running = Some(Running { id, label, started: Instant::now(), done: 0, total: 0 });
            }
            Event::Progress { id, done, total } => {
                if let Some(r) = self.running.as_mut().filter(|r| r.id == id) {
                    r.done = done;
                    r.total = total;
                }
            }
            Event::Mitigation { id, update } => self.mitigation.on_update(id, update),
            Event::Finished { id, output, elapsed } => {
                self.finish(id);
                self.last_elapsed = Some(elapsed);
                match output {
                    Output::Baseline { epoch, split, report } => self.baseline = Some((epoch, split, report)),
                    Output::Intervention(result) => {
                        self.status = Status::Done { what: super::ui::short(&result), elapsed };
                        self.history.insert(0, (*result).clone());
                        self.history.truncate(HISTORY);
                        self.result = Some(*result);
                        self.scroll = 0;
                    }
                    Output::Ranks(study) => {
                        self.status = Status::Done { what: "rank histograms".into(), elapsed };
                        self.ranks = Some(*study);
                    }
                    Output::Prepared => {}
                    Output::Sensitivity(study) => {
                        self.status = Status::Done { what: "sensitive layers".into(), elapsed };
                        self.distance = self.distance.min(study.spec.epochs_back.len().saturating_sub(1));
                        self.sensitivity = Some(*study);
                    }
                    Output::Epochs(series) => {
                        self.status = Status::Done {
                            what: format!("series of {} epochs", series.points.len()),
                            elapsed,
                        };
                        self.epoch_series = Some(*series);
                        self.scroll = 0;
                    }
                    Output::Flips(flips) => {
                        self.status = Status::Done {
                            what: format!(
                                "G{}: {} broken, {} fixed of {}",
                                flips.spec.group,
                                flips.broken(),
                                flips.fixed(),
                                flips.examples.len()
                            ),
                            elapsed,
                        };
                        self.flips = Some(*flips);
                        self.scroll = 0;
                    }
                    Output::Sweep(sweep) => {
                        self.status =
                            Status::Done { what: format!("sweep of {} layers", sweep.rows.len()), elapsed };
                        self.sweep = Some(*sweep);
                        self.scroll = 0;
                    }
                    Output::Mitigated(experiment) => return self.mitigated(&experiment),
                    Output::Comparison(comparison) => {
                        self.status = Status::Done { what: "comparison".into(), elapsed };
                        self.mitigation.on_comparison(*comparison);
                    }
                }
            }
            Event::Cancelled { id } => {
                self.finish(id);
                self.status = if self.mitigation.on_stopped(id, RunState::Cancelled) {
                    Status::Note("mitigation cancelled; nothing was written".into())
                } else {
                    Status::Cancelled
                };
            }
            Event::Failed { id, message } => {
                self.finish(id);
                self.mitigation.on_stopped(id, RunState::Failed(message.clone()));
                self.status = Status::Error(message);
            }
        }
        Vec::new()
    }

    fn finish(&mut self, id: u64) {
        if self.running.as_ref().is_some_and(|r| r.id == id) {
            self.running = None;
        }
    }
}
