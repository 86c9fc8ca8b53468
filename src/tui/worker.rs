//! The worker thread: it owns the session (model, caches) and runs one job at a time.
//! Jobs come in over a channel; when several are waiting, only the newest runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::data::Split;
use crate::eval::AccuracyReport;
use crate::session::Session;
use crate::studies::intervention::{InterventionResult, InterventionSpec};
use crate::studies::ranks::{RankSpec, RankStudy};
use crate::studies::sensitivity::{SensitivitySpec, SensitivityStudy};
use crate::studies::{intervention, ranks, sensitivity};

/// The worker thread's name (the explorer's panic hook recognises it).
pub const WORKER_THREAD: &str = "memscope-worker";

/// Work for the worker.
#[derive(Clone, Debug)]
pub enum Job {
    Baseline { epoch: usize, split: Split },
    Intervene(InterventionSpec),
    Ranks(RankSpec),
    Sensitivity(SensitivitySpec),
}

impl Job {
    pub fn label(&self) -> &'static str {
        match self {
            Job::Baseline { .. } => "evaluating",
            Job::Intervene(_) => "intervening",
            Job::Ranks(_) => "rank histograms",
            Job::Sensitivity(_) => "sensitive layers",
        }
    }
}

/// What a job produced.
#[derive(Clone, Debug)]
pub enum Output {
    Baseline { epoch: usize, split: Split, report: AccuracyReport },
    Intervention(Box<InterventionResult>),
    Ranks(Box<RankStudy>),
    Sensitivity(Box<SensitivityStudy>),
}

/// Messages from the worker.
#[derive(Debug)]
pub enum Event {
    Started { id: u64, label: &'static str },
    Progress { id: u64, done: usize, total: usize },
    Finished { id: u64, output: Output, elapsed: Duration },
    Failed { id: u64, message: String },
}

/// The UI's handle on the worker.
pub struct Worker {
    jobs: Option<Sender<(u64, Job)>>,
    pub events: Receiver<Event>,
    cancel: Arc<AtomicBool>,
    next_id: u64,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    pub fn spawn(session: Session) -> Worker {
        let (job_tx, job_rx) = channel::<(u64, Job)>();
        let (event_tx, event_rx) = channel();
        let cancel = Arc::new(AtomicBool::new(false));
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
        self.cancel.store(true, Ordering::SeqCst);
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.cancel();
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(mut session: Session, jobs: Receiver<(u64, Job)>, events: Sender<Event>, cancel: Arc<AtomicBool>) {
    while let Ok(mut next) = jobs.recv() {
        // Keep only the newest waiting job.
        while let Ok(newer) = jobs.try_recv() {
            next = newer;
        }
        let (id, job) = next;
        cancel.store(false, Ordering::SeqCst);
        let _ = events.send(Event::Started { id, label: job.label() });
        let start = Instant::now();
        let mut progress = |done: usize, total: usize| {
            let _ = events.send(Event::Progress { id, done, total });
            !cancel.load(Ordering::SeqCst)
        };
        let output = match job {
            Job::Baseline { epoch, split } => {
                session.baseline(epoch, split).map(|report| Output::Baseline { epoch, split, report })
            }
            Job::Intervene(spec) => {
                intervention::run(&mut session, &spec).map(|r| Output::Intervention(Box::new(r)))
            }
            Job::Ranks(spec) => {
                ranks::run(&mut session, &spec, &mut progress).map(|r| Output::Ranks(Box::new(r)))
            }
            Job::Sensitivity(spec) => {
                sensitivity::run(&mut session, &spec, &mut progress).map(|r| Output::Sensitivity(Box::new(r)))
            }
        };
        let event = match output {
            Ok(output) => Event::Finished { id, output, elapsed: start.elapsed() },
            Err(e) => Event::Failed { id, message: format!("{e:#}") },
        };
        if events.send(event).is_err() {
            return;
        }
    }
}
