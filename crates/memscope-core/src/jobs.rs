//! The one protocol every long job follows: it reports progress through a [`Progress`] and
//! stops, when asked to, with the typed error [`Cancelled`].
//!
//! Training, each repeat of an intervention, every study, and every pass over a split (an
//! evaluation, a gradient score, a session's baseline) take a `&mut dyn Progress` and report
//! each batch; a front end passes a closure, a progress bar or [`Silent`], and recognises a
//! cancellation with [`is_cancelled`] instead of reading error text. A pass run as one step of
//! a longer job reports through [`Within`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The error a job returns when it was asked to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cancelled;

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cancelled")
    }
}

impl std::error::Error for Cancelled {}

/// Whether `error` (anywhere in its chain) is a cancellation rather than a failure.
pub fn is_cancelled(error: &anyhow::Error) -> bool {
    error.chain().any(|e| e.is::<Cancelled>())
}

/// Where a job reports how far it is. `report` returns `Err(Cancelled)` when the job should
/// stop; the job then returns that error (as `anyhow::Error`) without a result.
pub trait Progress {
    /// `done` of `total` units (groups, layers, repeats, batches) are finished.
    fn report(&mut self, done: usize, total: usize) -> Result<(), Cancelled>;
}

/// A closure `(done, total) -> keep going?` is a progress sink.
impl<F: FnMut(usize, usize) -> bool> Progress for F {
    fn report(&mut self, done: usize, total: usize) -> Result<(), Cancelled> {
        if self(done, total) { Ok(()) } else { Err(Cancelled) }
    }
}

/// Reports nowhere and never cancels (scripts, tests, nested steps).
pub struct Silent;

impl Progress for Silent {
    fn report(&mut self, _: usize, _: usize) -> Result<(), Cancelled> {
        Ok(())
    }
}

/// A pass inside step `done` of `total` of a longer job (the gradient pass of an
/// intervention's ranking, the baseline of a sweep's layer): each of its reports asks the job
/// whether to go on at the job's own position, so the pass stops within one batch when the job
/// is cancelled, while whatever shows the job's progress keeps counting the job's own units.
pub struct Within<'a> {
    job: &'a mut dyn Progress,
    done: usize,
    total: usize,
}

impl<'a> Within<'a> {
    pub fn new(job: &'a mut dyn Progress, done: usize, total: usize) -> Within<'a> {
        Within { job, done, total }
    }
}

impl Progress for Within<'_> {
    fn report(&mut self, _: usize, _: usize) -> Result<(), Cancelled> {
        self.job.report(self.done, self.total)
    }
}

/// A shared flag another thread sets to cancel the running job (burn's `Interrupter`).
#[derive(Clone, Debug, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn reset(&self) {
        self.0.store(false, Ordering::SeqCst);
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// `Err(Cancelled)` once the flag is set.
    pub fn check(&self) -> Result<(), Cancelled> {
        if self.is_set() { Err(Cancelled) } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closure_returning_false_cancels_and_the_error_is_recognised() {
        let mut calls = 0;
        let mut stop_at_two = |done: usize, _total: usize| {
            calls += 1;
            done < 2
        };
        assert_eq!(stop_at_two.report(1, 3), Ok(()));
        assert_eq!(stop_at_two.report(2, 3), Err(Cancelled));
        assert_eq!(calls, 2);
        let error = anyhow::Error::from(Cancelled).context("sensitivity study");
        assert!(is_cancelled(&error));
        assert!(!is_cancelled(&anyhow::anyhow!("cancelled")), "text alone is not a cancellation");
    }

    #[test]
    fn a_nested_pass_reports_the_jobs_position_and_stops_when_the_job_does() {
        let mut heard = Vec::new();
        let mut job = |done: usize, total: usize| {
            heard.push((done, total));
            heard.len() < 3
        };
        let mut pass = Within::new(&mut job, 2, 5);
        assert_eq!(pass.report(1, 40), Ok(()));
        assert_eq!(pass.report(2, 40), Ok(()));
        assert_eq!(pass.report(3, 40), Err(Cancelled));
        assert_eq!(heard, [(2, 5); 3]);
    }

    #[test]
    fn a_cancel_flag_is_shared_between_clones() {
        let flag = CancelFlag::default();
        let other = flag.clone();
        assert_eq!(flag.check(), Ok(()));
        other.cancel();
        assert_eq!(flag.check(), Err(Cancelled));
        flag.reset();
        assert!(!other.is_set());
    }
}
