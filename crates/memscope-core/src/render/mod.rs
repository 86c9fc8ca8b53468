//! The output seam: every result type renders as a table, CSV or JSON here, for the CLI,
//! the explorer's export and the benchmarks. A command produces a value, [`render`] makes the
//! text, the front end writes it (the CLI's `--format`/`--out`). JSON carries a [`Provenance`]
//! block; tables and CSV only its data changes.

mod bench;
mod compare;
mod flips;
mod info;
mod intervention;
mod provenance;
mod studies;
mod sweep;
pub mod text;

use anyhow::{Context, Result};
use serde::Serialize;

pub use bench::{BenchReport, ScaleReport, Timing, timing_rows, timing_table};
pub use provenance::Provenance;
pub use studies::threshold_in_words;
pub use sweep::History;

/// An output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Table,
    Json,
    Csv,
}

impl std::str::FromStr for Format {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            other => anyhow::bail!("unknown format '{other}' (valid: table, json, csv)"),
        }
    }
}

impl Format {
    /// The file extension of the format.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Table => "txt",
            Format::Json => "json",
            Format::Csv => "csv",
        }
    }
}

/// A result that prints as a table and as CSV (JSON comes from its `Serialize`).
pub trait Render: Serialize {
    /// For a terminal: headings, aligned tables, percentages.
    fn table(&self) -> String;
    /// For a spreadsheet: one header row, full precision.
    fn csv(&self) -> String;
}

/// A result with its provenance, serialised as the result's fields then `provenance`.
#[derive(Serialize)]
struct WithProvenance<'a, R: Serialize> {
    #[serde(flatten)]
    result: &'a R,
    provenance: &'a Provenance,
}

/// `result` as JSON (pretty, newline-terminated), with a top-level `provenance` key.
pub fn json<R: Serialize>(result: &R, provenance: &Provenance) -> Result<String> {
    let mut text = serde_json::to_string_pretty(&WithProvenance { result, provenance })
        .context("cannot serialise the result as JSON")?;
    text.push('\n');
    Ok(text)
}

/// `result` in `format`. When the data differs from the experiment's whole data set (a
/// subset, skipped images), a table starts with a line per change ("data: ...") and CSV with
/// the same lines as `#` comments; JSON has them in `provenance.data`.
pub fn render<R: Render>(result: &R, format: Format, provenance: &Provenance) -> Result<String> {
    let notes = provenance.data.lines();
    match format {
        Format::Table => Ok(with_notes(&notes, "data: ", "\n", result.table())),
        Format::Csv => Ok(with_notes(&notes, "# data: ", "", result.csv())),
        Format::Json => json(result, provenance),
    }
}

/// `text` after one `prefix`ed line per note and `gap`; `text` alone without notes.
fn with_notes(notes: &[String], prefix: &str, gap: &str, text: String) -> String {
    if notes.is_empty() {
        return text;
    }
    let lines: String = notes.iter().map(|n| format!("{prefix}{n}\n")).collect();
    lines + gap + &text
}
