//! How the data a result was computed on differs from the data set as recorded: a seeded
//! subset per group, images left out as bad. Every output carries these (tables and CSV as
//! note lines, JSON in its provenance, the explorer on its status line), so no count is
//! read as the whole data set's when it is not.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Split;

/// What was changed between the recorded data set and the one evaluated; empty by default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DataChanges {
    /// `--max-per-group`: the seeded stratified subset taken of every split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<Subset>,
    /// `--skip-bad-images`: the images left out, in metadata order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedImage>,
}

/// A seeded stratified subset: of each group of each split, the first `max_per_group` of a
/// seeded shuffle (a smaller group keeps all of its examples).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subset {
    pub max_per_group: usize,
    pub seed: u64,
    /// Per split (train, val, test): examples kept and examples in the full split.
    pub kept: [usize; 3],
    pub total: [usize; 3],
    /// Examples per group in the full training split: the weights of the mean accuracy and
    /// the smallest training group stay those of the whole data set.
    pub train_group_counts: Vec<usize>,
}

/// An image left out because it is missing or cannot be decoded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SkippedImage {
    pub split: Split,
    /// As written in the metadata (relative to the data root).
    pub path: PathBuf,
    /// Line of the metadata file (the header is line 1).
    pub line: usize,
    pub reason: String,
}

/// How many skipped images the listing on standard error names before summing up the rest.
const LISTED: usize = 5;

impl DataChanges {
    pub fn is_empty(&self) -> bool {
        self.subset.is_none() && self.skipped.is_empty()
    }

    /// One line per change, for the top of a table, CSV comment lines and the status line:
    /// "val: at most 5 per group (seeded subset, seed 0): 20 of 400 examples".
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if !self.skipped.is_empty() {
            let per_split: Vec<String> = Split::ALL
                .iter()
                .filter_map(|&s| {
                    let n = self.skipped.iter().filter(|i| i.split == s).count();
                    (n > 0).then(|| format!("{n} {s}"))
                })
                .collect();
            lines.push(format!(
                "{} skipped (--skip-bad-images; {}): every count is of the images kept",
                images(self.skipped.len()),
                per_split.join(", ")
            ));
        }
        if let Some(s) = &self.subset {
            for (k, split) in Split::ALL.iter().enumerate() {
                lines.push(format!(
                    "{split}: at most {} per group (seeded subset, seed {}): {} of {} examples",
                    s.max_per_group, s.seed, s.kept[k], s.total[k]
                ));
            }
        }
        lines
    }

    /// The change in a few words, for a status line: "at most 5 per group (seed 0) · 2 images skipped".
    pub fn short(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(s) = &self.subset {
            parts.push(format!("at most {} per group (seeded subset, seed {})", s.max_per_group, s.seed));
        }
        if !self.skipped.is_empty() {
            parts.push(format!("{} skipped", images(self.skipped.len())));
        }
        (!parts.is_empty()).then(|| parts.join(" · "))
    }

    /// The skipped images for standard error: a count, the first few, and how many more.
    pub fn skipped_listing(&self, source: &str) -> Option<String> {
        if self.skipped.is_empty() {
            return None;
        }
        let mut text = format!(
            "memscope: skipped {} of {source} (--skip-bad-images); every count is of the images kept:",
            images(self.skipped.len())
        );
        for s in self.skipped.iter().take(LISTED) {
            let _ = write!(text, "\n  line {} ({}): {}: {}", s.line, s.split, s.path.display(), s.reason);
        }
        if self.skipped.len() > LISTED {
            let _ = write!(text, "\n  and {} more", self.skipped.len() - LISTED);
        }
        Some(text)
    }
}

fn images(n: usize) -> String {
    if n == 1 { "1 image".into() } else { format!("{n} images") }
}
