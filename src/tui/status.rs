//! The status line's message when no job is running: a variant per situation, so its
//! colour comes from what happened, not from the text.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::keymap::{IDLE_HINTS, Keymap};

#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    /// At start: how to begin.
    Idle,
    /// An intervention waits for the worker.
    Queued,
    /// Esc was pressed; the job stops at its next checkpoint.
    Cancelling,
    /// A job finished: what it was, and how long it took.
    Done {
        what: String,
        elapsed: Duration,
    },
    Cancelled,
    /// Files written, named without their extension (`.json` and `.csv` both exist; `.svg`
    /// too when `svg`).
    Exported {
        stem: PathBuf,
        svg: bool,
    },
    /// The report's page written (and its JSON beside it), with how many of the paper's
    /// claims hold on these numbers, do not, and cannot be judged.
    Reported {
        page: PathBuf,
        verdicts: [usize; 3],
    },
    /// Something the user should know before trying again.
    Note(String),
    Error(String),
}

/// How the status line looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Plain,
    Bad,
}

impl Status {
    /// The line as the screen shows it: at start the keys to begin with, as `keys` binds them.
    pub fn text(&self, keys: &Keymap) -> String {
        match self {
            Status::Idle => keys.hint(&IDLE_HINTS),
            other => other.to_string(),
        }
    }

    pub fn tone(&self) -> Tone {
        match self {
            Status::Error(_) => Tone::Bad,
            _ => Tone::Plain,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Which keys begin depends on the keymap: the screen draws `Status::text`.
            Status::Idle => f.write_str("ready"),
            Status::Queued => f.write_str("queued"),
            Status::Cancelling => f.write_str("cancelling…"),
            Status::Done { what, elapsed } => write!(f, "{what} in {} ms", elapsed.as_millis()),
            Status::Cancelled => f.write_str("cancelled"),
            Status::Exported { stem, svg: false } => write!(f, "exported {}.{{json,csv}}", stem.display()),
            Status::Exported { stem, svg: true } => write!(f, "exported {}.{{json,csv,svg}}", stem.display()),
            Status::Reported { page, verdicts: [holds, not, unsure] } => write!(
                f,
                "the paper's claims: {holds} hold, {not} do not, {unsure} cannot say · report {} (and .json)",
                page.display()
            ),
            Status::Note(text) => f.write_str(text),
            Status::Error(message) => write!(f, "error: {message}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_errors_look_bad_and_each_variant_reads_as_before() {
        let done = Status::Done { what: "rank histograms".into(), elapsed: Duration::from_millis(42) };
        assert_eq!(done.to_string(), "rank histograms in 42 ms");
        assert_eq!(done.tone(), Tone::Plain);
        let error = Status::Error("epoch 99 is not in the experiment".into());
        assert_eq!(error.to_string(), "error: epoch 99 is not in the experiment");
        assert_eq!(error.tone(), Tone::Bad);
        // A note that happens to start with "error" is not an error.
        assert_eq!(Status::Note("errors: none".into()).tone(), Tone::Plain);
        let exported = |svg| Status::Exported { stem: PathBuf::from("./m-1"), svg }.to_string();
        assert_eq!(exported(false), "exported ./m-1.{json,csv}");
        assert_eq!(exported(true), "exported ./m-1.{json,csv,svg}");
    }
}
