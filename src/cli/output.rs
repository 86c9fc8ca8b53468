//! `--format` and `--out`, shared by every command that prints a result.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};

use memscope_core::render::{self, Format, Provenance, Render};

/// For `train`, which prints its own progress lines.
pub use memscope_core::render::text::percent;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// Output format: table, json or csv.
    #[arg(long, default_value = "table")]
    pub format: Format,
    /// Write to this file (atomically) instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl OutputArgs {
    /// Prints `result` as asked (to `--out`, atomically, or standard output); JSON with
    /// `provenance`.
    pub fn emit<R: Render>(&self, result: &R, provenance: &Provenance) -> Result<()> {
        let text = render::render(result, self.format, provenance)?;
        match &self.out {
            Some(path) => memscope_core::util::fsx::write_output(path, text.as_bytes()),
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
