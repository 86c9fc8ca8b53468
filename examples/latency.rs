//! Explorer latency on the bundled demo: Enter → result through the worker thread (cold
//! and warm caches), start-up work before the first frame, and the time to draw a frame.
//!
//!     cargo run --release --example latency

use std::path::Path;
use std::time::{Duration, Instant};

use memscope::tui::app::App;
use memscope::tui::theme::{Config, Theme};
use memscope::tui::ui;
use memscope::tui::worker::{Event, Job, Worker};
use memscope_core::device::DeviceSpec;
use memscope_core::experiment::{Experiment, demo};
use memscope_core::session::Session;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn open(dir: &Path) -> (Experiment, memscope_core::data::GroupedDataset) {
    let exp = Experiment::open(dir).unwrap();
    let data = exp.manifest.dataset.load().unwrap();
    (exp, data)
}

/// Submits `job` and waits for its result; returns the wall time from submission.
fn timed(worker: &mut Worker, app: &mut App, job: Job) -> Duration {
    let start = Instant::now();
    let id = worker.submit(job);
    loop {
        let event = worker.events.recv().unwrap();
        let done = matches!(&event, Event::Finished { id: i, .. } | Event::Failed { id: i, .. } | Event::Cancelled { id: i } if *i == id);
        app.on_event(event);
        if done {
            return start.elapsed();
        }
    }
}

fn stats(mut ms: Vec<f64>) -> String {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    format!("median {:.1} ms, p95 {:.1} ms, min {:.1} ms (n = {})", at(0.5), at(0.95), ms[0], ms.len())
}

fn main() {
    memscope_core::device::tune_allocator(); // as the binary's main does
    let dir = demo::locate().unwrap();
    let device = DeviceSpec::Cpu.device().unwrap();

    let mut startup = Vec::new();
    let mut cold = Vec::new();
    for _ in 0..7 {
        let start = Instant::now();
        let (exp, data) = open(&dir);
        let session = Session::new(exp.clone(), data.clone(), device.clone()).unwrap();
        let mut app = App::new(&exp, &data, session.layers().to_vec());
        startup.push(start.elapsed().as_secs_f64() * 1e3);
        let mut worker = Worker::spawn(session);
        let spec = app.spec();
        cold.push(timed(&mut worker, &mut app, Job::Intervene(spec)).as_secs_f64() * 1e3);
    }
    println!("start-up before the first frame (open experiment, generate data, layers): {}", stats(startup));
    println!(
        "Enter -> result, cold (loads epoch 40, baseline, G2 gradient, zero-out top-3): {}",
        stats(cold)
    );

    let (exp, data) = open(&dir);
    let session = Session::new(exp.clone(), data.clone(), device).unwrap();
    let mut app = App::new(&exp, &data, session.layers().to_vec());
    let mut worker = Worker::spawn(session);
    let spec = app.spec();
    timed(&mut worker, &mut app, Job::Intervene(spec.clone()));
    let warm: Vec<f64> = (0..30)
        .map(|_| timed(&mut worker, &mut app, Job::Intervene(spec.clone())).as_secs_f64() * 1e3)
        .collect();
    println!("Enter -> result, warm (caches filled): {}", stats(warm));
    drop(worker); // its idle preparation would compete with the measurements below

    // One warm intervention per layer scope, with and without the activation cache.
    for layer in ["stem.conv", "stage1.block0.conv2", "stage2.block0.conv2", "stage3.block0.conv2"] {
        let mut line = format!("warm zero-out top-3 within {layer}:");
        for budget in [memscope_core::session::DEFAULT_ACTIVATION_BUDGET, 0] {
            let (exp, data) = open(&dir);
            let mut session = Session::new(exp, data, DeviceSpec::Cpu.device().unwrap()).unwrap();
            session.set_activation_budget(budget);
            let request = spec.clone().within(layer);
            memscope_core::studies::intervention::run(
                &mut session,
                &request,
                &mut memscope_core::jobs::Silent,
            )
            .unwrap();
            let ms: Vec<f64> = (0..30)
                .map(|_| {
                    let start = Instant::now();
                    memscope_core::studies::intervention::run(
                        &mut session,
                        &request,
                        &mut memscope_core::jobs::Silent,
                    )
                    .unwrap();
                    start.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            line += &format!("\n    {}: {}", if budget > 0 { "cached" } else { "no cache" }, stats(ms));
        }
        println!("{line}");
    }

    // The tour's step 2 (zero-out of the top 3 within stage2.block0.conv2 by G1's gradient):
    // its layer sweep, epoch series and flipped images, each on a fresh worker (cold: every
    // checkpoint and gradient computed) and again on the same worker (warm).
    let mut lines = Vec::new();
    let (mut sweeps, mut series, mut flips) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..3 {
        let (exp, data) = open(&dir);
        let session = Session::new(exp.clone(), data.clone(), DeviceSpec::Cpu.device().unwrap()).unwrap();
        let mut app = App::new(&exp, &data, session.layers().to_vec());
        let mut worker = Worker::spawn(session);
        app.update(memscope::tui::app::Action::Tour);
        app.update(memscope::tui::app::Action::TourNext);
        app.tour = None;
        for pass in ["cold", "warm"] {
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            let (sweep, epochs, flip) = (
                Job::Sweep(app.sweep_spec()),
                Job::Epochs(app.epoch_series_spec()),
                Job::Flips(app.flips_spec()),
            );
            let s = ms(timed(&mut worker, &mut app, sweep));
            let e = ms(timed(&mut worker, &mut app, epochs));
            let f = ms(timed(&mut worker, &mut app, flip));
            if pass == "cold" {
                sweeps.push(s);
                series.push(e);
                flips.push(f);
            }
            lines.push(format!("round {round} {pass}: sweep of 10 layers {s:.0} ms, series of 41 epochs {e:.0} ms, flips {f:.0} ms"));
        }
    }
    for line in lines {
        println!("{line}");
    }
    println!("layer sweep, cold: {}", stats(sweeps));
    println!("epoch series of 41 epochs, cold: {}", stats(series));
    println!("flipped images of G1, after the series: {}", stats(flips));

    let theme = Theme::new(&Config::default(), false).unwrap();
    for (w, h) in [(80, 24), (120, 40), (200, 60)] {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        let frames: Vec<f64> = (0..300)
            .map(|_| {
                let start = Instant::now();
                terminal
                    .draw(|f| {
                        ui::draw(f, &app, &theme);
                    })
                    .unwrap();
                start.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        println!("draw one frame at {w}x{h} (bars view, into a TestBackend): {}", stats(frames));
    }
}
