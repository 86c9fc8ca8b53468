//! The worker thread: it owns the session (model, caches) and runs one job at a time.
//! Jobs come in over a channel; of the waiting jobs of one kind only the newest runs, and
//! kinds run in a fixed order (baseline, intervention, mitigation, comparison, studies, the
//! report, then idle preparation). When the explorer stops it, the thread hands the session back.
//!
//! What each view asks for: Bars an intervention (`studies::intervention`); Sweep the form's
//! intervention with its scope replaced by each layer (`SweepSpec::at`, progress per layer,
//! cancellation between layers); Epochs the same intervention at every checkpoint
//! (`EpochSeriesSpec::at`); Images every example of one group predicted before and after the
//! intervention's first run (`studies::flips`, the steps `intervention::run` takes, then
//! `Session::logits_with`). Mitigation calls `mitigate::mitigate` on the session's experiment
//! and streams `Event::Mitigation` (the run folder, then each epoch's val accuracies) beside the
//! per-batch `Event::Progress`; a finished run makes the app ask for a comparison
//! (`mitigate::compare`).
//!
//! Every job takes the progress closure, which reports to the loop and carries the cancel flag:
//! each pass over a split asks it at every batch, so a cancelled job ends within one batch.
//! Opening another experiment (`o`, `d`) stops the worker (`Worker::stop`, which returns at
//! once); the loop keeps drawing until the thread has ended, takes the session back
//! (`Worker::take_session`) and starts a new worker on it. Quitting never waits for the
//! thread: see `Worker::quit`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::mitigation::{self, MitigationRequest, Update};
use memscope_core::data::Split;
use memscope_core::eval::AccuracyReport;
use memscope_core::experiment::Experiment;
use memscope_core::jobs::{CancelFlag, Progress, is_cancelled};
use memscope_core::mitigate::compare::{Comparison, compare};
use memscope_core::neurons::scores::Criterion;
use memscope_core::report::{self, ReportData, ReportSpec};
use memscope_core::session::Session;
use memscope_core::studies::epochs::{EpochSeries, EpochSeriesSpec};
use memscope_core::studies::flips::{Flips, FlipsSpec};
use memscope_core::studies::intervention::{InterventionResult, InterventionSpec};
use memscope_core::studies::ranks::{RankSpec, RankStudy};
use memscope_core::studies::sensitivity::{SensitivitySpec, SensitivityStudy};
use memscope_core::studies::sweep::{Sweep, SweepSpec};
use memscope_core::studies::{epochs, flips, intervention, ranks, sensitivity, sweep};

/// The worker thread's name (the explorer's panic hook recognises it).
pub const WORKER_THREAD: &str = "memscope-worker";

/// Work for the worker.
#[derive(Clone, Debug)]
pub enum Job {
    Baseline {
        epoch: usize,
        split: Split,
    },
    Intervene(InterventionSpec),
    Ranks(RankSpec),
    Sensitivity(SensitivitySpec),
    /// The form's intervention within every layer.
    Sweep(SweepSpec),
    /// The form's intervention at every epoch.
    Epochs(EpochSeriesSpec),
    /// Which examples of a group the form's intervention flips.
    Flips(FlipsSpec),
    /// While the user is idle: compute the gradient scores the next intervention will
    /// likely need, so that Enter finds them cached.
    Prepare {
        epoch: usize,
        criterion: Criterion,
    },
    /// Fine-tune from the session's experiment into a new one (the Mitigation view).
    Mitigate(Box<MitigationRequest>),
    /// Compare these experiments (a parent and its runs) on the session's data.
    Compare(Vec<PathBuf>),
    /// Every study of `memscope report` (its numbers, for the page the loop writes).
    Report(ReportSpec),
}

impl Job {
    pub fn label(&self) -> &'static str {
        match self {
            Job::Baseline { .. } => "evaluating",
            Job::Intervene(_) => "intervening",
            Job::Ranks(_) => "rank histograms",
            Job::Sensitivity(_) => "sensitive layers",
            Job::Sweep(_) => "sweeping layers",
            Job::Epochs(_) => "sweeping epochs",
            Job::Flips(_) => "finding flipped examples",
            Job::Prepare { .. } => "preparing",
            Job::Mitigate(_) => "mitigating",
            Job::Compare(_) => "comparing",
            Job::Report(_) => "report (studies)",
        }
    }

    /// Run order among waiting jobs; also the kind within which only the newest is kept.
    fn priority(&self) -> u8 {
        match self {
            Job::Baseline { .. } => 0,
            Job::Intervene(_) => 1,
            Job::Flips(_) => 2,
            Job::Mitigate(_) => 3,
            Job::Compare(_) => 4,
            Job::Ranks(_) => 5,
            Job::Sensitivity(_) => 6,
            Job::Sweep(_) => 7,
            Job::Epochs(_) => 8,
            Job::Report(_) => 9,
            Job::Prepare { .. } => 10,
        }
    }
}

/// What a job produced.
#[derive(Clone, Debug)]
pub enum Output {
    Baseline {
        epoch: usize,
        split: Split,
        report: AccuracyReport,
    },
    Intervention(Box<InterventionResult>),
    Ranks(Box<RankStudy>),
    Sensitivity(Box<SensitivityStudy>),
    Sweep(Box<Sweep>),
    Epochs(Box<EpochSeries>),
    Flips(Box<Flips>),
    Prepared,
    /// The new experiment a mitigation wrote.
    Mitigated(Box<Experiment>),
    Comparison(Box<Comparison>),
    /// Every number of the HTML report.
    Report(Box<ReportData>),
}

/// Messages from the worker.
#[derive(Debug)]
pub enum Event {
    Started {
        id: u64,
        label: &'static str,
    },
    Progress {
        id: u64,
        done: usize,
        total: usize,
    },
    /// A running mitigation's folder, then each epoch it records.
    Mitigation {
        id: u64,
        update: Update,
    },
    Finished {
        id: u64,
        output: Output,
        elapsed: Duration,
    },
    /// The job stopped because it was asked to.
    Cancelled {
        id: u64,
    },
    Failed {
        id: u64,
        message: String,
    },
}

/// The UI's handle on the worker.
pub struct Worker {
    jobs: Option<Sender<(u64, Job)>>,
    pub events: Receiver<Event>,
    cancel: CancelFlag,
    next_id: u64,
    thread: Option<JoinHandle<Session>>,
}

impl Worker {
    pub fn spawn(session: Session) -> Worker {
        let (job_tx, job_rx) = channel::<(u64, Job)>();
        let (event_tx, event_rx) = channel();
        let cancel = CancelFlag::default();
        let flag = cancel.clone();
        let thread = std::thread::Builder::new()
            .name(WORKER_THREAD.into())
            .spawn(move || serve(session, job_rx, event_tx, flag))
            .ok();
        Worker { jobs: Some(job_tx), events: event_rx, cancel, next_id: 1, thread }
    }

    /// Queues `job`; returns its id.
    pub fn submit(&mut self, job: Job) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send((id, job));
        }
        id
    }

    /// Asks the running job to stop at its next checkpoint.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Cancels the running job and drops the waiting ones; returns at once. The thread ends
    /// at the job's next checkpoint (within one batch) and keeps the session for
    /// [`Worker::take_session`]; jobs submitted from now on are dropped.
    pub fn stop(&mut self) {
        self.cancel();
        self.jobs.take();
    }

    /// Whether the thread has ended (after [`Worker::stop`], once its job has stopped).
    pub fn has_ended(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// The session back, once the thread has ended: none while it runs, or when it is gone.
    pub fn take_session(&mut self) -> Option<Session> {
        if !self.has_ended() {
            return None;
        }
        self.thread.take().and_then(|thread| thread.join().ok())
    }

    /// Stops the worker when the explorer quits, without waiting for its job: an idle thread
    /// ends at once and is joined (`true`). A busy one is left running, detached (`false`): the
    /// caller then ends the process at once with `interrupt::exit_now`, which removes what was
    /// being written, as Ctrl-C does, and never runs libtorch's static destructors under the
    /// still-computing thread.
    pub fn quit(mut self) -> bool {
        self.stop();
        let deadline = Instant::now() + IDLE_END;
        while !self.has_ended() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        if self.has_ended() {
            return true;
        }
        self.thread.take();
        false
    }
}

/// How long an idle worker may take to end once its channel is closed.
const IDLE_END: Duration = Duration::from_millis(5);

impl Drop for Worker {
    fn drop(&mut self) {
        self.cancel();
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    mut session: Session,
    jobs: Receiver<(u64, Job)>,
    events: Sender<Event>,
    cancel: CancelFlag,
) -> Session {
    let mut waiting: BTreeMap<u8, (u64, Job)> = BTreeMap::new();
    loop {
        if waiting.is_empty() {
            match jobs.recv() {
                Ok((id, job)) => waiting.insert(job.priority(), (id, job)),
                Err(_) => return session,
            };
        }
        // A newer job replaces a waiting one of the same kind; a closed channel means the
        // explorer quit, and nothing waiting is worth running.
        loop {
            match jobs.try_recv() {
                Ok((id, job)) => {
                    waiting.insert(job.priority(), (id, job));
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return session,
            }
        }
        let Some((_, (id, job))) = waiting.pop_first() else { continue };
        cancel.reset();
        let _ = events.send(Event::Started { id, label: job.label() });
        let start = Instant::now();
        let mut progress = |done: usize, total: usize| {
            let _ = events.send(Event::Progress { id, done, total });
            !cancel.is_set()
        };
        // A panic inside the engine becomes an error message instead of ending the worker
        // (the explorer's panic hook leaves the terminal alone for this thread).
        let output = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            execute(&mut session, job, (id, &events), &mut progress)
        }));
        let event = match output {
            Ok(Ok(output)) => Event::Finished { id, output, elapsed: start.elapsed() },
            Ok(Err(e)) if is_cancelled(&e) => Event::Cancelled { id },
            Ok(Err(e)) => Event::Failed { id, message: format!("{e:#}") },
            Err(panic) => {
                // Out of memory outside a guarded pass is one line, like the guarded ones.
                let message =
                    memscope_core::device::uncaught_out_of_memory(panic.as_ref()).unwrap_or_else(|| {
                        let what = panic
                            .downcast_ref::<String>()
                            .map(String::as_str)
                            .or_else(|| panic.downcast_ref::<&str>().copied())
                            .unwrap_or("unknown panic");
                        format!("internal error in the engine: {what}")
                    });
                Event::Failed { id, message }
            }
        };
        if events.send(event).is_err() {
            return session;
        }
    }
}

/// Runs `job` on the session; a mitigation's updates go out as events of job `id`.
fn execute(
    session: &mut Session,
    job: Job,
    (id, events): (u64, &Sender<Event>),
    progress: &mut dyn Progress,
) -> Result<Output> {
    match job {
        Job::Baseline { epoch, split } => {
            session.baseline(epoch, split, progress).map(|report| Output::Baseline { epoch, split, report })
        }
        Job::Intervene(spec) => {
            intervention::run(session, &spec, progress).map(|r| Output::Intervention(Box::new(r)))
        }
        Job::Ranks(spec) => ranks::run(session, &spec, progress).map(|r| Output::Ranks(Box::new(r))),
        Job::Sensitivity(spec) => {
            sensitivity::run(session, &spec, progress).map(|r| Output::Sensitivity(Box::new(r)))
        }
        Job::Sweep(spec) => sweep::run(session, &spec, progress).map(|r| Output::Sweep(Box::new(r))),
        Job::Epochs(spec) => epochs::run(session, &spec, progress).map(|r| Output::Epochs(Box::new(r))),
        Job::Flips(spec) => flips::run(session, &spec, progress).map(|r| Output::Flips(Box::new(r))),
        Job::Prepare { epoch, criterion } => {
            session.score_source(epoch, &criterion, progress).map(|_| Output::Prepared)
        }
        Job::Mitigate(request) => mitigate(
            session,
            &request,
            &mut |update| {
                let _ = events.send(Event::Mitigation { id, update });
            },
            progress,
        )
        .map(|e| Output::Mitigated(Box::new(e))),
        Job::Compare(dirs) => dirs
            .iter()
            .map(|d| Experiment::open(d))
            .collect::<Result<Vec<_>>>()
            .and_then(|experiments| compare(&experiments, session.dataset(), session.device(), progress))
            .map(|c| Output::Comparison(Box::new(c))),
        Job::Report(spec) => report::build(session, &spec, progress).map(|r| Output::Report(Box::new(r))),
    }
}

/// Runs `request` from the session's experiment into the first free run folder (sent first
/// through `on_update`, then every epoch recorded). A run that stops early leaves nothing:
/// the writer removes its staging folder, and a runs folder made for it is removed if empty.
fn mitigate(
    session: &Session,
    request: &MitigationRequest,
    on_update: &mut dyn FnMut(Update),
    progress: &mut dyn Progress,
) -> Result<Experiment> {
    let out = mitigation::free_folder(&request.runs_dir, &request.stem, mitigation::taken_on_disk);
    on_update(Update::Writing(out.clone()));
    let made_runs_dir = !request.runs_dir.exists();
    let mut plan = request.plan.clone();
    plan.name = out.file_name().map(|n| n.to_string_lossy().into_owned());
    let result = memscope_core::mitigate::mitigate(memscope_core::mitigate::MitigationRun {
        parent: session.experiment(),
        dataset: session.dataset(),
        plan: &plan,
        out: &out,
        overwrite: false,
        device: session.device(),
        on_epoch: &mut |report| on_update(Update::Epoch(report.into())),
        progress,
    });
    if result.is_err() && made_runs_dir {
        let _ = std::fs::remove_dir(&request.runs_dir);
    }
    result
}
