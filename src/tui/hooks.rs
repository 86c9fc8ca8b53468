//! Hooks into the explorer's loop for measurement and tests, kept out of the loop itself:
//! the loop only calls a [`LoopHook`] after each frame. Two exist, each set by a hidden
//! option of `memscope explore`, because the real binary in a real terminal is what they
//! must measure or test (a cargo feature would give tests and `memscope-bench` another build):
//!
//! - `--bench-exit frame|result` (for `memscope-bench`): quit after the first frame, or once
//!   the first intervention's result is drawn; then print the peak memory for bench to read.
//! - `--panic-after-first-frame` (for the end-to-end test): panic, to show the terminal is
//!   restored on every exit path.

use std::ops::ControlFlow;

use super::app::App;
use super::worker::Job;

/// Called by the explorer's loop; the default methods do nothing.
pub trait LoopHook {
    /// Jobs to queue at start, after the baseline and the idle preparation.
    fn start(&mut self, _app: &App) -> Vec<Job> {
        Vec::new()
    }

    /// After each frame drawn: `Break` quits the explorer.
    fn after_frame(&mut self, _app: &App) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }

    /// After the terminal is restored.
    fn after_exit(&mut self) {}
}

/// When `memscope-bench` wants the explorer to quit by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchExit {
    /// After the first frame.
    Frame,
    /// After the first intervention's result is on screen (the default request, queued at start).
    Result,
}

impl LoopHook for BenchExit {
    fn start(&mut self, app: &App) -> Vec<Job> {
        match self {
            BenchExit::Result => vec![Job::Intervene(app.spec())],
            BenchExit::Frame => Vec::new(),
        }
    }

    fn after_frame(&mut self, app: &App) -> ControlFlow<()> {
        match self {
            BenchExit::Frame => ControlFlow::Break(()),
            BenchExit::Result if app.bars.result.is_some() => ControlFlow::Break(()),
            BenchExit::Result => ControlFlow::Continue(()),
        }
    }

    fn after_exit(&mut self) {
        // Read by `memscope-bench` from the terminal's output.
        let peak = memscope_core::util::memory::megabytes(memscope_core::util::memory::Memory::PeakResident);
        println!("memscope-bench: peak_rss_mb={:.1}", peak.unwrap_or(0.0));
    }
}

/// Panics after the first frame (the end-to-end test of terminal restoration).
pub struct PanicAfterFirstFrame;

impl LoopHook for PanicAfterFirstFrame {
    fn after_frame(&mut self, _app: &App) -> ControlFlow<()> {
        panic!("--panic-after-first-frame: panicking after the first frame to test terminal restoration")
    }
}

/// The hidden options of `memscope explore` that choose a hook.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct HookArgs {
    /// Quit after the first frame or the first result (for `memscope-bench`).
    #[arg(long, hide = true)]
    pub bench_exit: Option<BenchExit>,
    /// Panic after the first frame (tests that the terminal is restored).
    #[arg(long, hide = true, conflicts_with = "bench_exit")]
    pub panic_after_first_frame: bool,
}

impl HookArgs {
    pub fn hook(&self) -> Option<Box<dyn LoopHook>> {
        match (self.bench_exit, self.panic_after_first_frame) {
            (Some(exit), _) => Some(Box::new(exit)),
            (None, true) => Some(Box::new(PanicAfterFirstFrame)),
            (None, false) => None,
        }
    }
}
