//! The explorer: a full-screen terminal UI over the engine. The worker thread owns the
//! model; this thread reads keys, turns them into actions through the keymap, applies them
//! to the state and draws.
//!
//! State (`app` and its views' states, `form`, `mitigation`, `status`) never imports the
//! views (`ui`); both use `text` for numbers in words. Drawing reads the state and returns
//! where the panels went (`hitmap`), which the loop keeps for the mouse.

pub mod app;
pub mod caption;
mod export;
pub mod form;
pub mod hitmap;
pub mod hooks;
pub mod keymap;
pub mod mitigation;
pub mod runs;
pub mod status;
pub mod text;
pub mod theme;
pub mod ui;
pub mod worker;

use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use burn::prelude::*;
use crossterm::event::{self, Event as TermEvent};
use ratatui::DefaultTerminal;

use app::{App, Effect};
use hitmap::HitMap;
use hooks::LoopHook;
use status::Status;
use theme::{Config, Theme};
use worker::{Job, Worker};

pub use export::{export, report as write_report, verdicts as report_verdicts};

use memscope_core::experiment::{Experiment, demo};
use memscope_core::session::Session;

/// Leaves the screen as it was: mouse reporting off, ratatui's restore (raw mode off, the
/// main screen back), and the cursor shown. ratatui's restore leaves the cursor to the
/// terminal's `Drop`, which never runs when a signal ends the process. Safe to call twice.
pub fn restore() {
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    ratatui::restore();
    let _ = crossterm::execute!(std::io::stdout(), crossterm::cursor::Show);
}

/// Opens the explorer on `dir` (default: the bundled demo) with `activation_budget` bytes for
/// cached activations; `hook` (measurement and tests only, see [`hooks`]) watches the loop.
/// `opening` reports building a pixel cache, before the screen takes over; `presenter` turns
/// on the high-contrast theme.
pub fn run(
    dir: Option<PathBuf>,
    device: Device,
    budgets: memscope_core::session::Budgets,
    options: &memscope_core::data::OpenOptions,
    presenter: bool,
    mut hook: Option<Box<dyn LoopHook>>,
    opening: &mut dyn memscope_core::jobs::Progress,
) -> Result<()> {
    if !std::io::stdout().is_terminal() {
        bail!(
            "the explorer needs a terminal and standard output is not one; the same results come from \
             `memscope intervene`, `memscope ranks`, `memscope sensitivity` and `memscope info` (see memscope --help)"
        );
    }
    if std::env::var("TERM").is_ok_and(|t| t == "dumb" || t.is_empty()) {
        bail!(
            "the explorer needs a capable terminal and TERM is '{}'; set TERM (e.g. xterm-256color), or use \
             `memscope intervene`, `memscope ranks`, `memscope sensitivity` and `memscope info`",
            std::env::var("TERM").unwrap_or_default()
        );
    }
    let mut config = match Config::locate()? {
        Some(path) => Config::load(&path)?,
        None => Config::default(),
    };
    config.presenter |= presenter;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let theme = Theme::new(&config, no_color)?;
    let keymap = config.keymap().map_err(|e| anyhow!(e))?;
    let dir = match dir {
        Some(dir) => dir,
        None => demo::locate()?,
    };
    let experiment = Experiment::open(&dir)?;
    let dataset = experiment.manifest.dataset.open_with(&experiment.dir, options, opening)?;
    // Listed before the screen takes over; the status line keeps the count.
    if let Some(listing) = dataset.changes.skipped_listing(&dataset.name) {
        eprintln!("{listing}");
    }
    let mut session = Session::new(experiment.clone(), dataset.clone(), device)?;
    session.set_budgets(budgets);
    let mut app = App::new(&experiment, &dataset, session.layers().to_vec());
    if let Some(dir) = &config.export_dir {
        app.export_dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
    }
    app.keys = keymap;
    app.device = memscope_core::device::describe::current();
    let mut worker = Worker::spawn(session);
    worker.submit(app.baseline_job());
    worker.submit(app.prepare_job());
    for job in hook.as_mut().map(|h| h.start(&app)).unwrap_or_default() {
        worker.submit(job);
    }

    let result = {
        let mut terminal = ratatui::init(); // restores the terminal on panic too
        // SIGTERM, SIGHUP (a dropped SSH connection) and SIGINT restore it too, until it is
        // restored here.
        let _restore = memscope_core::util::interrupt::on_interrupt(restore);
        // Clicks and the wheel; a terminal that cannot report them just sends none.
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture);
        restore_on_panic();
        let result = event_loop(&mut terminal, &mut app, &mut worker, &theme, hook.as_deref_mut());
        restore();
        result
    };
    if let Some(hook) = hook.as_mut() {
        hook.after_exit();
    }
    leave(worker, result)
}

/// Quitting never waits for a job: a worker still computing ends with the process, at once
/// (after `result`'s error, said as `main` says it); an idle one is joined and `result` returned.
fn leave(worker: Worker, result: Result<()>) -> Result<()> {
    if !worker.quit() {
        if let Err(e) = &result {
            eprintln!("memscope: error: {e:#}");
        }
        memscope_core::util::interrupt::exit_now(i32::from(result.is_err()));
    }
    result
}

/// A panic on the worker thread is caught there and shown as an error; only a panic of this
/// thread tears the screen down.
fn restore_on_panic() {
    let restore_and_report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() != Some(worker::WORKER_THREAD) {
            let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
            restore_and_report(info);
        }
    }));
}

fn event_loop(
    terminal: &mut DefaultTerminal,
    app: &mut App,
    worker: &mut Worker,
    theme: &Theme,
    mut hook: Option<&mut (dyn LoopHook + 'static)>,
) -> Result<()> {
    let frame_interval = Duration::from_millis(33);
    let mut last_draw = Instant::now() - frame_interval;
    let mut dirty = true;
    let mut hits = HitMap::default();
    // `o`, `d`: the experiment to open once the worker's job has stopped.
    let mut opening: Option<Experiment> = None;
    while !app.quit {
        let since = last_draw.elapsed();
        if dirty && since >= frame_interval || app.running.is_some() && since >= Duration::from_millis(100) {
            terminal.draw(|frame| hits = ui::draw(frame, app, theme)).context("cannot draw")?;
            last_draw = Instant::now();
            dirty = false;
            if let Some(hook) = hook.as_deref_mut()
                && hook.after_frame(app) == ControlFlow::Break(())
            {
                break;
            }
        }
        if event::poll(Duration::from_millis(15)).context("cannot read the terminal")? {
            // Any key and a resize redraw; the mouse only when it does something.
            let (action, redraw) = match event::read().context("cannot read the terminal")? {
                TermEvent::Key(key) => (app.keys.action(key, app.mode()), true),
                TermEvent::Mouse(mouse) => hits.action(mouse).map_or((None, false), |a| (Some(a), true)),
                TermEvent::Resize(..) => (None, true),
                _ => (None, false),
            };
            for effect in action.map(|a| app.update(a)).unwrap_or_default() {
                apply(effect, app, worker, &mut opening);
            }
            dirty |= redraw;
        }
        // Read before the events: every event of a thread that has ended is then in hand.
        let ended = worker.has_ended();
        while let Ok(event) = worker.events.try_recv() {
            for effect in app.on_event(event) {
                apply(effect, app, worker, &mut opening);
            }
            dirty = true;
        }
        if ended && let Some(experiment) = opening.take() {
            if let Err(e) = open(experiment, app, worker) {
                app.status = Status::Error(format!("{e:#}"));
            }
            dirty = true;
        }
    }
    Ok(())
}

fn apply(effect: Effect, app: &mut App, worker: &mut Worker, opening: &mut Option<Experiment>) {
    match effect {
        Effect::Submit(job) => {
            if let Job::Intervene(_) = job {
                app.status = Status::Queued;
            }
            worker.submit(job);
        }
        Effect::Cancel => worker.cancel(),
        Effect::SaveReport(report) => {
            app.status = match export::report(&report, &app.export_dir) {
                Ok(page) => Status::Reported { page, verdicts: export::verdicts(&report) },
                Err(e) => Status::Error(format!("{e:#}")),
            }
        }
        Effect::Export => {
            app.status = match export(app, &app.export_dir) {
                Ok(stem) => Status::Exported { svg: stem.with_extension("svg").is_file(), stem },
                Err(e) => Status::Error(format!("{e:#}")),
            }
        }
        Effect::Open(dir) => match stop_to_open(&dir, app, worker) {
            Ok(experiment) => *opening = Some(experiment),
            Err(e) => app.status = Status::Error(format!("{e:#}")),
        },
    }
}

/// `o`, `d`: checks that the experiment in `dir` shares the explored data set, then stops the
/// worker, which returns at once: its job ends after its current batch (the gauge says so
/// meanwhile), and the loop opens the experiment once the thread has ended.
fn stop_to_open(dir: &Path, app: &mut App, worker: &mut Worker) -> Result<Experiment> {
    let experiment = Experiment::open(dir)?;
    let current = &app.experiment.manifest;
    if experiment.manifest.dataset != current.dataset || experiment.manifest.groups != current.groups {
        bail!(
            "{} was trained on other data than {}; open it with `memscope explore --experiment {}`",
            dir.display(),
            current.name,
            dir.display()
        );
    }
    worker.stop();
    app.opening = Some(experiment.manifest.name.clone());
    app.status = Status::Note(format!("opening {}…", experiment.manifest.name));
    Ok(experiment)
}

/// Reloads the explorer on `experiment` once the stopped worker's thread has ended: it hands
/// its session back, and a new worker starts on `experiment` with the same data.
fn open(experiment: Experiment, app: &mut App, worker: &mut Worker) -> Result<()> {
    app.opening = None;
    let old = worker.take_session().context("the worker thread stopped")?;
    let session = match Session::new(experiment.clone(), old.dataset().clone(), old.device().clone()) {
        Ok(mut session) => {
            session.set_budgets(old.budgets());
            session
        }
        Err(e) => {
            *worker = Worker::spawn(old);
            return Err(e);
        }
    };
    app.reopen(&experiment, session.dataset(), session.layers().to_vec());
    *worker = Worker::spawn(session);
    worker.submit(app.baseline_job());
    worker.submit(app.prepare_job());
    Ok(())
}
