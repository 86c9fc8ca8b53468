//! The explorer: a full-screen terminal UI over the engine. The worker thread owns the
//! model; this thread reads keys, applies them to the state and draws.

pub mod app;
pub mod form;
pub mod theme;
pub mod ui;
pub mod worker;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use crossterm::event::{self, Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::DefaultTerminal;

use app::{Action, App, Effect, View};
use theme::{Config, Keys, Theme};
use worker::{Job, Worker};

use crate::experiment::{Experiment, demo};
use crate::session::Session;
use crate::util::fsx::write_atomic;

/// Maps a key to an action (`None`: the key does nothing).
pub fn action_for(key: KeyEvent, keys: &Keys) -> Option<Action> {
    if key.kind != KeyEventKind::Press {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    Some(match key.code {
        KeyCode::Tab => Action::NextPanel,
        KeyCode::BackTab => Action::PrevPanel,
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::Left | KeyCode::Char('h') => Action::Left,
        KeyCode::Right | KeyCode::Char('l') => Action::Right,
        KeyCode::Enter => Action::Run,
        KeyCode::Esc => Action::Cancel,
        KeyCode::Char(c) if c == keys.quit => Action::Quit,
        KeyCode::Char(c) if c == keys.help => Action::Help,
        KeyCode::Char(c) if c == keys.export => Action::Export,
        KeyCode::Char(c @ '1'..='5') => Action::Show(app::VIEWS[(c as u8 - b'1') as usize].0),
        _ => return None,
    })
}

/// For `memscope bench`: quit by itself after the first frame, or after the first
/// intervention's result is on screen (the default request, submitted at start).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchExit {
    Frame,
    Result,
}

/// Opens the explorer on `dir` (default: the bundled demo) with `activation_budget` bytes for
/// cached activations.
pub fn run(
    dir: Option<PathBuf>,
    device: Device,
    activation_budget: usize,
    bench_exit: Option<BenchExit>,
) -> Result<()> {
    if !std::io::stdout().is_terminal() {
        bail!(
            "the explorer needs a terminal and standard output is not one; the same results come from \
             `memscope intervene`, `memscope ranks`, `memscope sensitivity` and `memscope info` (see memscope --help)"
        );
    }
    let config = Config::load()?;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let theme = Theme::new(&config, no_color)?;
    let dir = match dir {
        Some(dir) => dir,
        None => demo::locate()?,
    };
    let experiment = Experiment::open(&dir)?;
    let dataset = experiment.manifest.dataset.load()?;
    let mut session = Session::new(experiment.clone(), dataset.clone(), device)?;
    session.set_activation_budget(activation_budget);
    let mut app = App::new(&experiment, &dataset, session.layers().to_vec());
    let mut worker = Worker::spawn(session);
    worker.submit(app.baseline_job());
    worker.submit(app.prepare_job());
    if bench_exit == Some(BenchExit::Result) {
        worker.submit(Job::Intervene(app.spec()));
    }

    let mut terminal = ratatui::init(); // restores the terminal on panic too
    // A panic on the worker thread is caught there and shown as an error; only a panic of
    // this thread tears the screen down.
    let restore_and_report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() != Some(worker::WORKER_THREAD) {
            restore_and_report(info);
        }
    }));
    let result = event_loop(&mut terminal, &mut app, &mut worker, &theme, &config.keys, bench_exit);
    ratatui::restore();
    if bench_exit.is_some() {
        // Read by `memscope bench` from the terminal's output.
        let peak = crate::util::memory::megabytes(crate::util::memory::Memory::PeakResident);
        println!("memscope-bench: peak_rss_mb={:.1}", peak.unwrap_or(0.0));
    }
    result
}

fn event_loop(
    terminal: &mut DefaultTerminal,
    app: &mut App,
    worker: &mut Worker,
    theme: &Theme,
    keys: &Keys,
    bench_exit: Option<BenchExit>,
) -> Result<()> {
    let frame_interval = Duration::from_millis(33);
    let mut last_draw = Instant::now() - frame_interval;
    let mut dirty = true;
    let mut drawn_once = false;
    while !app.quit {
        let since = last_draw.elapsed();
        if dirty && since >= frame_interval || app.running.is_some() && since >= Duration::from_millis(100) {
            terminal.draw(|frame| ui::draw(frame, app, theme, keys)).context("cannot draw")?;
            last_draw = Instant::now();
            dirty = false;
            if !drawn_once && std::env::var_os("MEMSCOPE_TEST_PANIC").is_some() {
                panic!(
                    "MEMSCOPE_TEST_PANIC is set: panicking after the first frame to test terminal restoration"
                );
            }
            drawn_once = true;
            match bench_exit {
                Some(BenchExit::Frame) => break,
                Some(BenchExit::Result) if app.result.is_some() => break,
                _ => {}
            }
        }
        if event::poll(Duration::from_millis(15)).context("cannot read the terminal")? {
            match event::read().context("cannot read the terminal")? {
                TermEvent::Key(key) => {
                    if let Some(action) = action_for(key, keys) {
                        for effect in app.update(action) {
                            apply(effect, app, worker);
                        }
                    }
                    dirty = true;
                }
                TermEvent::Resize(..) => dirty = true,
                _ => {}
            }
        }
        while let Ok(event) = worker.events.try_recv() {
            app.on_event(event);
            dirty = true;
        }
    }
    Ok(())
}

fn apply(effect: Effect, app: &mut App, worker: &mut Worker) {
    match effect {
        Effect::Submit(job) => {
            if let Job::Intervene(_) = job {
                app.status = "queued".into();
            }
            worker.submit(job);
        }
        Effect::Cancel => worker.cancel(),
        Effect::Export => {
            app.status = match export(app, Path::new(".")) {
                Ok(path) => format!("exported {}", path.display()),
                Err(e) => format!("error: {e:#}"),
            }
        }
    }
}

/// Writes the current view's result as JSON into `dir`; returns the file written.
pub fn export(app: &App, dir: &Path) -> Result<PathBuf> {
    let stamp =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (what, json) = match app.view {
        View::Ranks => ("ranks", app.ranks.as_ref().map(serde_json::to_string_pretty)),
        View::Sensitivity => ("sensitivity", app.sensitivity.as_ref().map(serde_json::to_string_pretty)),
        _ => ("intervention", app.result.as_ref().map(serde_json::to_string_pretty)),
    };
    let Some(json) = json else { bail!("nothing to export yet: run something first") };
    let path = dir.join(format!("memscope-{what}-epoch{}-{stamp}.json", app.epoch_number()));
    write_atomic(&path, json.context("cannot serialise the result")?.as_bytes())?;
    Ok(path)
}
