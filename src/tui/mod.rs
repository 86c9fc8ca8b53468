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
    let mut worker = Worker::spawn(session);
    worker.submit(app.baseline_job());
    worker.submit(app.prepare_job());
    for job in hook.as_mut().map(|h| h.start(&app)).unwrap_or_default() {
        worker.submit(job);
    }

    let mut terminal = ratatui::init(); // restores the terminal on panic too
    // SIGTERM, SIGHUP (a dropped SSH connection) and SIGINT restore it too.
    let _restore = memscope_core::util::interrupt::on_interrupt(restore);
    // Clicks and the wheel; a terminal that cannot report them just sends none.
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture);
    // A panic on the worker thread is caught there and shown as an error; only a panic of
    // this thread tears the screen down.
    let restore_and_report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() != Some(worker::WORKER_THREAD) {
            let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
            restore_and_report(info);
        }
    }));
    let result = event_loop(&mut terminal, &mut app, &mut worker, &theme, hook.as_deref_mut());
    restore();
    if let Some(hook) = hook.as_mut() {
        hook.after_exit();
    }
    result
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
                apply(effect, app, worker);
            }
            dirty |= redraw;
        }
        while let Ok(event) = worker.events.try_recv() {
            for effect in app.on_event(event) {
                apply(effect, app, worker);
            }
            dirty = true;
        }
    }
    Ok(())
}

fn apply(effect: Effect, app: &mut App, worker: &mut Worker) {
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
        Effect::Open(dir) => {
            if let Err(e) = open(&dir, app, worker) {
                app.status = Status::Error(format!("{e:#}"));
            }
        }
    }
}

/// Reloads the explorer on the experiment in `dir`, which must share the explored data set:
/// the worker hands its session back (its jobs are dropped), and a new one starts on `dir`.
fn open(dir: &Path, app: &mut App, worker: &mut Worker) -> Result<()> {
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
    let old = worker.stop().context("the worker thread stopped")?;
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
