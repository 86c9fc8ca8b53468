//! Writing a result as a table, JSON or CSV, to stdout or a file.

use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{Context, Result, bail};
use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{Cell, CellAlignment, Table};
use serde::Serialize;

use crate::util::fsx::write_atomic;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Table,
    Json,
    Csv,
}

impl FromStr for Format {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            other => bail!("unknown format '{other}' (valid: table, json, csv)"),
        }
    }
}

/// `--format` and `--out`, shared by every command that prints a result.
#[derive(clap::Args, Debug, Clone)]
pub struct OutputArgs {
    /// Output format: table, json or csv.
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Write to this file (atomically) instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl Default for OutputArgs {
    fn default() -> Self {
        OutputArgs { format: "table".into(), out: None }
    }
}

impl OutputArgs {
    pub fn format(&self) -> Result<Format> {
        self.format.parse()
    }

    /// Writes `text` to `--out` or stdout.
    pub fn emit(&self, text: &str) -> Result<()> {
        match &self.out {
            Some(path) => write_atomic(path, text.as_bytes()),
            None => {
                let mut stdout = std::io::stdout().lock();
                stdout
                    .write_all(text.as_bytes())
                    .and_then(|_| stdout.flush())
                    .context("cannot write to stdout")
            }
        }
    }
}

pub fn to_json<T: Serialize>(value: &T) -> Result<String> {
    let mut text = serde_json::to_string_pretty(value).context("cannot serialise result as JSON")?;
    text.push('\n');
    Ok(text)
}

/// A percentage with one decimal, or "n/a" when the value does not exist.
pub fn percent(value: Option<f64>) -> String {
    match value {
        Some(v) => format!("{:.1}%", 100.0 * v),
        None => "n/a".into(),
    }
}

/// A borderless table with a header; columns after the first right-aligned.
pub fn table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY).set_header(header.iter().map(Cell::new));
    for row in rows {
        table.add_row(row);
    }
    for (i, column) in table.column_iter_mut().enumerate() {
        if i > 0 {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table.to_string()
}

/// CSV with a header row; fields quoted when needed.
pub fn csv(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let quote = |s: &str| {
        if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
    };
    let mut out = header.join(",");
    out.push('\n');
    for row in rows {
        out.push_str(&row.iter().map(|s| quote(s)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}
