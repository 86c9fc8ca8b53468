//! The one protocol every long job follows: it reports progress through a [`Progress`] and
//! stops, when asked to, with the typed error [`Cancelled`].
//!
//! Training, each repeat of an intervention, every study (and later fine-tuning) take a
//! `&mut dyn Progress`; a front end passes a closure, a progress bar or [`Silent`], and
//! recognises a cancellation with [`is_cancelled`] instead of reading error text.

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
