//! The real binary in a real terminal (tmux): open the demo, pick a layer and a group, run
//! a zero-out, see the bars, open help, quit; and a panic that still restores the terminal.

mod common;

use common::tmux::Tmux;

use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_memscope");

#[test]
fn explore_the_demo_run_a_zero_out_and_quit() {
    // The expected numbers, from the CLI: zero-out top 3 within stage2.block0.conv2 by G1's gradient.
    let out = Command::new(BIN)
        .args(["intervene", "--within", "stage2.block0.conv2", "--group", "G1", "--format", "csv"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let csv = String::from_utf8(out.stdout).unwrap();
    let changes: Vec<String> = csv
        .lines()
        .skip(1)
        .map(|l| format!("{:+.1}", 100.0 * l.split(',').nth(6).unwrap().parse::<f64>().unwrap()))
        .collect();

    let t = Tmux::start("memscope-e2e");
    t.line(BIN);
    t.wait_for(&["No intervention yet", "G2 5-9 on land", "24.0%"]);
    // Layers panel: two panels back from the form; the fifth layer.
    t.keys(&["BTab", "BTab", "Down", "Down", "Down", "Down"]);
    // Groups panel: G2 → G1.
    t.keys(&["Tab", "Up"]);
    // Form: scope → (wrapping back) within the selected layer; run.
    t.keys(&["Tab", "Down", "Down", "Left"]);
    t.wait_for(&["within stage2.block0.conv2"]);
    t.keys(&["Enter"]);
    let screen = t.wait_for(&["Δ acc, pp", "by grad G1"]);
    for change in &changes {
        assert!(screen.contains(change.as_str()), "bar value {change} missing:\n{screen}");
    }
    // The help names the device and the libtorch this build runs on.
    t.keys(&["?"]);
    let libtorch = format!("· libtorch {}", memscope_core::device::LIBTORCH);
    t.wait_for(&["Keys", "cancel the running job", "device: cpu (", &libtorch]);
    t.keys(&["Escape"]);
    t.keys(&["q"]);
    t.assert_shell_usable();
}

#[test]
fn neurons_typed_by_their_ids_give_the_cli_numbers_and_pin_in_the_neurons_view() {
    const IDS: &str = "stem.conv:13,stem.conv:7,stem.conv:15";
    let out = Command::new(BIN).args(["intervene", "--neurons", IDS, "--format", "csv"]).output().unwrap();
    assert!(out.status.success());
    let csv = String::from_utf8(out.stdout).unwrap();
    let changes: Vec<String> = csv
        .lines()
        .skip(1)
        .map(|l| format!("{:+.1}", 100.0 * l.split(',').nth(6).unwrap().parse::<f64>().unwrap()))
        .collect();

    let t = Tmux::start("memscope-e2e-named");
    t.line(BIN);
    t.wait_for(&["No intervention yet", "24.0%"]);
    t.keys(&["#"]);
    t.wait_for(&["#neurons"]);
    t.line(IDS);
    t.wait_for(&["by hand: stem.conv:13"]);
    t.keys(&["Enter"]);
    let screen = t.wait_for(&["Δ acc, pp", "Chosen by hand: stem.conv:13, stem.conv:7"]);
    for change in &changes {
        assert!(screen.contains(change.as_str()), "bar value {change} missing:\n{screen}");
    }
    // The Neurons view: Space on the cursor's row (the first) drops it.
    t.keys(&["3", "Tab"]);
    t.wait_for(&["›●stem.conv:13"]);
    t.keys(&["Space"]);
    t.wait_for(&["stem.conv:13 dropped (2 chosen by hand)"]);
    t.keys(&["q"]);
    t.assert_shell_usable();
}

#[test]
fn a_wide_header_names_the_device_and_the_libtorch() {
    let t = Tmux::start_sized("memscope-e2e-device", 200, 30);
    t.line(&format!("{BIN} --threads 1"));
    let header = format!(
        "cpu ({}1 thread) · libtorch {}",
        cpu_model().map(|m| format!("{m}, ")).unwrap_or_default(),
        memscope_core::device::LIBTORCH
    );
    let screen = t.wait_for(&["No intervention yet", &header]);
    assert!(screen.lines().next().is_some_and(|l| l.contains(&header)), "not on the first line:\n{screen}");
    t.keys(&["q"]);
    t.assert_shell_usable();
}

/// The processor's model as /proc/cpuinfo gives it.
fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_string())
}

#[test]
fn the_first_enter_at_80x24_is_explained_and_a_changed_form_marks_it_stale() {
    // The CLI's defaults are the form's: global top-3 units by the smallest group's gradient.
    let changes = common::cli_changes(&[]);
    let t = Tmux::start_sized("memscope-e2e-caption", 80, 24);
    t.line(BIN);
    t.wait_for(&["No intervention yet", "24.0%"]);
    let started = Instant::now();
    t.keys(&["Enter"]);
    // The caption says why the majority group collapses, and what to try instead.
    let screen = t.wait_for(&["stem filters", "try scope ÷ layer mean", "bars ±100 (b)", "100/group"]);
    eprintln!("Enter to bars at 80x24: {:.2} s", started.elapsed().as_secs_f64());
    for change in &changes {
        assert!(screen.contains(change.as_str()), "bar value {change} missing:\n{screen}");
    }
    assert!(!screen.contains("stale"), "{screen}");
    // Scope → global ÷ layer mean: the bars still show the raw ranking, marked stale.
    t.keys(&["Down", "Down", "Right"]);
    t.wait_for(&["stale: press Enter", "global ÷ layer mean"]);
    t.keys(&["Enter"]);
    let normalized = common::cli_changes(&["--normalize-layers"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let screen = t.screen();
        if !screen.contains("stale") && normalized.iter().all(|c| screen.contains(c.as_str())) {
            break;
        }
        assert!(Instant::now() < deadline, "not the normalised result {normalized:?}:\n{screen}");
        sleep(Duration::from_millis(100));
    }
    t.keys(&["q"]);
    t.assert_shell_usable();
}

#[test]
fn a_layer_sweep_at_80x24_equals_the_cli_layer_by_layer() {
    let layers = [
        "stem.conv",
        "stage1.block0.conv1",
        "stage1.block0.conv2",
        "stage2.block0.conv1",
        "stage2.block0.conv2",
        "stage2.block0.shortcut.conv",
        "stage3.block0.conv1",
        "stage3.block0.conv2",
        "stage3.block0.shortcut.conv",
    ];
    let t = Tmux::start_sized("memscope-e2e-sweep", 80, 24);
    t.line(BIN);
    t.wait_for(&["No intervention yet", "24.0%"]);
    t.keys(&["7"]);
    t.wait_for(&["Enter: the form's", "(10; Esc cancels)"]);
    let started = Instant::now();
    t.keys(&["Enter"]);
    t.wait_for(&["sweep of 10 layers in"]);
    eprintln!("sweep of 10 layers at 80x24: {:.2} s", started.elapsed().as_secs_f64());
    // The right-hand panel of both pages (Tab to the results panel, End scrolls to the end).
    let right = |screen: &str| -> Vec<String> {
        screen.lines().map(|l| l.chars().skip(32).collect::<String>()).collect()
    };
    let mut rows = right(&t.screen());
    t.keys(&["Tab", "End"]);
    t.wait_for(&["↓0 more"]);
    rows.extend(right(&t.screen()));
    for layer in layers {
        let short = layer.replace(".block0", "").replace("shortcut.conv", "shortcut");
        let expected = common::cli_changes(&["--within", layer]);
        let i = rows
            .iter()
            .position(|r| {
                let r = r.trim_start_matches('│').trim_end_matches(['│', ' ']);
                r == short || r.starts_with(&format!("{short} "))
            })
            .unwrap_or_else(|| panic!("no row for {short}:\n{}", rows.join("\n")));
        let numbers = |row: &str| -> Vec<String> {
            row.split_whitespace()
                .filter(|w| w.starts_with(['+', '-']))
                .map(|w| w.trim_end_matches(['*', '│']).to_string())
                .collect()
        };
        // A name too long for its column has its numbers on the next line.
        let shown = if numbers(&rows[i]).is_empty() { numbers(&rows[i + 1]) } else { numbers(&rows[i]) };
        assert_eq!(shown, expected, "{short}: {}", rows[i]);
    }
    // The head has two units: the CLI refuses a top 3 there, and the sweep says so.
    let out = Command::new(BIN).args(["intervene", "--within", "head"]).output().unwrap();
    assert!(!out.status.success());
    assert!(rows.iter().any(|r| r.contains("head") && r.contains("not run")), "{}", rows.join("\n"));
    t.keys(&["q"]);
    t.assert_shell_usable();
}

#[test]
fn a_panic_still_restores_the_terminal() {
    let t = Tmux::start("memscope-e2e-panic");
    // A hidden hook of `explore` panics after the first frame (see src/tui/hooks.rs).
    t.line(&format!("{BIN} explore --panic-after-first-frame; echo status-$?"));
    let screen = t.wait_for(&["status-101"]);
    assert!(screen.contains("panicking after the first frame"), "{screen}");
    t.assert_shell_usable();
}

#[test]
fn sigterm_and_sighup_restore_the_terminal() {
    for signal in ["TERM", "HUP"] {
        let t = Tmux::start(&format!("memscope-e2e-{signal}"));
        // `exec -a` gives this run a name of its own to signal.
        let name = format!("memscope-sig{signal}-{}", std::process::id());
        t.line(&format!("(exec -a {name} {BIN}); echo status-$?"));
        t.wait_for(&["G2 5-9 on land", "24.0%"]);
        let killed = Command::new("pkill").args([&format!("-{signal}"), "-f", &name]).status().unwrap();
        assert!(killed.success(), "no process named {name}");
        let screen = t.wait_for(&["status-130"]);
        assert!(!screen.contains("G2 5-9 on land"), "still on the alternate screen:\n{screen}");
        t.assert_shell_usable();
    }
}

#[test]
fn a_dumb_terminal_is_told_what_to_use_instead() {
    let t = Tmux::start("memscope-e2e-dumb");
    t.line(&format!("TERM=dumb {BIN}; echo status-$?"));
    let screen = t.wait_for(&["status-1"]);
    assert!(screen.contains("needs a capable terminal and TERM is 'dumb'"), "{screen}");
    t.assert_shell_usable();
}

#[test]
fn a_config_named_but_missing_is_an_error() {
    let t = Tmux::start("memscope-e2e-config");
    t.line(&format!("MEMSCOPE_CONFIG=/no/such/config.ron {BIN}; echo status-$?"));
    let screen = t.wait_for(&["status-1"]);
    assert!(screen.contains("MEMSCOPE_CONFIG names /no/such/config.ron, which does not exist"), "{screen}");
    t.assert_shell_usable();
}

#[test]
fn mitigate_from_the_explorer_cancel_then_run_compare_and_open_it() {
    // The current directory is a temporary one: runs go to its memscope-runs/. At most 40
    // examples per group keep the epochs short.
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().canonicalize().unwrap();
    let run = cwd.join("memscope-runs").join("spurious-digits-erm-seed0");
    let t = Tmux::start("memscope-e2e-mitigate");
    t.line(&format!("cd {} && {BIN} explore --max-per-group 40", cwd.display()));
    t.wait_for(&["No intervention yet", "data: at most"]);
    t.keys(&["6"]);
    t.wait_for(&["No run yet", "silent-majority (code)", "released: 21"]);
    // The form: silent-majority (code) → erm (no group labels), 5 → 2 epochs.
    t.keys(&["Right", "Right", "Down", "Left", "Left", "Left"]);
    t.wait_for(&["◀ 2 ▶", "group labels   none", "memscope-runs"]);

    // Start, then cancel: nothing stays behind.
    t.keys(&["Enter"]);
    t.wait_for(&["mitigating", "writing"]);
    t.keys(&["Escape"]);
    t.wait_for(&["mitigation cancelled; nothing was written"]);
    assert_eq!(std::fs::read_dir(&cwd).unwrap().count(), 0, "the cancelled run left files");

    // Run: each epoch's val accuracies arrive, then the comparison.
    t.keys(&["Enter"]);
    t.wait_for(&["epoch 1/2", "val worst-group"]);
    t.wait_for(&["epoch 2/2"]);
    let screen = t.wait_for(&["written to", &run.display().to_string(), "erm s0", "best val worst-group"]);
    assert!(screen.contains("parent") && screen.contains("last 40"), "{screen}");
    assert!(run.join("experiment.ron").is_file(), "{} not written", run.display());

    // Open it: its three epochs are the timeline now.
    t.keys(&["o"]);
    t.wait_for(&["opened", "spurious-digits-erm-seed0 · epoch 2"]);
    t.keys(&["q"]);
    t.assert_shell_usable();

    // A new session shows the finished run at once (no training), and O opens it from a list.
    t.line(&format!("{BIN} explore --max-per-group 40"));
    t.wait_for(&["No intervention yet"]);
    t.keys(&["6"]);
    t.wait_for(&[
        "Finished runs 1/1",
        "erm from epoch 40 · spurious-digits-erm-seed0",
        "epoch 2/2 · finished",
    ]);
    t.keys(&["O"]);
    t.wait_for(&["Open an experiment", "runs folder · erm from"]);
    t.keys(&["e", "r", "m", "Enter"]);
    t.wait_for(&["opened", "spurious-digits-erm-seed0 · epoch 2"]);
    t.keys(&["q"]);
    t.assert_shell_usable();
    eprintln!("the mitigation end-to-end test took {:.1} s", started.elapsed().as_secs_f64());
}

/// Two experiments on one small set of spurious digits drawn at 64 px, for the tests of jobs on
/// a large model: `spurious-digits`, an untrained torchvision ResNet-50 (a backward pass of
/// four examples takes a visible fraction of a second on a CPU), and beside it
/// `spurious-digits-vit`, an untrained ResNet-18, which `d` switches to when `MEMSCOPE_DEMO`
/// names the first. Returns the first.
fn large_experiments(dir: &std::path::Path) -> std::path::PathBuf {
    use memscope_core::data::DatasetSpec;
    use memscope_core::data::digits::DigitsSpec;
    use memscope_core::experiment::{CheckpointEntry, ExperimentWriter, FORMAT, Manifest};
    use memscope_core::model::resnet::Depth;
    use memscope_core::model::{ModelConfig, ResNetConfig};
    let device = memscope_core::device::DeviceSpec::Cpu.device().unwrap();
    // The smallest training group, G2, is the one the idle preparation scores: 96 examples.
    let data = DigitsSpec {
        train_groups: [128, 128, 96, 128],
        eval_per_group: 8,
        image_size: 64,
        ..Default::default()
    };
    for (name, depth) in [("spurious-digits", Depth::ResNet50), ("spurious-digits-vit", Depth::ResNet18)] {
        let model = ModelConfig::ResNet(ResNetConfig { depth, ..Default::default() });
        let manifest = Manifest {
            format: FORMAT,
            name: name.into(),
            model: model.clone(),
            dataset: DatasetSpec::SpuriousDigits(data.clone()),
            classes: vec!["digit 0-4".into(), "digit 5-9".into()],
            groups: ["0-4 on land", "0-4 on water", "5-9 on land", "5-9 on water"].map(String::from).to_vec(),
            training: None,
            import: None,
            lineage: None,
            checkpoints: vec![],
        };
        let mut writer = ExperimentWriter::create(&dir.join(name), manifest, false).unwrap();
        let network = model.init(&device).unwrap();
        let entry = CheckpointEntry {
            epoch: 1,
            file: String::new(),
            sha256: String::new(),
            imported: None,
            train_loss: None,
            train_accuracy: vec![None; 4],
            val_accuracy: vec![None; 4],
            diagnostics: None,
        };
        writer.record(&network, entry).unwrap();
        writer.finish().unwrap();
    }
    dir.join("spurious-digits")
}

/// The gauge's `done/total` and seconds while the idle preparation (a gradient pass) runs,
/// once at least `batches` of its batches are done.
fn preparing(t: &Tmux, batches: usize) -> (usize, usize, f64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let screen = t.screen();
        // "preparing 3.2s  2/8  (Esc cancels)"
        let gauge = screen.lines().find_map(|l| l.split("preparing ").nth(1).map(str::to_string));
        if let Some(gauge) = gauge {
            let words: Vec<&str> = gauge.split_whitespace().collect();
            let seconds = words.first().and_then(|w| w.trim_end_matches('s').parse::<f64>().ok());
            let count = words.get(1).and_then(|w| w.split_once('/'));
            if let (Some(seconds), Some((done, total))) = (seconds, count)
                && let (Ok(done), Ok(total)) = (done.parse::<usize>(), total.parse::<usize>())
                && done >= batches
            {
                return (done, total, seconds);
            }
        }
        assert!(Instant::now() < deadline, "no gradient pass under way:\n{screen}");
        sleep(Duration::from_millis(20));
    }
}

/// Polls the screen every few milliseconds until it shows `text`; returns how long that took.
fn time_until(t: &Tmux, text: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let screen = t.screen();
        if screen.contains(text) {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "no '{text}' after {limit:?}:\n{screen}");
        sleep(Duration::from_millis(5));
    }
}

#[test]
fn quitting_during_a_gradient_pass_on_a_resnet50_does_not_wait_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let large = large_experiments(dir.path());
    let t = Tmux::start("memscope-e2e-quit");
    t.line(&format!("MEMSCOPE_DEMO={} {BIN} explore --grad-batch 4; echo status-$?", large.display()));
    let (done, total, _) = preparing(&t, 1);
    assert!(done < total, "the pass ended before q");
    let started = Instant::now();
    let status = t.tmux().args(["send-keys", "-t", "main", "q"]).status().unwrap();
    assert!(status.success());
    time_until(&t, "status-0", Duration::from_secs(30));
    let took = started.elapsed();
    eprintln!(
        "q during a ResNet-50 gradient pass (batch {done}/{total}) to the shell: {} ms",
        took.as_millis()
    );
    assert!(took < Duration::from_secs(1), "q took {took:?}");
    t.assert_shell_usable();
}

#[test]
fn switching_experiments_during_a_gradient_pass_waits_one_batch_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let large = large_experiments(dir.path());
    let t = Tmux::start_sized("memscope-e2e-switch", 160, 30);
    t.line(&format!("MEMSCOPE_DEMO={} {BIN} explore --grad-batch 4; echo status-$?", large.display()));
    let (done, total, seconds) = preparing(&t, 2);
    assert!(done < total, "the pass ended before d");
    let batch = Duration::from_secs_f64(seconds / done as f64);
    let started = Instant::now();
    let status = t.tmux().args(["send-keys", "-t", "main", "d"]).status().unwrap();
    assert!(status.success());
    // The gauge says what it waits for (unless the batch ended within a frame), then the other
    // experiment is on screen.
    let mut said = false;
    let took = loop {
        let screen = t.screen();
        said |= screen.contains("stopping after this batch, then opening spurious-digits-vit…");
        if screen.contains("spurious-digits-vit · epoch") {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "d did not open the other experiment:\n{screen}"
        );
        sleep(Duration::from_millis(5));
    };
    eprintln!(
        "d during a ResNet-50 gradient pass (batch {done}/{total}, {} ms a batch) to the other experiment: {} ms \
         (the gauge said so: {said})",
        batch.as_millis(),
        took.as_millis()
    );
    // At most the batch under way (and the opening), never the rest of the pass: a bound
    // between the two, not a speed target (the machine may be busy with other tests).
    let rest = batch * (total - done) as u32;
    assert!(
        took < rest / 2 + Duration::from_secs(1),
        "d took {took:?}, the rest of the pass is {rest:?} (batches of {batch:?})"
    );
    t.keys(&["q"]);
    t.wait_for(&["status-0"]);
    t.assert_shell_usable();
}
