//! The explorer without a terminal: key → state transitions, whole screens through
//! ratatui's TestBackend, and a real worker's result reaching the screen.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use memscope::tui::app::{Action, App, Edit, Effect, Mode, Panel, PromptKind, View};
use memscope::tui::form::Field;
use memscope::tui::hitmap::HitMap;
use memscope::tui::keymap::{BINDINGS, Keymap, Keys, PROMPT_BINDINGS};
use memscope::tui::mitigation::{EpochPoint, Page, RunState, Update};
use memscope::tui::status::{Status, Tone};
use memscope::tui::theme::{Config, Theme};
use memscope::tui::ui;
use memscope::tui::worker::{Event, Job, Output, Worker};
use memscope_core::data::Split;
use memscope_core::device::DeviceSpec;
use memscope_core::eval::{AccuracyReport, GroupAccuracy};
use memscope_core::experiment::Experiment;
use memscope_core::experiment::lineage::Method;
use memscope_core::mitigate::compare::{Comparison, ExperimentRow, Selected, Selection};
use memscope_core::neurons::NeuronId;
use memscope_core::session::Session;
use memscope_core::studies::intervention::{InterventionResult, InterventionSpec, SelectedNeuron};
use memscope_core::studies::sensitivity::{
    SensitivityRow, SensitivitySpec, SensitivityStudy, threshold_in_examples,
};
use memscope_core::studies::{Summary, group_changes};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/checkpoints/spurious-digits");

fn session() -> Session {
    let exp = Experiment::open(Path::new(DEMO)).unwrap();
    let data = exp.manifest.dataset.load().unwrap();
    Session::new(exp, data, DeviceSpec::Cpu.device().unwrap()).unwrap()
}

fn app_for(session: &Session) -> App {
    App::new(session.experiment(), session.dataset(), session.layers().to_vec())
}

fn render(app: &App, width: u16, height: u16) -> String {
    draw(app, width, height).0
}

/// The screen as text, and where the draw put each panel.
fn draw(app: &App, width: u16, height: u16) -> (String, HitMap) {
    let theme = Theme::new(&Config::default(), true).unwrap();
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    let mut hits = HitMap::default();
    terminal.draw(|f| hits = ui::draw(f, app, &theme)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    let screen = (0..height)
        .map(|y| {
            (0..width).map(|x| buffer[(x, y)].symbol().to_string()).collect::<String>().trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n");
    (screen, hits)
}

/// A key pressed, through the app's keymap (the default unless a test rebinds it), as the loop
/// sends it.
fn press(app: &mut App, code: KeyCode) -> Vec<Effect> {
    let action = app.keys.action(KeyEvent::new(code, KeyModifiers::NONE), app.mode());
    action.map(|a| app.update(a)).unwrap_or_default()
}

/// Runs `job` on a real worker and feeds every event to `app` until it finishes; returns
/// what the app asks for on the last.
fn run_job(worker: &mut Worker, app: &mut App, job: Job) -> Vec<Effect> {
    let id = worker.submit(job);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let event = worker.events.recv_timeout(deadline - Instant::now()).expect("worker answered");
        let done = matches!(&event, Event::Finished { id: i, .. } | Event::Failed { id: i, .. } if *i == id);
        if let Event::Failed { message, .. } = &event {
            panic!("job failed: {message}");
        }
        let effects = app.on_event(event);
        if done {
            return effects;
        }
    }
}

fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"in \d+ ms", "in [elapsed] ms");
    settings
}

#[test]
fn keys_map_to_actions() {
    let keys = Keymap::default();
    let key = |code| keys.action(KeyEvent::new(code, KeyModifiers::NONE), Mode::Normal);
    assert_eq!(key(KeyCode::Tab), Some(Action::NextPanel));
    assert_eq!(key(KeyCode::BackTab), Some(Action::PrevPanel));
    assert_eq!(key(KeyCode::Char('j')), Some(Action::Down));
    assert_eq!(key(KeyCode::Char('h')), Some(Action::Left));
    assert_eq!(key(KeyCode::Enter), Some(Action::Run));
    assert_eq!(key(KeyCode::Esc), Some(Action::Cancel));
    assert_eq!(key(KeyCode::Char('?')), Some(Action::Help));
    assert_eq!(key(KeyCode::Char('3')), Some(Action::Show(View::Neurons)));
    assert_eq!(key(KeyCode::Char('6')), Some(Action::Show(View::Mitigation)));
    assert_eq!(key(KeyCode::Char('7')), Some(Action::Show(View::Sweep)));
    assert_eq!(key(KeyCode::Char('8')), Some(Action::Show(View::Epochs)));
    assert_eq!(key(KeyCode::Char('9')), Some(Action::Show(View::Images)));
    assert_eq!(key(KeyCode::Char('p')), Some(Action::Pin));
    assert_eq!(key(KeyCode::Char('t')), Some(Action::Tour));
    assert_eq!(key(KeyCode::Char('n')), Some(Action::TourNext));
    assert_eq!(key(KeyCode::Char('N')), Some(Action::TourPrev));
    assert_eq!(key(KeyCode::Char(':')), Some(Action::Ask(PromptKind::Epoch)));
    assert_eq!(key(KeyCode::Char('/')), Some(Action::Ask(PromptKind::Filter)));
    assert_eq!(key(KeyCode::Char('o')), Some(Action::Open));
    assert_eq!(key(KeyCode::Char('g')), Some(Action::First));
    assert_eq!(key(KeyCode::Char('G')), Some(Action::Last));
    assert_eq!(key(KeyCode::End), Some(Action::Last));
    assert_eq!(key(KeyCode::PageDown), Some(Action::PageDown));
    assert_eq!(key(KeyCode::Char('b')), Some(Action::Scale));
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    for mode in [Mode::Normal, Mode::Help, Mode::Prompt] {
        assert_eq!(keys.action(ctrl_c, mode), Some(Action::Quit), "{mode:?}");
    }
    assert_eq!(key(KeyCode::Char('z')), None);
    // In a prompt characters are typed (q too), and Enter, Esc, Backspace edit it.
    let prompt = |code| keys.action(KeyEvent::new(code, KeyModifiers::NONE), Mode::Prompt);
    assert_eq!(prompt(KeyCode::Char('q')), Some(Action::Prompt(Edit::Type('q'))));
    assert_eq!(prompt(KeyCode::Enter), Some(Action::Prompt(Edit::Accept)));
    assert_eq!(prompt(KeyCode::Esc), Some(Action::Prompt(Edit::Close)));
    assert_eq!(prompt(KeyCode::Backspace), Some(Action::Prompt(Edit::Erase)));
    assert_eq!(prompt(KeyCode::Up), None);
    // Over the help every key does something: its own, or (unbound) closing the help.
    let help = |code| keys.action(KeyEvent::new(code, KeyModifiers::NONE), Mode::Help);
    assert_eq!((help(KeyCode::Down), help(KeyCode::Char('z'))), (Some(Action::Down), Some(Action::Help)));
}

#[test]
fn every_action_has_a_key_and_a_description_and_no_key_has_two_actions() {
    let keys = Keymap::default();
    for b in BINDINGS.iter().chain(PROMPT_BINDINGS.iter()) {
        assert!(!b.keys.is_empty() && !b.text.trim().is_empty(), "{:?}", b.action);
        assert_eq!(keys.keys(b.action), b.keys, "{:?} is in the table once", b.action);
    }
    // Every view, every prompt and every action a key can send has a row.
    for (view, _) in memscope::tui::app::VIEWS {
        assert!(BINDINGS.iter().any(|b| b.action == Action::Show(view)), "{view:?}");
    }
    let actions = [
        Action::NextPanel,
        Action::PrevPanel,
        Action::Up,
        Action::Down,
        Action::PageUp,
        Action::PageDown,
        Action::First,
        Action::Last,
        Action::Left,
        Action::Right,
        Action::Run,
        Action::Cancel,
        Action::Help,
        Action::Quit,
        Action::Export,
        Action::Scale,
        Action::Open,
        Action::Pin,
        Action::PinNeuron,
        Action::Demo,
        Action::Tour,
        Action::TourNext,
        Action::TourPrev,
        Action::Ask(PromptKind::Epoch),
        Action::Ask(PromptKind::Filter),
        Action::Ask(PromptKind::Neurons),
        Action::Prompt(Edit::Accept),
        Action::Prompt(Edit::Close),
        Action::Prompt(Edit::Erase),
    ];
    for action in actions {
        assert!(keyed(action) && !keys.keys(action).is_empty(), "{action:?} has no key");
    }
    // Names are unique, so each can be rebound alone; the defaults pass the config's checks.
    let names: Vec<&str> = BINDINGS.iter().filter_map(|b| b.name).collect();
    let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(names.len(), unique.len());
    assert!(Keymap::new(&Keys::default()).is_ok());
}

/// Whether a key sends `action` (the mouse and typing into a prompt send the others). The
/// match lists every action, so a new one does not build until it is placed here, and in the
/// list above if a key sends it.
fn keyed(action: Action) -> bool {
    match action {
        Action::Click { .. } | Action::Wheel { .. } | Action::Prompt(Edit::Type(_)) => false,
        Action::NextPanel
        | Action::PrevPanel
        | Action::Up
        | Action::Down
        | Action::PageUp
        | Action::PageDown
        | Action::First
        | Action::Last
        | Action::Left
        | Action::Right
        | Action::Run
        | Action::Cancel
        | Action::Help
        | Action::Quit
        | Action::Export
        | Action::Report
        | Action::Scale
        | Action::Show(_)
        | Action::Open
        | Action::Pin
        | Action::PinNeuron
        | Action::Demo
        | Action::Tour
        | Action::TourNext
        | Action::TourPrev
        | Action::Ask(_)
        | Action::Prompt(Edit::Accept | Edit::Close | Edit::Erase) => true,
    }
}

/// The keymap `config.ron` gives, or its one-line error.
fn keymap_of(ron: &str) -> Result<Keymap, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.ron");
    std::fs::write(&path, ron).unwrap();
    Config::load(&path).map(|c| c.keymap().unwrap()).map_err(|e| format!("{e:#}"))
}

#[test]
fn any_action_can_be_rebound_and_conflicts_are_refused() {
    let key = |map: &Keymap, code| map.action(KeyEvent::new(code, KeyModifiers::NONE), Mode::Normal);
    // Today's fields keep their meaning: quit on x, q free (Ctrl-C still quits).
    let custom = keymap_of("(keys: (quit: 'x'))").unwrap();
    assert_eq!(key(&custom, KeyCode::Char('x')), Some(Action::Quit));
    assert_eq!(key(&custom, KeyCode::Char('q')), None);
    // Any action by its name, to one key or several, characters or names; a freed key can be taken.
    let custom =
        keymap_of("(keys: (up: [\"Up\", 'w'], run: \"F5\", bars: 'B', down: \"Down\", quit: 'j', tour_next: \"Ctrl-N\"))")
            .unwrap();
    assert_eq!(
        (key(&custom, KeyCode::Char('w')), key(&custom, KeyCode::Up)),
        (Some(Action::Up), Some(Action::Up))
    );
    assert_eq!((key(&custom, KeyCode::F(5)), key(&custom, KeyCode::Enter)), (Some(Action::Run), None));
    assert_eq!(key(&custom, KeyCode::Char('B')), Some(Action::Show(View::Bars)));
    assert_eq!(
        (key(&custom, KeyCode::Char('j')), key(&custom, KeyCode::Char('k'))),
        (Some(Action::Quit), None)
    );
    let ctrl_n = KeyEvent::new(KeyCode::Char('n'), KeyModifiers::CONTROL);
    assert_eq!(custom.action(ctrl_n, Mode::Normal), Some(Action::TourNext));
    assert_eq!(
        (custom.label(Action::Run), custom.label(Action::Show(View::Bars))),
        ("F5".into(), "B".into())
    );
    // Refused, each in one line naming the file, the field and the key.
    for (ron, expected) in [
        ("(keys: (quit: 'j'))", "keys.quit 'j' is already the key of down (keys.down)"),
        ("(keys: (quit: 'x', help: 'x'))", "keys.quit 'x' is already the key of help (keys.help)"),
        ("(keys: (pin: \"Enter\"))", "keys.pin 'Enter' is already the key of run (keys.run)"),
        ("(keys: (pin: Enter))", "Expected a key ('x', \"Tab\", \"F5\") or a list of keys"),
        ("(keys: (help: \"Ctrl-C\"))", "keys.help 'Ctrl-C' is taken by a fixed key (Ctrl-C always quits)"),
        ("(keys: (jump: 'x'))", "keys.jump is not an action (the actions: next_panel, previous_panel"),
        ("(keys: (run: \"Hyper\"))", "keys.run 'Hyper' is not a key (a character such as 'x', or Tab"),
        ("(keys: (run: ' '))", "keys.run ' ' cannot be bound"),
        ("(keys: (run: []))", "keys.run names no key"),
        ("(keys: (run: 'r', run: 'R'))", "keys.run is given twice"),
    ] {
        let err = keymap_of(ron).err().unwrap_or_else(|| panic!("{ron} was accepted"));
        assert!(err.contains("config.ron:") && err.contains(expected), "{ron}: {err}");
        assert!(!err.contains('\n'), "{err}");
    }
}

#[test]
fn rebound_keys_are_what_the_help_the_title_and_the_footer_show() {
    let s = session();
    let mut app = app_for(&s);
    app.keys = keymap_of("(keys: (help: 'H', run: 'x', quit: 'Q', next_panel: 'T'))").unwrap();
    let screen = render(&app, 160, 45);
    assert!(screen.contains("H:help Q:quit"), "{screen}");
    assert!(
        screen.contains("x runs the intervention · T moves between panels · H lists every key"),
        "{screen}"
    );
    assert!(screen.contains("(←→ change, x run)"), "{screen}");
}

const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");

#[test]
fn the_readme_lists_the_keys_of_the_keymap() {
    let readme = std::fs::read_to_string(README).unwrap();
    let (start, end) = ("<!-- keys:start -->\n", "<!-- keys:end -->");
    let from = readme.find(start).expect("README.md has a <!-- keys:start --> line") + start.len();
    let to = readme[from..].find(end).expect("README.md has a <!-- keys:end --> line") + from;
    let expected = Keymap::default().readme();
    assert!(
        readme[from..to] == expected,
        "README.md's key list differs from the keymap (src/tui/keymap.rs); put this between the markers:\n{expected}"
    );
}

#[test]
fn actions_change_state_and_ask_for_the_right_jobs() {
    let s = session();
    let mut app = app_for(&s);
    // Starts on the last epoch, the smallest training group, the form.
    assert_eq!((app.epoch_number(), app.group, app.focus), (40, 2, Panel::Form));

    // The form: ↓ to the count field (four rows down), → from top 3 to top 5.
    for _ in 0..4 {
        press(&mut app, KeyCode::Down);
    }
    assert_eq!(app.form.field, Field::Count);
    press(&mut app, KeyCode::Right);
    let spec = app.spec();
    assert_eq!(spec.query.selection, memscope_core::neurons::select::Selection::TopK(5));

    // Tab to the layers, pick the third, scope it, and run: one intervention job.
    app.update(Action::PrevPanel);
    app.update(Action::PrevPanel);
    assert_eq!(app.focus, Panel::Layers);
    app.update(Action::Down);
    app.update(Action::Down);
    assert_eq!(app.layer_name(), "stage1.block0.conv2");
    app.update(Action::NextPanel); // groups
    app.update(Action::Up); // G1
    app.update(Action::NextPanel); // form
    app.form.field = Field::Scope;
    // global → global ÷ layer mean: normalised, still global.
    app.update(Action::Right);
    assert!(app.spec().query.normalize_layers);
    assert_eq!(app.spec().query.scope, memscope_core::neurons::select::Scope::Global);
    app.update(Action::Right);
    let effects = app.update(Action::Run);
    let [Effect::Submit(Job::Intervene(spec))] = effects.as_slice() else { panic!("{effects:?}") };
    assert_eq!(spec.query.scope, memscope_core::neurons::select::Scope::Layer("stage1.block0.conv2".into()));
    assert!(matches!(
        spec.query.criterion,
        memscope_core::neurons::scores::Criterion::Gradient { group: Some(1), .. }
    ));

    // Moving the epoch asks for that epoch's baseline, then (idle work) the gradient scores
    // the next intervention needs; moving the group asks for that group's.
    app.focus = Panel::Epochs;
    let effects = app.update(Action::Up);
    assert!(
        matches!(
            effects.as_slice(),
            [Effect::Submit(Job::Baseline { epoch: 39, .. }), Effect::Submit(Job::Prepare { epoch: 39, .. })]
        ),
        "{effects:?}"
    );
    app.focus = Panel::Groups;
    let effects = app.update(Action::Down);
    let [Effect::Submit(Job::Prepare { criterion, .. })] = effects.as_slice() else { panic!("{effects:?}") };
    assert!(matches!(criterion, memscope_core::neurons::scores::Criterion::Gradient { group: Some(2), .. }));

    // Opening the sensitivity view asks for the study; help swallows the next key.
    let effects = app.update(Action::Show(View::Sensitivity));
    assert!(matches!(effects.as_slice(), [Effect::Submit(Job::Sensitivity(_))]));
    press(&mut app, KeyCode::Char('?'));
    assert!(app.help.open);
    assert!(press(&mut app, KeyCode::Enter).is_empty());
    assert!(!app.help.open);
    // Esc with nothing running does nothing; quit sets the flag.
    assert!(app.update(Action::Cancel).is_empty());
    app.update(Action::Quit);
    assert!(app.quit);
}

#[test]
fn a_finished_job_reaches_the_screen() {
    let s = session();
    let mut app = app_for(&s);
    let mut worker = Worker::spawn(session());
    let job = app.baseline_job();
    run_job(&mut worker, &mut app, job);
    assert!(app.current_baseline().is_some());
    let before = render(&app, 80, 24);
    assert!(before.contains("No intervention yet"), "{before}");
    let spec = app.spec();
    run_job(&mut worker, &mut app, Job::Intervene(spec.clone()));
    let result = app.bars.result.clone().expect("the result arrived");
    assert_eq!(app.bars.history.len(), 1);
    let screen = render(&app, 80, 24);
    for g in &result.groups {
        let change = format!("{:+.1}", 100.0 * g.change.unwrap());
        assert!(screen.contains(&change), "{change} missing from\n{screen}");
    }
    assert!(screen.contains("worst"), "{screen}");
}

#[test]
fn the_explorers_report_is_the_command_lines_page() {
    let s = session();
    let mut app = app_for(&s);
    let spec = match app.update(Action::Report).pop() {
        Some(Effect::Submit(Job::Report(spec))) => spec,
        other => panic!("r asks for the report: {other:?}"),
    };
    assert_eq!((spec.epoch, spec.split), (Some(40), Split::Val), "this epoch and the form's split");
    let mut worker = Worker::spawn(session());
    let report = match run_job(&mut worker, &mut app, Job::Report(spec)).pop() {
        Some(Effect::SaveReport(report)) => report,
        other => panic!("the finished report is to be written: {other:?}"),
    };
    let dir = tempfile::tempdir().unwrap();
    let page = memscope::tui::write_report(&report, dir.path()).unwrap();
    // The same page `memscope report` writes with its defaults (epoch 40 is the demo's last).
    let cli = dir.path().join("cli.html");
    common::succeeds(&["report", "--experiment", DEMO, "--out", cli.to_str().unwrap()]);
    assert!(std::fs::read(&page).unwrap() == std::fs::read(&cli).unwrap(), "the pages differ");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(page.with_extension("json")).unwrap()).unwrap();
    assert_eq!(json["provenance"]["epoch"], 40);
    // The status line counts the page's verdicts.
    let html = std::fs::read_to_string(&page).unwrap();
    let on_page =
        ["holds", "does-not-hold", "cannot-say"].map(|c| html.matches(&format!("class=\"{c}\">")).count());
    let verdicts = memscope::tui::report_verdicts(&report);
    assert_eq!(verdicts, on_page);
    assert!(verdicts.iter().sum::<usize>() >= 4, "the paper's claims: {verdicts:?}");
    let status = Status::Reported { page: page.clone(), verdicts }.to_string();
    let [holds, not, unsure] = verdicts;
    assert!(
        status.starts_with(&format!("the paper's claims: {holds} hold, {not} do not, {unsure} cannot say"))
    );
}

/// A fixture accuracy report on val: `(examples, correct)` per group, summarised with the
/// demo's training proportions (1460, 80, 20, 440 of 2000).
fn report(counts: &[(usize, usize)]) -> AccuracyReport {
    let names = ["0-4 on land", "0-4 on water", "5-9 on land", "5-9 on water"];
    let weights = [0.73, 0.04, 0.01, 0.22];
    let groups: Vec<GroupAccuracy> = counts
        .iter()
        .enumerate()
        .map(|(g, &(examples, correct))| GroupAccuracy {
            group: g,
            name: names[g].into(),
            examples,
            correct,
            accuracy: (examples > 0).then(|| correct as f64 / examples as f64),
        })
        .collect();
    let accuracies: Vec<Option<f64>> = groups.iter().map(|g| g.accuracy).collect();
    let (worst, mean) = memscope_core::eval::summarize(&accuracies, &weights);
    let examples: usize = counts.iter().map(|c| c.0).sum();
    let correct: usize = counts.iter().map(|c| c.1).sum();
    AccuracyReport {
        split: Split::Val,
        groups,
        worst_group: worst.map(|w| w.0),
        worst_group_accuracy: worst.map(|w| w.1),
        mean_accuracy_train_weighted: mean,
        average_accuracy: Some(correct as f64 / examples as f64),
    }
}

/// A fixture intervention result for `spec`: three neurons, every group changed.
fn result(spec: InterventionSpec) -> InterventionResult {
    let before = report(&[(100, 100), (100, 46), (100, 24), (100, 98)]);
    let after = report(&[(100, 99), (100, 100), (100, 0), (100, 3)]);
    let neuron = |layer: &str, index, score, pct, magnitude, mpct| SelectedNeuron {
        id: NeuronId { layer: layer.into(), index, qkv: None },
        score,
        ranking_score: score,
        score_percentile: pct,
        score_percentile_scope: "all candidates".into(),
        magnitude,
        magnitude_percentile: mpct,
        magnitude_percentile_scope: "all candidates".into(),
    };
    let runs: Vec<Vec<Option<f64>>> = vec![after.groups.iter().map(|g| g.accuracy).collect()];
    InterventionResult {
        spec,
        candidates: 338,
        neurons: vec![
            neuron("stem.conv", 13, 0.0847, 100.0, 0.6758, 40.1),
            neuron("stage1.block0.conv1", 4, 0.0612, 99.7, 1.2031, 88.4),
            neuron("head", 1, 0.0433, 99.4, 2.5, 100.0),
        ],
        layers_changed: vec!["stem.conv".into(), "stage1.block0.conv1".into(), "head".into()],
        runs: 1,
        groups: group_changes(&before, &runs),
        before_summary: Summary::of(&before),
        after_summary: Summary::of(&after),
        run_accuracy: runs,
        before,
        boundary_shift: None,
    }
}

/// A fixture sensitivity study: two layers, two distances.
fn sensitivity(spec: SensitivitySpec) -> SensitivityStudy {
    let row = |layer: &str, epochs_back, change: [f64; 4]| SensitivityRow {
        layer: layer.into(),
        epochs_back,
        change: change.iter().map(|&c| Some(c)).collect(),
        sensitive: change.iter().map(|c| c.abs() >= 0.01).collect(),
    };
    let rows = spec
        .epochs_back
        .iter()
        .flat_map(|&n| {
            let scale = n as f64 / 40.0;
            [
                row("stem.conv", n, [0.0, -0.02 * scale, -0.24 * scale, 0.005]),
                row("head", n, [-0.001, 0.3 * scale, 0.5 * scale, -0.1 * scale]),
            ]
        })
        .collect::<Vec<_>>();
    let counts = spec
        .epochs_back
        .iter()
        .map(|&n| {
            (0..4).map(|g| rows.iter().filter(|r| r.epochs_back == n && r.sensitive[g]).count()).collect()
        })
        .collect();
    SensitivityStudy {
        groups: vec![
            "0-4 on land".into(),
            "0-4 on water".into(),
            "5-9 on land".into(),
            "5-9 on water".into(),
        ],
        before: report(&[(100, 100), (100, 46), (100, 24), (100, 98)]),
        threshold_in_examples: threshold_in_examples(
            spec.threshold,
            &report(&[(100, 100), (100, 46), (100, 24), (100, 98)]),
        ),
        rows,
        counts,
        spec,
    }
}

#[test]
fn screens_at_80x24_and_160x45() {
    // Fixed fixture results: the screens change only when drawing changes.
    let s = session();
    let mut app = app_for(&s);
    app.baseline = Some((40, Split::Val, report(&[(100, 100), (100, 46), (100, 24), (100, 98)])));
    let settings = snapshot_settings();
    settings.bind(|| {
        insta::assert_snapshot!("start_80x24", render(&app, 80, 24));
        app.on_event(Event::Finished {
            id: 0,
            output: Output::Intervention(Box::new(result(app.spec()))),
            elapsed: Duration::from_millis(1),
        });
        for (w, h) in [(80, 24), (160, 45)] {
            insta::assert_snapshot!(format!("bars_{w}x{h}"), render(&app, w, h));
        }
        app.view = View::Neurons;
        for (w, h) in [(80, 24), (160, 45)] {
            insta::assert_snapshot!(format!("neurons_{w}x{h}"), render(&app, w, h));
        }
        app.view = View::History;
        for (w, h) in [(80, 24), (160, 45)] {
            insta::assert_snapshot!(format!("history_{w}x{h}"), render(&app, w, h));
        }
        app.help.open = true;
        app.export_dir = "/exports".into();
        insta::assert_snapshot!("help_80x24", render(&app, 80, 24));
        insta::assert_snapshot!("help_160x45", render(&app, 160, 45));
        app.help.open = false;
        let spec = match app.update(Action::Show(View::Sensitivity)).pop() {
            Some(Effect::Submit(Job::Sensitivity(spec))) => spec,
            other => panic!("{other:?}"),
        };
        app.on_event(Event::Finished {
            id: 0,
            output: Output::Sensitivity(Box::new(sensitivity(spec))),
            elapsed: Duration::ZERO,
        });
        for (w, h) in [(80, 24), (160, 45)] {
            insta::assert_snapshot!(format!("sensitivity_{w}x{h}"), render(&app, w, h));
        }
        // Rank histograms of a fixture study: 17 neurons in each top set.
        let spec = app.rank_spec();
        let mut bins = vec![0usize; 20];
        for (b, c) in [(0, 1), (3, 2), (9, 4), (15, 3), (19, 7)] {
            bins[b] = c;
        }
        let groups = (0..4)
            .map(|g| memscope_core::studies::ranks::GroupRanks {
                group: g,
                name: app.groups[g].name.clone(),
                magnitude_rank_of_top_gradient: bins.clone(),
                gradient_rank_of_top_magnitude: bins.iter().rev().copied().collect(),
                overlap: g,
            })
            .collect();
        let study = memscope_core::studies::ranks::RankStudy { spec, candidates: 338, selected: 17, groups };
        app.update(Action::Show(View::Ranks));
        app.on_event(Event::Finished {
            id: 0,
            output: Output::Ranks(Box::new(study)),
            elapsed: Duration::ZERO,
        });
        for (w, h) in [(80, 24), (160, 45)] {
            let screen = render(&app, w, h);
            // Counts in words: 7 of 17 in the top 5% bin, 7 + 3 in the top 25% (bins 15-19).
            assert!(screen.contains("top 5%: 7/17 (41%) · top 25%: 10 (59%)"), "{screen}");
            insta::assert_snapshot!(format!("ranks_{w}x{h}"), screen);
        }
        // The tour's words in place of the form.
        app.update(Action::Tour);
        for (w, h) in [(80, 24), (160, 45)] {
            insta::assert_snapshot!(format!("tour_{w}x{h}"), render(&app, w, h));
        }
    });
}

#[test]
fn bars_keep_one_scale_until_changed_and_mark_a_stale_result() {
    let s = session();
    let mut app = app_for(&s);
    let mut small = result(app.spec());
    // A small change draws on the same ±100 scale as a large one.
    for g in &mut small.groups {
        g.change = g.change.map(|c| c / 20.0);
    }
    app.on_event(Event::Finished {
        id: 0,
        output: Output::Intervention(Box::new(small)),
        elapsed: Duration::ZERO,
    });
    let screen = render(&app, 80, 24);
    assert!(screen.contains("bars ±100 (b)"), "{screen}");
    assert!(!screen.contains("stale"), "{screen}");
    // b steps the scale: 50, 25, …, then auto (the smallest that fits: 5 for 4.75 points).
    app.update(Action::Scale);
    assert!(render(&app, 80, 24).contains("bars ±50 (b)"));
    for _ in 0..5 {
        app.update(Action::Scale);
    }
    assert!(render(&app, 80, 24).contains("bars ±5 auto (b)"), "{}", render(&app, 80, 24));
    // Changing the form (top 3 → top 5) makes the shown result stale until Enter.
    app.focus = Panel::Form;
    app.form.field = Field::Count;
    app.update(Action::Right);
    assert!(app.result_stale());
    let screen = render(&app, 80, 24);
    assert!(screen.contains("stale: press Enter"), "{screen}");
    // With repeats: the runs and the spread are explained.
    let mut spec = app.spec();
    spec.intervention = memscope_core::edit::Intervention::Noise { sigma: 0.01 };
    let mut noisy = result(spec);
    noisy.runs = 10;
    for g in &mut noisy.groups {
        g.after_std = Some(0.05);
    }
    app.on_event(Event::Finished {
        id: 0,
        output: Output::Intervention(Box::new(noisy)),
        elapsed: Duration::ZERO,
    });
    let screen = render(&app, 160, 45);
    assert!(screen.contains("10 runs: Δ mean change, |Δ| mean |change|, ├─┤ ±1 std"), "{screen}");
    assert!(screen.contains('├') && screen.contains('┤'), "{screen}");
}

#[test]
fn sensitivity_scrolls_at_80x24_and_keeps_its_count_row() {
    let s = session();
    let mut app = app_for(&s);
    let spec = match app.update(Action::Show(View::Sensitivity)).pop() {
        Some(Effect::Submit(Job::Sensitivity(spec))) => spec,
        other => panic!("{other:?}"),
    };
    // Every demo layer, as the real study has them.
    let mut study = sensitivity(spec);
    let template = study.rows.clone();
    study.rows = app
        .layers
        .iter()
        .flat_map(|l| {
            template.iter().filter(|r| r.layer == "head").map(move |r| {
                let mut r = r.clone();
                r.layer = l.name.clone();
                r
            })
        })
        .collect();
    app.on_event(Event::Finished {
        id: 0,
        output: Output::Sensitivity(Box::new(study)),
        elapsed: Duration::ZERO,
    });
    let screen = render(&app, 80, 24);
    assert!(screen.contains("sensitive layers"), "{screen}");
    assert!(screen.contains("stem.conv") && screen.contains("↓"), "{screen}");
    assert!(!screen.contains("stage3.conv2"), "{screen}");
    // ↓ in the results panel scrolls; ←→ there change the distance, never the view.
    app.focus = Panel::Results;
    app.update(Action::Last);
    app.layer = app.layers.len() - 1; // the layers panel no longer lists stem.conv
    let screen = render(&app, 80, 24);
    assert!(screen.contains("head ") && !screen.contains("stem.conv"), "{screen}");
    assert!(screen.contains("sensitive layers"), "{screen}");
    app.update(Action::Right);
    assert_eq!((app.view, app.sensitivity.distance), (View::Sensitivity, 1));
    app.update(Action::Right);
    app.update(Action::Right);
    app.update(Action::Right);
    app.update(Action::Right);
    assert_eq!(
        (app.view, app.sensitivity.distance),
        (View::Sensitivity, 4),
        "clamped at the farthest distance"
    );
    // Another epoch: the table is marked as that of the epoch it was run at.
    assert!(!render(&app, 80, 24).contains("stale"));
    app.epoch -= 1;
    let screen = render(&app, 80, 24);
    assert!(screen.contains("stale (epoch 40, val): Enter"), "{screen}");
}

#[test]
fn home_end_and_pages_move_in_lists() {
    let s = session();
    let mut app = app_for(&s);
    app.focus = Panel::Epochs;
    app.update(Action::First);
    assert_eq!(app.epoch_number(), 0);
    app.update(Action::PageDown);
    assert_eq!(app.epoch_number(), 10);
    app.update(Action::Last);
    assert_eq!(app.epoch_number(), 40);
    app.focus = Panel::Layers;
    app.update(Action::Last);
    assert_eq!(app.layer_name(), "head");
    app.focus = Panel::Form;
    press(&mut app, KeyCode::Char('G'));
    assert_eq!(app.form.field, Field::Granularity);
    press(&mut app, KeyCode::Home);
    assert_eq!(app.form.field, Field::Kind);
}

#[test]
fn a_sweep_runs_the_form_within_every_layer_reports_each_and_cancels() {
    let s = session();
    let mut app = app_for(&s);
    let mut worker = Worker::spawn(session());
    app.update(Action::Show(View::Sweep));
    let screen = render(&app, 80, 24);
    assert!(screen.contains("Enter: the form's") && screen.contains("(10; Esc cancels)"), "{screen}");
    let Some(Effect::Submit(job)) = app.update(Action::Run).pop() else { panic!("no job") };
    let Job::Sweep(spec) = &job else { panic!("{job:?}") };
    assert_eq!(spec.at("stage2.block0.conv2"), app.spec().within("stage2.block0.conv2"));
    // Cancelled after the first layer: no result, the status says so.
    let id = worker.submit(job.clone());
    loop {
        let event = worker.events.recv_timeout(Duration::from_secs(120)).expect("worker answered");
        if matches!(event, Event::Progress { done: 1, total: 10, .. }) {
            worker.cancel();
        }
        let stopped = matches!(&event, Event::Cancelled { id: i } if *i == id);
        assert!(!matches!(event, Event::Finished { .. } | Event::Failed { .. }), "{event:?}");
        app.on_event(event);
        if stopped {
            break;
        }
    }
    assert_eq!(app.status, Status::Cancelled);
    assert!(app.sweep.sweep.is_none());
    // Run whole: a row per layer; the head (2 units) cannot give a top 3 and says why.
    let started = Instant::now();
    run_job(&mut worker, &mut app, job);
    eprintln!("sweep of 10 layers: {:.2} s", started.elapsed().as_secs_f64());
    let sweep = app.sweep.sweep.clone().unwrap();
    assert_eq!(sweep.rows.len(), 10);
    let head = sweep.rows.iter().find(|r| r.layer == "head").unwrap();
    assert!(head.error.as_deref().is_some_and(|e| e.contains("larger than the 2 candidate")), "{head:?}");
    assert!(!app.sweep_stale());
    let settings = snapshot_settings();
    settings.bind(|| {
        for (w, h) in [(80, 24), (160, 45)] {
            insta::assert_snapshot!(format!("sweep_{w}x{h}"), render(&app, w, h));
        }
    });
    // Changing the selected layer does not make a sweep stale; changing the count does.
    app.focus = Panel::Layers;
    app.update(Action::Down);
    assert!(!app.sweep_stale());
    app.focus = Panel::Form;
    app.form.field = Field::Count;
    app.update(Action::Right);
    assert!(render(&app, 80, 24).contains("stale: press Enter"));
    // Exported as JSON (with provenance) and CSV, a row per layer and group.
    let dir = tempfile::tempdir().unwrap();
    let stem = memscope::tui::export(&app, dir.path()).unwrap();
    let csv = std::fs::read_to_string(stem.with_extension("csv")).unwrap();
    assert!(csv.starts_with("layer,group,name,examples,before,after,change,abs_change,error"), "{csv}");
    assert_eq!(csv.lines().filter(|l| l.starts_with("stage2.block0.conv2,")).count(), 4);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(stem.with_extension("json")).unwrap()).unwrap();
    assert_eq!(json["rows"].as_array().map(Vec::len), Some(10));
}

#[test]
fn captions_say_why_a_result_may_differ_from_the_paper() {
    let s = session();
    let app = app_for(&s);
    let train: Vec<usize> = app.groups.iter().map(|g| g.train).collect();
    let mut r = result(app.spec());
    let caption = memscope::tui::caption::intervention(&r, &app.layers, &train, &app.keys);
    assert_eq!(caption, "Minority (<10% of train) G1 +54 G2 -24 · majority G0 -1 G3 -95 pp");
    // The demo's first Enter: the global raw-gradient top 3 are all stem filters.
    for n in &mut r.neurons {
        n.id.layer = "stem.conv".into();
    }
    let caption = memscope::tui::caption::intervention(&r, &app.layers, &train, &app.keys);
    assert_eq!(caption, "3 of 3 are stem filters (raw gradients favour the stem): try scope ÷ layer mean");
    r.spec.query.normalize_layers = true;
    assert!(memscope::tui::caption::intervention(&r, &app.layers, &train, &app.keys).starts_with("Minority"));
}

#[test]
fn the_neurons_view_shows_the_ranking_score_and_names_each_percentile_scope() {
    let s = session();
    let mut app = app_for(&s);
    let mut spec = app.spec();
    spec.query.normalize_layers = true;
    let mut result = result(spec);
    for (i, n) in result.neurons.iter_mut().enumerate() {
        n.ranking_score = 3.5 - i as f32 * 0.25;
        n.score_percentile_scope = "within layer stem.conv".into();
    }
    app.on_event(Event::Finished {
        id: 0,
        output: Output::Intervention(Box::new(result)),
        elapsed: Duration::from_millis(1),
    });
    app.view = View::Neurons;
    let screen = render(&app, 120, 40);
    assert!(screen.contains("÷mean"), "{screen}");
    assert!(screen.contains("3.250"), "{screen}");
    assert!(screen.contains("pct: within layer stem.conv; |w|pct: all candidates"), "{screen}");
    assert!(screen.contains("ranked by ÷mean = score / layer mean"), "{screen}");
}

#[test]
fn errors_are_shown_as_errors_and_cancellation_is_not_one() {
    let s = session();
    let mut app = app_for(&s);
    app.on_event(Event::Failed { id: 1, message: "cancelled".into() });
    assert_eq!(app.status, Status::Error("cancelled".into()), "text alone is not a cancellation");
    app.on_event(Event::Cancelled { id: 2 });
    assert_eq!(app.status, Status::Cancelled);
    assert_eq!(app.status.tone(), Tone::Plain);
}

#[test]
fn the_export_writes_json_with_provenance_and_csv() {
    let s = session();
    let mut app = app_for(&s);
    let dir = tempfile::tempdir().unwrap();
    assert!(memscope::tui::export(&app, dir.path()).is_err(), "nothing to export yet");
    app.bars.result = Some(result(app.spec()));
    let stem = memscope::tui::export(&app, dir.path()).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(stem.with_extension("json")).unwrap()).unwrap();
    assert_eq!(json["provenance"]["checkpoint"], "epoch-040.safetensors");
    assert_eq!(json["provenance"]["spec"]["seed"], 0);
    assert_eq!(json["provenance"]["spec"], json["spec"]);
    assert_eq!(json["provenance"]["sha256"].as_str().map(str::len), Some(64));
    let csv = std::fs::read_to_string(stem.with_extension("csv")).unwrap();
    assert!(csv.starts_with("group,name,examples,before,after"), "{csv}");
    // The view's figure: the result's bars, as `memscope figure bars --from` the JSON draws them.
    let svg = std::fs::read_to_string(stem.with_extension("svg")).unwrap();
    let path = stem.with_extension("json");
    let json = std::fs::read_to_string(&path).unwrap();
    let figure = memscope_core::figure::Figure::from_json("bars", &json, &path).unwrap();
    let provenance = memscope_core::figure::Figure::provenance_in(&json);
    assert_eq!(svg, memscope_core::figure::svg(&figure, provenance.as_ref()).unwrap());
}

#[test]
fn the_history_exports_every_run_into_the_export_folder() {
    let s = session();
    let mut app = app_for(&s);
    for k in [3, 5] {
        let spec = app.spec().top_k(k);
        app.on_event(Event::Finished {
            id: 0,
            output: Output::Intervention(Box::new(result(spec))),
            elapsed: Duration::ZERO,
        });
    }
    app.view = View::History;
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("exports"); // made when missing
    let stem = memscope::tui::export(&app, &folder).unwrap();
    assert!(stem.starts_with(&folder) && stem.to_string_lossy().contains("memscope-history-epoch40"));
    // Then the time in UTC, readable and safe in any file system: 2026-12-07T10-31-05.
    let name = stem.file_name().unwrap().to_string_lossy().into_owned();
    let time = name.strip_prefix("memscope-history-epoch40-").unwrap_or_else(|| panic!("{name}"));
    let shape: String = time.chars().map(|c| if c.is_ascii_digit() { '9' } else { c }).collect();
    assert_eq!(shape, "9999-99-99T99-99-99", "{name}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(stem.with_extension("json")).unwrap()).unwrap();
    assert_eq!(json["runs"].as_array().map(Vec::len), Some(2));
    assert_eq!(json["runs"][0]["spec"]["selection"]["top-k"], 5, "newest first");
    let csv = std::fs::read_to_string(stem.with_extension("csv")).unwrap();
    assert!(
        csv.starts_with("run,group,name,examples,before,after,after_std,change,abs_change,spec"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 1 + 2 * 4);
}

#[test]
fn a_typo_in_the_config_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.ron");
    assert_eq!(Config::load(&path).unwrap(), Config::default()); // no file: defaults
    std::fs::write(&path, "(colours: (accent: \"red\"))").unwrap();
    let err = format!("{:#}", Config::load(&path).unwrap_err());
    assert!(err.contains("config.ron:1:") && err.contains("colours"), "{err}");
    std::fs::write(&path, "(colors: (accent: \"reddish\"))").unwrap();
    let err = format!("{:#}", Config::load(&path).unwrap_err());
    assert!(err.contains("colors.accent 'reddish' is not a colour"), "{err}");
    std::fs::write(&path, "(keys: (quit: 'x'), colors: (accent: \"#ff8800\"))").unwrap();
    let config = Config::load(&path).unwrap();
    assert_eq!(config.keymap().unwrap().label(Action::Quit), "x");
    std::fs::write(&path, "(export_dir: Some(\"/home/me/memscope-exports\"), // made when missing\n)")
        .unwrap();
    let config = Config::load(&path).unwrap();
    assert_eq!(config.export_dir, Some("/home/me/memscope-exports".into()));
}

#[test]
fn the_worker_survives_a_panic_and_reports_it() {
    // A pixel source that panics stands for any bug inside the engine.
    #[derive(Debug)]
    struct Panics;
    impl memscope_core::data::PixelSource for Panics {
        fn images(&self, _: memscope_core::data::Split, _: &[usize]) -> anyhow::Result<Vec<f32>> {
            panic!("a pixel source bug")
        }
    }
    let exp = Experiment::open(Path::new(DEMO)).unwrap();
    let demo = exp.manifest.dataset.load().unwrap();
    let data = memscope_core::data::GroupedDataset::new(
        demo.name.clone(),
        demo.image_shape,
        demo.class_names.clone(),
        demo.group_names.clone(),
        [demo.train.clone(), demo.val.clone(), demo.test.clone()],
        std::sync::Arc::new(Panics),
    )
    .unwrap();
    let session = Session::new(exp, data, DeviceSpec::Cpu.device().unwrap()).unwrap();
    let mut worker = Worker::spawn(session);
    for _ in 0..2 {
        let id = worker.submit(Job::Baseline { epoch: 40, split: memscope_core::data::Split::Val });
        let failed = loop {
            match worker.events.recv_timeout(Duration::from_secs(60)).expect("the worker is still alive") {
                Event::Failed { id: i, message } if i == id => break message,
                Event::Finished { .. } => panic!("a broken data set cannot be evaluated"),
                _ => {}
            }
        };
        assert!(failed.starts_with("internal error in the engine:"), "{failed}");
    }
}

#[test]
fn waiting_jobs_keep_the_newest_of_each_kind() {
    let s = session();
    let app = app_for(&s);
    let mut worker = Worker::spawn(session());
    let baseline = worker.submit(app.baseline_job());
    let mut spec = app.spec();
    let first = worker.submit(Job::Intervene(spec.clone()));
    spec.query.selection = memscope_core::neurons::select::Selection::TopK(1);
    let second = worker.submit(Job::Intervene(spec));
    let prepare = worker.submit(app.prepare_job());
    let mut finished = Vec::new();
    while finished.len() < 3 {
        match worker.events.recv_timeout(Duration::from_secs(120)).expect("worker answered") {
            Event::Finished { id, .. } => finished.push(id),
            Event::Failed { message, .. } => panic!("{message}"),
            _ => {}
        }
    }
    // The baseline runs first; the first intervention was replaced by the second while it
    // waited; preparation comes last.
    assert_eq!(finished, vec![baseline, second, prepare]);
    assert!(worker.events.recv_timeout(Duration::from_millis(300)).is_err(), "{first} should not run");
}

#[test]
fn config_keys_cannot_shadow_fixed_keys_and_junk_is_cut_short() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.ron");
    std::fs::write(&path, "(keys: (quit: 'j'))").unwrap();
    let err = format!("{:#}", Config::load(&path).unwrap_err());
    assert!(err.contains("keys.quit 'j' is already the key of down (keys.down)"), "{err}");
    // 2 MB of junk: refused by size, one short line.
    std::fs::write(&path, "x".repeat(2 << 20)).unwrap();
    let err = format!("{:#}", Config::load(&path).unwrap_err());
    assert!(err.contains("more than the") && err.len() < 300, "{err}");
    // Junk under the limit: the parser's message is cut.
    std::fs::write(&path, format!("({})", "y".repeat(100_000))).unwrap();
    let err = format!("{:#}", Config::load(&path).unwrap_err());
    assert!(err.len() < 600 && !err.contains('\n'), "{} bytes: {err:.300}", err.len());
}

#[test]
fn a_subset_is_on_the_status_line_and_the_default_group_stays_the_smallest_of_the_whole_split() {
    let exp = Experiment::open(Path::new(DEMO)).unwrap();
    let data = exp.manifest.dataset.load().unwrap().subset_per_group(10, 3);
    let subset = Session::new(exp, data, DeviceSpec::Cpu.device().unwrap()).unwrap();
    let app = app_for(&subset);
    assert_eq!(app.group, 2, "G2 has 20 training examples in the whole split");
    let screen = render(&app, 160, 30);
    let status = screen.lines().last().unwrap();
    assert!(status.contains("data: at most 10 per group (seeded subset, seed 3)"), "{status}");
    let plain = render(&app_for(&session()), 160, 30);
    assert!(!plain.contains("data:"), "{plain}");
}

/// A fixture comparison: the parent and one run, each at its last and best-val epochs.
fn comparison() -> Comparison {
    let selected = |selection, epoch, val: &[(usize, usize)], test: &[(usize, usize)]| Selected {
        selection,
        epoch,
        val: report(val),
        test: report(test),
    };
    let row = |name: &str, method: &str, epochs, selected| ExperimentRow {
        experiment: format!("/runs/{name}"),
        name: name.into(),
        method: method.into(),
        labels: "none".into(),
        augment: "none".into(),
        val_in_sample: false,
        seed: Some(0),
        parent: None,
        start_epoch: None,
        epochs,
        settings: String::new(),
        selected,
    };
    Comparison {
        data: "spurious-digits".into(),
        val_examples: 400,
        test_examples: 400,
        methods: Vec::new(),
        notes: Vec::new(),
        experiments: vec![
            row(
                "spurious-digits",
                "erm (parent)",
                41,
                vec![
                    selected(
                        Selection::LastEpoch,
                        40,
                        &[(100, 100), (100, 46), (100, 24), (100, 98)],
                        &[(100, 99), (100, 40), (100, 23), (100, 97)],
                    ),
                    selected(
                        Selection::BestValWorstGroup,
                        23,
                        &[(100, 95), (100, 60), (100, 40), (100, 90)],
                        &[(100, 94), (100, 55), (100, 36), (100, 91)],
                    ),
                ],
            ),
            row(
                "spurious-digits-erm-seed0",
                "erm",
                3,
                vec![
                    selected(
                        Selection::LastEpoch,
                        2,
                        &[(100, 99), (100, 50), (100, 33), (100, 97)],
                        &[(100, 98), (100, 52), (100, 37), (100, 97)],
                    ),
                    selected(
                        Selection::BestValWorstGroup,
                        2,
                        &[(100, 99), (100, 50), (100, 33), (100, 97)],
                        &[(100, 98), (100, 52), (100, 37), (100, 97)],
                    ),
                ],
            ),
        ],
    }
}

fn point(epoch: usize, epochs: usize, worst: f64, mean: f64) -> EpochPoint {
    EpochPoint {
        epoch,
        epochs,
        train_loss: None,
        val_worst: Some(worst),
        val_mean: Some(mean),
        diagnostics: None,
    }
}

#[test]
fn a_mitigation_run_starts_from_the_current_epoch_reports_each_epoch_and_is_compared() {
    let s = session();
    let mut app = app_for(&s);
    app.mitigation.runs_dir = "/runs".into();
    app.update(Action::Show(View::Mitigation));
    // The form: silent-majority (code) → erm, 5 → 2 epochs, seed 0.
    app.update(Action::Right);
    app.update(Action::Right);
    app.update(Action::Down);
    for _ in 0..3 {
        app.update(Action::Left);
    }
    let effects = app.update(Action::Run);
    let [Effect::Submit(Job::Mitigate(request))] = effects.as_slice() else { panic!("{effects:?}") };
    assert_eq!(request.plan.method, Method::Erm);
    assert_eq!((request.plan.start_epoch, request.plan.training.epochs), (Some(40), 2));
    assert_eq!(
        (request.runs_dir.to_str(), request.stem.as_str()),
        (Some("/runs"), "spurious-digits-erm-seed0")
    );
    // A second Enter while the run waits or runs starts nothing.
    assert!(app.update(Action::Run).is_empty());
    assert!(app.update(Action::Open).is_empty(), "nothing finished to open");

    let out = std::path::PathBuf::from("/runs/spurious-digits-erm-seed0");
    let update = |update| Event::Mitigation { id: 7, update };
    app.on_event(Event::Started { id: 7, label: "mitigating" });
    app.on_event(update(Update::Writing(out.clone())));
    app.on_event(update(Update::Epoch(point(0, 2, 0.24, 0.966))));
    // A silent-majority epoch's terms show under its accuracies.
    let diagnostics =
        memscope_core::experiment::Diagnostics { ntxent: 9.7, ce: 0.31, grad_norm: 0.012, distance: 1.1e-4 };
    app.on_event(update(Update::Epoch(EpochPoint {
        diagnostics: Some(diagnostics),
        ..point(1, 2, 0.04, 0.956)
    })));
    let run = app.mitigation.run.as_ref().unwrap();
    assert_eq!((run.state.clone(), run.curve.len(), run.out.as_ref()), (RunState::Running, 2, Some(&out)));
    let screen = render(&app, 80, 24);
    assert!(screen.contains("epoch 1/2"), "{screen}");
    assert!(screen.contains("val worst-group 4.0%"), "{screen}");
    let wide = render(&app, 140, 30);
    assert!(wide.contains("nt-xent 9.700 · ce 0.310 · |grad| 1.2e-2 · dense-masked L2 1.1e-4"), "{wide}");
    app.on_event(update(Update::Epoch(point(2, 2, 0.33, 0.951))));

    let mut experiment = s.experiment().clone();
    experiment.dir = out.clone();
    let effects = app.on_event(Event::Finished {
        id: 7,
        output: Output::Mitigated(Box::new(experiment)),
        elapsed: Duration::ZERO,
    });
    let [Effect::Submit(Job::Compare(dirs))] = effects.as_slice() else { panic!("{effects:?}") };
    assert_eq!(dirs, &[s.experiment().dir.clone(), out.clone()], "the parent, then the run");
    assert_eq!(app.status, Status::Note("wrote /runs/spurious-digits-erm-seed0 · o opens it".into()));
    app.on_event(Event::Finished {
        id: 8,
        output: Output::Comparison(Box::new(comparison())),
        elapsed: Duration::ZERO,
    });
    let settings = snapshot_settings();
    settings.bind(|| {
        insta::assert_snapshot!("mitigation_compare_80x24", render(&app, 80, 24));
        insta::assert_snapshot!("mitigation_120x40", render(&app, 120, 40));
        insta::assert_snapshot!("mitigation_160x45", render(&app, 160, 45));
    });
    // ←→ in the results panel: the curves again.
    app.focus = Panel::Results;
    app.update(Action::Left);
    assert_eq!(app.mitigation.page, Page::Curves);
    settings.bind(|| insta::assert_snapshot!("mitigation_curves_80x24", render(&app, 80, 24)));
    let effects = app.update(Action::Open);
    assert!(matches!(effects.as_slice(), [Effect::Open(dir)] if *dir == out), "{effects:?}");
}

#[test]
fn a_cancelled_mitigation_leaves_nothing_behind() {
    let s = session();
    let mut app = app_for(&s);
    let dir = tempfile::tempdir().unwrap();
    app.mitigation.runs_dir = dir.path().join("runs");
    app.view = View::Mitigation;
    app.mitigation.form.method = memscope_core::experiment::lineage::Method::Erm;
    app.mitigation.form.epochs = 1;
    let Some(Effect::Submit(job)) = app.update(Action::Run).pop() else { panic!("no job") };
    let mut worker = Worker::spawn(session());
    let id = worker.submit(job);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let event = worker.events.recv_timeout(deadline - Instant::now()).expect("worker answered");
        if matches!(event, Event::Progress { done: 1, .. }) {
            worker.cancel();
        }
        let stopped = matches!(&event, Event::Cancelled { id: i } if *i == id);
        assert!(!matches!(event, Event::Finished { .. } | Event::Failed { .. }), "{event:?}");
        app.on_event(event);
        if stopped {
            break;
        }
    }
    let run = app.mitigation.run.as_ref().unwrap();
    assert_eq!(run.state, RunState::Cancelled);
    assert_eq!(run.curve.len(), 1, "epoch 0, the start, was recorded");
    assert_eq!(app.status, Status::Note("mitigation cancelled; nothing was written".into()));
    assert!(!app.mitigation.runs_dir.exists(), "the runs folder made for the run is gone");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

fn submitted(effects: Vec<Effect>) -> Vec<Job> {
    effects.into_iter().filter_map(|e| if let Effect::Submit(job) = e { Some(job) } else { None }).collect()
}

#[test]
fn the_tour_sets_the_form_for_each_step_runs_it_and_ends() {
    let s = session();
    let mut app = app_for(&s);
    app.baseline = Some((40, Split::Val, report(&[(100, 100), (100, 46), (100, 24), (100, 98)])));
    // Step 1 runs nothing (it prepares G1's gradient) and says what the groups panel shows.
    let jobs = submitted(app.update(Action::Tour));
    assert!(jobs.iter().all(|j| matches!(j, Job::Prepare { .. })), "{jobs:?}");
    let screen = render(&app, 80, 24);
    assert!(screen.contains("Tour 1/9: average vs worst group"), "{screen}");
    let text = app.tour_text().unwrap().2;
    assert!(text.contains("val mean 96.6%") && text.contains("worst 24.0%: group G2"), "{text}");
    assert!(screen.contains("minority."), "{screen}");
    // Step 2: zero-out of the top 3 of stage2.block0.conv2 by G1's gradient: the CLI's
    // `intervene --within stage2.block0.conv2 --group G1`.
    let jobs = submitted(app.update(Action::TourNext));
    let expected = InterventionSpec::neurons(40)
        .within("stage2.block0.conv2")
        .criterion(memscope_core::studies::intervention::gradient(Some(1), 0));
    assert!(matches!(jobs.last(), Some(Job::Intervene(spec)) if *spec == expected), "{jobs:?}");
    assert_eq!((app.layer_name(), app.group), ("stage2.block0.conv2", 1));
    // Step 3: noise with σ 0.01 over 10 runs on the same neurons.
    let jobs = submitted(app.update(Action::TourNext));
    let noise = expected.clone().change(memscope_core::edit::Intervention::Noise { sigma: 0.01 });
    assert!(matches!(jobs.last(), Some(Job::Intervene(spec)) if *spec == noise), "{jobs:?}");
    // A long study still running from a step is cancelled when the tour moves on.
    app.running = Some(memscope::tui::app::Running {
        id: 9,
        label: "sweeping epochs",
        started: Instant::now(),
        done: 3,
        total: 41,
    });
    let effects = app.update(Action::TourNext);
    assert!(matches!(effects.first(), Some(Effect::Cancel)), "{effects:?}");
    app.running = None;
    app.update(Action::TourPrev);
    // Back, then every step to the end; each title fits at 80 columns whole.
    assert!(
        matches!(submitted(app.update(Action::TourPrev)).last(), Some(Job::Intervene(spec)) if *spec == expected)
    );
    let mut views = Vec::new();
    while app.tour.is_some() {
        let screen = render(&app, 80, 24);
        let (at, title, _) = app.tour_text().unwrap();
        assert!(screen.contains(&format!("Tour {}/9: {title}", at + 1)), "{screen}");
        views.push(app.view);
        app.update(Action::TourNext);
    }
    assert_eq!(views.last(), Some(&View::Images));
    assert!(
        views.contains(&View::Ranks) && views.contains(&View::Sensitivity) && views.contains(&View::Epochs)
    );
    assert!(matches!(&app.status, Status::Note(n) if n.contains("end of the tour")));
}

#[test]
fn prompts_jump_to_an_epoch_and_filter_the_layers_and_the_mouse_picks_rows() {
    let s = session();
    let mut app = app_for(&s);
    press(&mut app, KeyCode::Char(':'));
    for c in ['1', 'x', '2'] {
        press(&mut app, KeyCode::Char(c));
    }
    assert!(render(&app, 80, 24).contains(":epoch 12▏"));
    let jobs = submitted(press(&mut app, KeyCode::Enter));
    assert_eq!(app.epoch_number(), 12);
    assert!(matches!(jobs.first(), Some(Job::Baseline { epoch: 12, .. })), "{jobs:?}");
    press(&mut app, KeyCode::Char(':'));
    for c in ['9', '9', '1'] {
        press(&mut app, KeyCode::Char(c));
    }
    press(&mut app, KeyCode::Backspace);
    assert!(submitted(press(&mut app, KeyCode::Enter)).is_empty());
    assert!(
        matches!(&app.status, Status::Error(e) if e.contains("no checkpoint of epoch '99'") && e.contains("0..=40"))
    );
    // `/short`: only the shortcut convs are listed, the selection moves onto one.
    press(&mut app, KeyCode::Char('/'));
    for c in "short".chars() {
        press(&mut app, KeyCode::Char(c));
    }
    assert_eq!(app.shown_layers().len(), 2);
    assert_eq!(app.layer_name(), "stage2.block0.shortcut.conv");
    press(&mut app, KeyCode::Enter);
    let screen = render(&app, 80, 24);
    assert!(screen.contains("Layers /short: 2 of 10"), "{screen}");
    app.focus = Panel::Layers;
    press(&mut app, KeyCode::Char('j'));
    assert_eq!(app.layer_name(), "stage3.block0.shortcut.conv");
    press(&mut app, KeyCode::Char('/'));
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.shown_layers().len(), 10);
    // A click on the Groups panel's third row selects G2 and prepares its gradient: the draw
    // says where the panel is, the loop turns the click into an action on it.
    let (_, hits) = draw(&app, 80, 24);
    let mouse = |kind, column, row| MouseEvent { kind, column, row, modifiers: KeyModifiers::NONE };
    let rect = hits.area(Panel::Groups).unwrap();
    app.group = 0;
    let click = hits.action(mouse(MouseEventKind::Down(MouseButton::Left), rect.x + 3, rect.y + 3)).unwrap();
    assert_eq!(click, Action::Click { panel: Panel::Groups, row: Some(2) });
    let jobs = submitted(app.update(click));
    assert_eq!((app.focus, app.group), (Panel::Groups, 2));
    assert!(matches!(jobs.first(), Some(Job::Prepare { .. })), "{jobs:?}");
    // The wheel over the epochs moves the epoch.
    let rect = hits.area(Panel::Epochs).unwrap();
    let before = app.epoch;
    app.update(hits.action(mouse(MouseEventKind::ScrollUp, rect.x + 2, rect.y + 2)).unwrap());
    assert_eq!((app.focus, app.epoch), (Panel::Epochs, before - 3));
}

/// `:` with no number (letters are not taken) says what to type, not "no checkpoint of epoch
/// ''"; Esc then clears that line, and an error's too.
#[test]
fn an_empty_epoch_prompt_says_what_to_type_and_esc_clears_the_message() {
    let s = session();
    let mut app = app_for(&s);
    let before = app.epoch_number();
    press(&mut app, KeyCode::Char(':'));
    for c in ['a', 'b'] {
        press(&mut app, KeyCode::Char(c));
    }
    assert!(submitted(press(&mut app, KeyCode::Enter)).is_empty());
    assert_eq!(app.epoch_number(), before);
    let hint = "type an epoch number (0..=40) after : and press Enter";
    assert!(matches!(&app.status, Status::Note(n) if n == hint), "{:?}", app.status);
    assert!(render(&app, 100, 24).contains(hint));
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.status, Status::Idle);
    assert!(!render(&app, 100, 24).contains(hint));
    // An epoch without a checkpoint is an error, cleared the same way.
    press(&mut app, KeyCode::Char(':'));
    for c in ['9', '9'] {
        press(&mut app, KeyCode::Char(c));
    }
    press(&mut app, KeyCode::Enter);
    assert!(matches!(&app.status, Status::Error(e) if e.contains("no checkpoint of epoch '99'")));
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.status, Status::Idle);
}

#[test]
fn a_pinned_result_is_drawn_beside_the_next() {
    let s = session();
    let mut app = app_for(&s);
    app.update(Action::Pin);
    assert!(matches!(&app.status, Status::Note(n) if n.contains("nothing to pin")));
    let first = result(app.spec());
    app.on_event(Event::Finished {
        id: 0,
        output: Output::Intervention(Box::new(first.clone())),
        elapsed: Duration::ZERO,
    });
    app.update(Action::Pin);
    assert_eq!(app.bars.pinned.as_ref(), Some(&first));
    // The pinned result alone is not drawn twice.
    assert!(!render(&app, 80, 24).contains("Pinned"));
    let mut second = result(app.spec().top_k(1));
    second.groups[1].change = Some(-0.42);
    app.on_event(Event::Finished {
        id: 0,
        output: Output::Intervention(Box::new(second)),
        elapsed: Duration::ZERO,
    });
    // Side by side at 160 columns; at 80 the pinned change is a column beside the current one.
    for (w, h, pinned) in [(80, 24, "pin Δ"), (160, 45, "Pinned: Δ acc")] {
        let screen = render(&app, w, h);
        assert!(screen.contains(pinned) && screen.contains("-42.0") && screen.contains("+54.0"), "{screen}");
        // Each group's row keeps its worst mark: none wraps onto a line of its own.
        let alone = screen.lines().flat_map(|l| l.split('│')).any(|p| ["worst", "(was)"].contains(&p.trim()));
        assert!(!alone && screen.contains(" worst"), "{screen}");
    }
    app.update(Action::Pin);
    assert!(!render(&app, 160, 45).contains("Pinned"));
}

#[test]
fn epoch_series_and_flipped_images_equal_the_cli_and_draw_at_80x24_and_160x45() {
    let s = session();
    let mut app = app_for(&s);
    let mut worker = Worker::spawn(session());
    // The tour's step 2 setting: zero-out of the top 3 of stage2.block0.conv2 by G1's gradient.
    app.update(Action::Tour);
    app.update(Action::TourNext);
    app.tour = None;
    app.update(Action::Show(View::Epochs));
    let mut spec = app.epoch_series_spec();
    assert_eq!(spec.epochs.len(), 41);
    spec.epochs = vec![20, 30, 40];
    let started = Instant::now();
    run_job(&mut worker, &mut app, Job::Epochs(spec));
    eprintln!("epoch series of 3 epochs: {:.2} s", started.elapsed().as_secs_f64());
    let series = app.series.series.clone().unwrap();
    for point in &series.points {
        let epoch = point.epoch.to_string();
        let cli =
            common::cli_changes(&["--within", "stage2.block0.conv2", "--group", "G1", "--epoch", &epoch]);
        let shown: Vec<String> =
            point.groups.iter().map(|g| format!("{:+.1}", 100.0 * g.change.unwrap())).collect();
        assert_eq!(shown, cli, "epoch {epoch}");
    }
    // Images: G1's examples; the counts are the intervention's accuracies (1 example = 1 point).
    app.update(Action::Show(View::Images));
    let Some(Effect::Submit(job)) = app.update(Action::Run).pop() else { panic!("no job") };
    run_job(&mut worker, &mut app, job);
    let flips = app.images.flips.clone().unwrap();
    let mut session = session();
    let r = memscope_core::studies::intervention::run(
        &mut session,
        &app.spec(),
        &mut memscope_core::jobs::Silent,
    )
    .unwrap();
    let g = &r.groups[1];
    assert_eq!(flips.examples.len(), g.examples);
    assert_eq!(flips.correct_before() as f64, (g.before.unwrap() * g.examples as f64).round());
    assert_eq!(flips.correct_after() as f64, (g.after.unwrap() * g.examples as f64).round());
    assert_eq!(flips.correct_before() - flips.broken() + flips.fixed(), flips.correct_after());
    assert!(flips.broken() > 0);
    let settings = snapshot_settings();
    settings.bind(|| {
        for (w, h) in [(80, 24), (160, 45)] {
            insta::assert_snapshot!(format!("images_{w}x{h}"), render(&app, w, h));
        }
        app.view = View::Epochs;
        app.scroll = 0;
        for (w, h) in [(80, 24), (160, 45)] {
            insta::assert_snapshot!(format!("epochs_{w}x{h}"), render(&app, w, h));
        }
    });
    // Both export as JSON with provenance and CSV.
    let dir = tempfile::tempdir().unwrap();
    let stem = memscope::tui::export(&app, dir.path()).unwrap();
    let csv = std::fs::read_to_string(stem.with_extension("csv")).unwrap();
    assert!(csv.starts_with("epoch,group,name,examples,before,after,change,abs_change,error"), "{csv}");
    assert_eq!(csv.lines().filter(|l| l.starts_with("30,")).count(), 4);
    app.view = View::Images;
    let stem = memscope::tui::export(&app, dir.path()).unwrap();
    let csv = std::fs::read_to_string(stem.with_extension("csv")).unwrap();
    assert_eq!(csv.lines().filter(|l| l.ends_with(",broken")).count(), flips.broken());
}

#[test]
fn d_switches_to_the_vit_demo_whose_qkv_layers_offer_q_k_v_scopes() {
    let s = session();
    let mut app = app_for(&s);
    let Some(Effect::Open(dir)) = app.update(Action::Demo).pop() else { panic!("no switch") };
    assert!(dir.ends_with("checkpoints/spurious-digits-vit"), "{}", dir.display());
    let exp = Experiment::open(&dir).unwrap();
    let vit = Session::new(exp.clone(), s.dataset().clone(), DeviceSpec::Cpu.device().unwrap()).unwrap();
    app.reopen(&exp, vit.dataset(), vit.layers().to_vec());
    // And back: the other demo of the ViT's is the ResNet's.
    assert!(
        matches!(app.update(Action::Demo).pop(), Some(Effect::Open(d)) if d.ends_with("checkpoints/spurious-digits"))
    );
    app.focus = Panel::Layers;
    app.update(Action::Down);
    assert_eq!(app.layer_name(), "blocks.0.attn.qkv");
    app.focus = Panel::Form;
    app.form.field = Field::Scope;
    for _ in 0..4 {
        app.update(Action::Right);
    }
    assert_eq!(
        app.spec().query.scope,
        memscope_core::neurons::select::Scope::Layer("blocks.0.attn.qkv:k".into())
    );
    // A layer without q, k, v parts: the scope falls back to the whole layer.
    app.focus = Panel::Layers;
    app.update(Action::Down);
    assert_eq!(
        app.spec().query.scope,
        memscope_core::neurons::select::Scope::Layer("blocks.0.attn.proj".into())
    );
}

/// Keys rebound away from every default that a text on screen names.
const REBOUND: &str = "(keys: (run: 'x', cancel: 'z', scale: 'B', pin: 'P', export: 'E', open: 'W', tour: 'T', \
                       tour_next: \"F5\", report: 'R', left: 'a', right: 'f', sensitivity: 's'))";

/// What the screen said with the default keys, where it named them.
const DEFAULT_KEY_TEXTS: [&str; 22] = [
    "press Enter",
    "Enter:",
    ": Enter",
    "each Enter",
    "Enter run",
    "Enter start",
    "Enter fine-tunes",
    "Enter starts",
    "(b)",
    "p unpins",
    "p pins",
    "o opens",
    "Esc cancels",
    "t starts",
    "t closes",
    "t ends",
    "n next",
    "e exports",
    "e writes",
    "r the report",
    "←→",
    "view (5)",
];

/// An app whose keys are [`REBOUND`], at the last epoch with the demo's baseline.
fn rebound_app(s: &Session) -> App {
    let mut app = app_for(s);
    app.keys = keymap_of(REBOUND).unwrap();
    app.baseline = Some((40, Split::Val, report(&[(100, 100), (100, 46), (100, 24), (100, 98)])));
    app
}

/// `text` names each of `rebound` and none of the default keys' texts.
fn names_rebound_keys(text: &str, rebound: &[&str]) {
    for expected in rebound {
        assert!(text.contains(expected), "{expected:?} missing from:\n{text}");
    }
    for default in DEFAULT_KEY_TEXTS {
        assert!(!text.contains(default), "{default:?} (a default key) in:\n{text}");
    }
}

#[test]
fn rebound_keys_are_named_in_the_result_panels_the_help_and_the_status_line() {
    let s = session();
    let mut app = rebound_app(&s);
    let screen = render(&app, 160, 45);
    names_rebound_keys(&screen, &["and press x.", "(a/f change, x run)", "x runs the intervention"]);
    assert_eq!(
        app.status.text(&app.keys),
        "x runs the intervention · Tab moves between panels · ? lists every key"
    );
    app.view = View::Neurons;
    names_rebound_keys(&render(&app, 160, 45), &["none yet: press x"]);
    app.view = View::History;
    names_rebound_keys(&render(&app, 160, 45), &["none yet: each x adds its run here"]);
    // Bars: the scale's key, a pinned result's, a stale result's.
    app.view = View::Bars;
    let first = result(app.spec());
    app.on_event(Event::Finished {
        id: 0,
        output: Output::Intervention(Box::new(first)),
        elapsed: Duration::ZERO,
    });
    app.update(Action::Pin);
    let second = result(app.spec().top_k(1));
    app.on_event(Event::Finished {
        id: 0,
        output: Output::Intervention(Box::new(second)),
        elapsed: Duration::ZERO,
    });
    names_rebound_keys(&render(&app, 160, 45), &["bars ±100 (B)", "pinned (P unpins) · "]);
    // Narrow: the pinned result is a column, named under the bars (scrolled to).
    app.scroll = 100;
    names_rebound_keys(&render(&app, 80, 24), &["pin Δ (P unpins): "]);
    app.scroll = 0;
    app.focus = Panel::Form;
    app.form.field = Field::Count;
    app.update(Action::Right);
    names_rebound_keys(&render(&app, 160, 45), &["stale: press x · shown: "]);
    app.view = View::Neurons;
    names_rebound_keys(&render(&app, 160, 45), &["stale: press x"]);
    // The help: its symbols and where exports go.
    app.help.open = true;
    names_rebound_keys(&render(&app, 160, 45), &["E writes JSON and CSV", "R the report"]);
    app.help.scroll = 100;
    // The symbols: a stale result is run again with the run key (the line wraps here).
    names_rebound_keys(&render(&app, 160, 45), &["this result:", "press x"]);
    app.help.open = false;
    // While a job runs: the gauge names the cancel key.
    let started = Instant::now();
    app.running =
        Some(memscope::tui::app::Running { id: 1, label: "intervening", started, done: 0, total: 0 });
    names_rebound_keys(&render(&app, 160, 45), &["(z cancels)"]);
    app.running = None;
    // A layer rewound: the caption names the Sensitivity view by its key.
    let train: Vec<usize> = app.groups.iter().map(|g| g.train).collect();
    let rewound = result(InterventionSpec::rewind_layer(40, "head", 20));
    let caption = memscope::tui::caption::intervention(&rewound, &app.layers, &train, &app.keys);
    names_rebound_keys(&caption, &["the Sensitivity view (s) rewinds each layer alone"]);
}

#[test]
fn rebound_keys_are_named_in_the_studies_and_the_exports_errors() {
    let s = session();
    let mut app = rebound_app(&s);
    app.view = View::Ranks;
    names_rebound_keys(&render(&app, 160, 45), &["press x to compute"]);
    app.view = View::Sweep;
    names_rebound_keys(
        &render(&app, 160, 45),
        &["x: the form's intervention within each layer (10; z cancels)"],
    );
    app.sweep.sweep = Some(memscope_core::studies::sweep::Sweep { spec: app.sweep_spec(), rows: Vec::new() });
    names_rebound_keys(&render(&app, 160, 45), &["--within LAYER · E exports"]);
    app.view = View::Epochs;
    names_rebound_keys(
        &render(&app, 160, 45),
        &["x: the form's intervention at each of the 41 epochs", "(z cancels)"],
    );
    let series =
        memscope_core::studies::epochs::EpochSeries { spec: app.epoch_series_spec(), points: Vec::new() };
    app.series.series = Some(series);
    names_rebound_keys(&render(&app, 160, 45), &["--epoch E · E exports"]);
    app.view = View::Images;
    names_rebound_keys(&render(&app, 160, 45), &["x: the form's intervention, then G2's examples"]);
    let err = memscope::tui::export(&app, tempfile::tempdir().unwrap().path()).unwrap_err();
    names_rebound_keys(&format!("{err:#}"), &["nothing to export yet: press x in the Images view first"]);
    let example = |index| memscope_core::studies::flips::FlipExample { index, label: 0, before: 0, after: 1 };
    app.images.flips = Some(memscope_core::studies::flips::Flips {
        spec: app.flips_spec(),
        group_name: app.groups[app.group].name.clone(),
        class_names: vec!["0-4".into(), "5-9".into()],
        examples: vec![example(0), example(1)],
        drawn: Vec::new(),
        image_shape: [1, 28, 28],
        pixels: Vec::new(),
    });
    names_rebound_keys(&render(&app, 160, 45), &["the first 0 of 2 drawn (E exports every one)"]);
    // Every study stale: its rerun key.
    app.focus = Panel::Form;
    app.form.field = Field::Count;
    app.update(Action::Right);
    for view in [View::Images, View::Epochs, View::Sweep] {
        app.view = view;
        names_rebound_keys(&render(&app, 160, 45), &["stale: press x · shown:"]);
    }
    // Sensitivity: the distance's keys, and the key that reruns it at the epoch selected now.
    let Some(Effect::Submit(Job::Sensitivity(spec))) = app.update(Action::Show(View::Sensitivity)).pop()
    else {
        panic!("no sensitivity job")
    };
    app.on_event(Event::Finished {
        id: 0,
        output: Output::Sensitivity(Box::new(sensitivity(spec))),
        elapsed: Duration::ZERO,
    });
    names_rebound_keys(&render(&app, 160, 45), &["Rewind 5 epochs back (a/f)"]);
    app.epoch -= 1;
    names_rebound_keys(&render(&app, 160, 45), &["stale (epoch 40, val): x"]);
}

#[test]
fn rebound_keys_are_named_by_the_tour_and_the_mitigation_view() {
    let s = session();
    let mut app = rebound_app(&s);
    // The tour, started, moved and ended by its rebound keys.
    press(&mut app, KeyCode::Char('T'));
    names_rebound_keys(&render(&app, 160, 45), &["F5 next · N back · T ends"]);
    let mut words = Vec::new();
    while let Some((.., text)) = app.tour_text() {
        words.push(text);
        press(&mut app, KeyCode::F(5));
    }
    names_rebound_keys(&words.join("\n"), &["P pins it for step 3", "a/f in this panel", "T closes it"]);
    names_rebound_keys(&app.status.to_string(), &["end of the tour · T starts it again"]);
    press(&mut app, KeyCode::Char('T'));
    press(&mut app, KeyCode::Char('T'));
    names_rebound_keys(&app.status.to_string(), &["tour ended · T starts it again"]);
    // Mitigation: its form, nothing to open yet, a run in progress, a run written.
    app.mitigation.runs_dir = "/runs".into();
    app.update(Action::Show(View::Mitigation));
    names_rebound_keys(&render(&app, 160, 45), &["(a/f change, x start)", "No run yet. x fine-tunes"]);
    press(&mut app, KeyCode::Char('W'));
    names_rebound_keys(&app.status.to_string(), &["no finished run to open yet: x starts one"]);
    press(&mut app, KeyCode::Char('x'));
    press(&mut app, KeyCode::Char('x'));
    names_rebound_keys(
        &app.status.to_string(),
        &["a mitigation run is in progress: wait for it, or z cancels it"],
    );
    press(&mut app, KeyCode::Char('W'));
    names_rebound_keys(&app.status.to_string(), &["a run is in progress: W opens it once it has finished"]);
    let out = std::path::PathBuf::from("/runs/spurious-digits-erm-seed0");
    let update = |update| Event::Mitigation { id: 7, update };
    app.on_event(Event::Started { id: 7, label: "mitigating" });
    app.on_event(update(Update::Writing(out.clone())));
    app.on_event(update(Update::Epoch(point(0, 1, 0.24, 0.966))));
    app.on_event(update(Update::Epoch(point(1, 1, 0.33, 0.951))));
    let mut experiment = s.experiment().clone();
    experiment.dir = out;
    app.on_event(Event::Finished {
        id: 7,
        output: Output::Mitigated(Box::new(experiment)),
        elapsed: Duration::ZERO,
    });
    names_rebound_keys(&app.status.to_string(), &["wrote /runs/spurious-digits-erm-seed0 · W opens it"]);
    names_rebound_keys(&render(&app, 160, 45), &["written to /runs/spurious-digits-erm-seed0 · W opens it"]);
    app.on_event(Event::Finished {
        id: 8,
        output: Output::Comparison(Box::new(comparison())),
        elapsed: Duration::ZERO,
    });
    // Narrow: a page at a time, the comparison first, saying where the run went.
    names_rebound_keys(
        &render(&app, 100, 24),
        &[
            "Run and comparison (a/f here: curves / table)",
            "written to /runs/spurious-digits-erm-seed0 · W opens it",
        ],
    );
}

/// `o` and `d` stop the worker without waiting: `stop` returns at once, the running job ends
/// at its next batch with a cancellation, the session comes back, and meanwhile the gauge says
/// what it waits for instead of naming the cancel key.
#[test]
fn stopping_the_worker_returns_at_once_and_the_session_comes_back_after_the_batch() {
    let s = session();
    let mut app = app_for(&s);
    let mut worker = Worker::spawn(session());
    // Every study of the report: many seconds of passes on the demo.
    let id = worker.submit(Job::Report(app.report_spec()));
    loop {
        let event = worker.events.recv_timeout(Duration::from_secs(60)).expect("worker answered");
        let started = matches!(&event, Event::Progress { id: i, .. } if *i == id);
        app.on_event(event);
        if started {
            break;
        }
    }
    let started = Instant::now();
    worker.stop();
    assert!(started.elapsed() < Duration::from_millis(50), "stop waited {:?}", started.elapsed());
    assert!(worker.take_session().is_none(), "the session came back while its job ran");
    app.opening = Some("spurious-digits-vit".into());
    let screen = render(&app, 160, 45);
    assert!(screen.contains("report (studies) "), "{screen}");
    assert!(screen.contains("stopping after this batch, then opening spurious-digits-vit…"), "{screen}");
    assert!(!screen.contains("Esc cancels"), "{screen}");

    let ended = loop {
        match worker.events.recv_timeout(Duration::from_secs(60)).expect("worker answered") {
            Event::Cancelled { id: i } if i == id => break Instant::now(),
            Event::Finished { .. } | Event::Failed { .. } => panic!("the report was not cancelled"),
            _ => {}
        }
    };
    while !worker.has_ended() {
        assert!(ended.elapsed() < Duration::from_secs(10), "the thread did not end");
        std::thread::sleep(Duration::from_millis(5));
    }
    eprintln!("the report stopped {} ms after stop", (ended - started).as_millis());
    let session = worker.take_session().expect("the session back");
    assert_eq!(session.experiment().manifest.name, "spurious-digits");
    // Jobs submitted after the stop are dropped.
    worker.submit(app.baseline_job());
    assert!(worker.events.recv_timeout(Duration::from_millis(300)).is_err());
}

/// The neurons an intervention spec changes, as ids.
fn by_hand(spec: &InterventionSpec) -> Vec<String> {
    match &spec.query.selection {
        memscope_core::neurons::select::Selection::ByHand(ids) => {
            ids.iter().map(ToString::to_string).collect()
        }
        other => panic!("not chosen by hand: {other}"),
    }
}

fn typed(app: &mut App, text: &str) {
    press(app, KeyCode::Char('#'));
    assert_eq!(app.mode(), Mode::Prompt);
    while app.prompt.as_ref().is_some_and(|p| !p.text.is_empty()) {
        press(app, KeyCode::Backspace);
    }
    for c in text.chars() {
        press(app, KeyCode::Char(c));
    }
    press(app, KeyCode::Enter);
}

#[test]
fn neurons_pinned_in_the_neurons_view_or_typed_replace_the_ranking() {
    let s = session();
    let mut app = app_for(&s);
    app.baseline = Some((40, Split::Val, report(&[(100, 100), (100, 46), (100, 24), (100, 98)])));
    app.on_event(Event::Finished {
        id: 0,
        output: Output::Intervention(Box::new(result(app.spec()))),
        elapsed: Duration::from_millis(1),
    });
    // Space on the Neurons view's row at the cursor (↓ moves it in the results panel).
    press(&mut app, KeyCode::Char('3'));
    app.focus = Panel::Results;
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Char(' '));
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Char(' '));
    assert_eq!(by_hand(&app.spec()), ["stage1.block0.conv1:4", "head:1"]);
    assert!(
        matches!(&app.status, Status::Note(n) if n.contains("head:1 chosen by hand (2 chosen")),
        "{:?}",
        app.status
    );
    let settings = snapshot_settings();
    settings.bind(|| insta::assert_snapshot!("neurons_pinned_80x24", render(&app, 80, 24)));
    // Space again drops it.
    press(&mut app, KeyCode::Char(' '));
    assert_eq!(by_hand(&app.spec()), ["stage1.block0.conv1:4"]);

    // The form shows them in place of the ranking's count and scope; Enter runs them.
    assert!(!app.form.visible().contains(&Field::Count) && app.form.visible().contains(&Field::Chosen));
    let job = submitted(press(&mut app, KeyCode::Enter)).pop();
    let Some(Job::Intervene(spec)) = job else { panic!("{job:?}") };
    assert_eq!(by_hand(&spec), ["stage1.block0.conv1:4"]);
    assert_eq!(spec.query.scope, memscope_core::neurons::select::Scope::Global);

    // Typed at the # prompt: ids, or bare indices in the selected layer (stem.conv).
    typed(&mut app, "3, head:0");
    assert_eq!(by_hand(&app.spec()), ["stem.conv:3", "head:0"]);
    // The Sweep view sweeps the layers that hold them, each changing its own.
    let sweep = app.sweep_spec();
    assert_eq!(sweep.layers, ["stem.conv", "head"]);
    assert_eq!(by_hand(&sweep.at("head")), ["head:0"]);
    // A bad id is an error naming it; the neurons chosen stay.
    typed(&mut app, "head:0, head:5");
    assert!(
        matches!(&app.status, Status::Error(e) if e.contains("'head:5'") && e.contains("(0..=1)")),
        "{:?}",
        app.status
    );
    assert_eq!(by_hand(&app.spec()), ["stem.conv:3", "head:0"]);

    // The result's caption says they were chosen by hand and names them.
    app.on_event(Event::Finished {
        id: 0,
        output: Output::Intervention(Box::new(result(app.spec()))),
        elapsed: Duration::from_millis(1),
    });
    app.update(Action::Show(View::Bars));
    app.focus = Panel::Form;
    let screen = render(&app, 80, 24);
    assert!(screen.contains("Chosen by hand: stem.conv:3, head:0"), "{screen}");
    settings.bind(|| insta::assert_snapshot!("bars_by_hand_80x24", screen));

    // Another granularity drops them (ids name one granularity's neurons); an empty prompt
    // brings the ranking back.
    typed(&mut app, "head:1");
    app.form.field = Field::Granularity;
    app.update(Action::Right);
    assert!(app.form.chosen.is_empty());
    typed(&mut app, "head:1");
    typed(&mut app, "");
    assert_eq!(app.spec().query.selection, memscope_core::neurons::select::Selection::TopK(3));
}

#[test]
fn a_form_value_cut_at_80_columns_ends_in_an_ellipsis_and_the_status_keeps_the_scope() {
    let s = session();
    let mut app = app_for(&s);
    app.layer = app.layers.iter().position(|l| l.name == "stage2.block0.shortcut.conv").unwrap();
    app.form.reach = memscope::tui::form::Reach::Layer;
    app.form.ranking = memscope::tui::form::Ranking::RandomControl;
    let screen = render(&app, 80, 24);
    let mut cut = 0;
    for field in app.form.visible() {
        let (_, value) = app.form.describe(field, &app.group_label(), app.layer_name());
        if screen.contains(&value) {
            continue;
        }
        // Cut: its beginning is drawn, and the cut is marked.
        let start: String = value.chars().take(12).collect();
        let line =
            screen.lines().find(|l| l.contains(&start)).unwrap_or_else(|| panic!("{value}:\n{screen}"));
        assert!(line.contains('…'), "{value} cut without a mark: {line}");
        cut += 1;
    }
    assert!(cut >= 1, "nothing was cut at 80 columns:\n{screen}");
    // The status line after a layer-normalised run names the normalisation.
    let normalized = result(InterventionSpec::neurons(40).normalize_layers(true));
    assert!(memscope::tui::text::short(&normalized).contains("global ÷ layer mean"));
    // The random control's settings in counts of its scope.
    let control = InterventionSpec::neurons(40)
        .within("stage2.block0.conv2")
        .select(memscope_core::neurons::select::Selection::Random { count: 3, outside_top: 3.0 / 32.0 });
    let mut control = result(control);
    control.candidates = 32;
    let words = memscope::tui::text::describe_run(&control);
    assert!(words.contains("3 random of the 29 units outside the top 3"), "{words}");
}

/// A runs folder holding a finished jtt run (the demo's first three epochs, recorded as a
/// run from its epoch 40) and a `compare` result (the fixture comparison, as JSON).
fn runs_folder(s: &Session) -> (tempfile::TempDir, std::path::PathBuf) {
    use memscope_core::experiment::lineage::{LabelUse, Lineage};
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let mut run = s.experiment().clone();
    run.dir = runs.join("spurious-digits-jtt-seed0");
    std::fs::create_dir_all(&run.dir).unwrap();
    run.manifest.name = "spurious-digits-jtt-seed0".into();
    run.manifest.checkpoints.truncate(3);
    let jtt = memscope_core::mitigate::default_methods().into_iter().find(|m| m.name() == "jtt").unwrap();
    run.manifest.lineage = Some(Lineage {
        parent: DEMO.into(),
        parent_name: "spurious-digits".into(),
        start_epoch: 40,
        start_sha256: String::new(),
        method: jtt,
        labels: LabelUse::None,
        seed: 0,
        data_changes: Vec::new(),
    });
    run.save().unwrap();
    let mut compared = comparison();
    compared.experiments[1].parent = Some(DEMO.into());
    std::fs::write(runs.join("compare.json"), serde_json::to_string(&compared).unwrap()).unwrap();
    (dir, runs)
}

#[test]
fn the_mitigation_view_shows_finished_runs_and_compare_results_without_running_them() {
    let s = session();
    let mut app = app_for(&s);
    let (_dir, runs) = runs_folder(&s);
    app.mitigation.runs_dir = runs.clone();
    app.update(Action::Show(View::Mitigation));
    assert!(app.mitigation.lists_runs());
    let screen = render(&app, 80, 24);
    assert!(!screen.contains("No run yet"), "{screen}");
    assert!(screen.contains("▶ jtt from epoch 40 · spurious-digits-jtt-seed"), "{screen}");
    // The curve as the run recorded it: the demo's epoch 2, worst of its val groups.
    let last = &s.experiment().manifest.checkpoints[2].val_accuracy;
    let worst = last.iter().flatten().copied().fold(f64::INFINITY, f64::min);
    assert!(screen.contains("epoch 2/2 · finished"), "{screen}");
    assert!(screen.contains(&format!("val worst-group {:.1}%", 100.0 * worst)), "{screen}");
    // The compare result: its table, labelled short.
    app.focus = Panel::Results;
    app.update(Action::Down);
    let screen = render(&app, 80, 24);
    assert!(screen.contains("compare.json · compare of 2 experiments"), "{screen}");
    assert!(screen.contains("parent") && screen.contains("erm s0"), "{screen}");
    assert!(app.update(Action::Open).is_empty(), "a comparison is no experiment");
    assert!(matches!(&app.status, Status::Note(n) if n.contains("compare result")), "{:?}", app.status);
    // `o` on the run opens it.
    app.update(Action::Up);
    let effects = app.update(Action::Open);
    assert!(
        matches!(effects.as_slice(), [Effect::Open(d)] if *d == runs.join("spurious-digits-jtt-seed0")),
        "{effects:?}"
    );
    // An empty runs folder: no run yet, and where it looked.
    app.mitigation.runs_dir = runs.join("none");
    app.update(Action::Show(View::Bars));
    app.update(Action::Show(View::Mitigation));
    assert!(render(&app, 160, 45).contains("No finished run in"));
}

#[test]
fn o_opens_another_experiment_from_a_list_narrowed_by_typing() {
    let s = session();
    let mut app = app_for(&s);
    let (_dir, runs) = runs_folder(&s);
    app.mitigation.runs_dir = runs.clone();
    assert!(press(&mut app, KeyCode::Char('O')).is_empty());
    assert_eq!(app.mode(), Mode::Prompt);
    // The run and the ViT demo; not the experiment open now.
    let names: Vec<&str> = app.picker.iter().map(|o| o.name.as_str()).collect();
    assert!(names.contains(&"spurious-digits-jtt-seed0"), "{names:?}");
    assert!(!names.contains(&"spurious-digits"), "{names:?}");
    let screen = render(&app, 80, 24);
    assert!(screen.contains("Open an experiment") && screen.contains("jtt from"), "{screen}");
    for c in "jtt".chars() {
        press(&mut app, KeyCode::Char(c));
    }
    assert_eq!(app.open_matches("jtt").len(), 1);
    let effects = press(&mut app, KeyCode::Enter);
    assert!(
        matches!(effects.as_slice(), [Effect::Open(d)] if *d == runs.join("spurious-digits-jtt-seed0")),
        "{effects:?}"
    );
    press(&mut app, KeyCode::Char('O'));
    for c in "zzz".chars() {
        press(&mut app, KeyCode::Char(c));
    }
    assert!(press(&mut app, KeyCode::Enter).is_empty());
    assert!(matches!(&app.status, Status::Error(e) if e.contains("'zzz'")), "{:?}", app.status);
}

#[test]
fn the_mitigation_chart_labels_fifty_percent_only_halfway_up() {
    let s = session();
    let mut app = app_for(&s);
    app.mitigation.runs_dir = "/nonexistent-runs".into();
    app.update(Action::Show(View::Mitigation));
    app.mitigation.form.method = Method::Erm;
    app.update(Action::Run);
    let update = |update| Event::Mitigation { id: 3, update };
    app.on_event(Event::Started { id: 3, label: "mitigating" });
    app.on_event(update(Update::Writing("/runs/x".into())));
    for e in 0..=5 {
        app.on_event(update(Update::Epoch(point(e, 5, 0.2 + 0.05 * e as f64, 0.95))));
    }
    for height in [24, 25, 26, 27, 30] {
        let screen = render(&app, 80, height);
        let row = |label: &str| screen.lines().position(|l| l.contains(&format!("│{label:<4}│")));
        let (top, bottom) = (row("100%").expect("100%"), row("0%").expect("0%"));
        if let Some(mid) = row("50%") {
            assert_eq!(mid - top, bottom - mid, "{height} rows:\n{screen}");
        }
        // The x axis names its unit in its last label, not over the 0% row.
        assert!(screen.lines().nth(bottom).is_some_and(|l| !l.contains("epoch")), "{screen}");
        assert!(screen.contains("epoch 5│"), "{screen}");
    }
}

#[test]
fn the_form_offers_label_free_scoring_with_its_sampling_and_split() {
    let s = session();
    let mut app = app_for(&s);
    app.focus = Panel::Form;
    app.form.field = Field::Criterion;
    app.update(Action::Left);
    let screen = render(&app, 80, 24);
    for text in ["label-free gradient (all) ▶", "examples   128 of the 256 highest-loss", "scored on   train"]
    {
        assert!(screen.contains(text), "{text:?} missing from:\n{screen}");
    }
    // As `--group all --sampling high-loss:256:128 --score-split train`.
    let criterion = memscope_core::neurons::scores::Criterion::Gradient {
        group: None,
        split: Split::Train,
        sampling: "high-loss:256:128".parse().unwrap(),
        seed: memscope_core::util::rng::DEFAULT_SEED,
    };
    assert_eq!(app.spec().query.criterion, criterion);
    assert_eq!(memscope::tui::text::criterion(&criterion), "grad all (high-loss:256:128 of train)");
}

/// The result caption carries the boundary-shift control in one line of at most 80 columns,
/// with the minority groups' explained/flips where they fit, and says so when no shift
/// explains the flips.
#[test]
fn the_caption_says_how_many_flips_a_boundary_shift_explains() {
    use memscope_core::studies::shift::{BoundaryShift, ShiftFit};
    let s = session();
    let mut app = app_for(&s);
    let fit = |explained: Vec<usize>| ShiftFit {
        shift: vec![0.0, 4.0],
        flips: 76,
        explained: explained.iter().sum(),
        extra: 3,
        group_flips: vec![1, 42, 31, 2],
        group_explained: explained,
    };
    let mut shifted = result(app.spec());
    shifted.boundary_shift = Some(BoundaryShift::of(vec![fit(vec![1, 36, 31, 2])], 2, 4));
    app.on_event(Event::Finished {
        id: 0,
        output: Output::Intervention(Box::new(shifted.clone())),
        elapsed: Duration::ZERO,
    });
    let train: Vec<usize> = app.groups.iter().map(|g| g.train).collect();
    let caption =
        |r: &InterventionResult, width| memscope::tui::caption::boundary_shift(r, &train, width).unwrap();
    let line = caption(&shifted, 78);
    assert_eq!(line, "A boundary shift explains 70 of 76 flips (minority G1 36/42 G2 31/31)");
    assert_eq!(caption(&shifted, 60), "A boundary shift explains 70 of 76 flips");
    // The bars panel is 46 columns wide at 80x24 and 65 at 160x45: the sentence alone.
    for (w, h) in [(80, 24), (160, 45)] {
        let screen = render(&app, w, h);
        assert!(screen.contains("│A boundary shift explains 70 of 76 flips  "), "{screen}");
    }

    shifted.boundary_shift = Some(BoundaryShift::of(vec![fit(vec![0, 0, 0, 0])], 2, 4));
    let none = caption(&shifted, 78);
    assert_eq!(none, "No constant shift explains these flips");
}
