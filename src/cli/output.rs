//! `--format` and `--out`, shared by every command that prints a result.

use std::path::PathBuf;

use anyhow::Result;

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
    /// Prints `result` as asked; JSON with `provenance`.
    pub fn emit<R: Render>(&self, result: &R, provenance: &Provenance) -> Result<()> {
        render::emit(result, self.format, provenance, self.out.as_deref())
    }
}
