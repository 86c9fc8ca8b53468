//! Image folders users already have: Waterbirds, CelebA, and any grouped image folder
//! described by a CSV manifest.
//!
//! Labels, groups and file paths are read into memory (a [`Manifest`]); pixels are decoded
//! from the files on demand by [`FolderPixels`], in parallel, with the field's evaluation
//! transforms reproduced to the byte (see `resize` and `decode`).
//!
//! Policies: every group must have at least one example in every split (worst-group
//! accuracy needs them), otherwise loading fails naming the group and split; a `csv:` manifest
//! without a `split` column is split per group by row order (of every 5 rows of a group, the
//! first 3 go to train, the 4th to val, the 5th to test).

pub mod cache;
pub(crate) mod celeba;
pub mod compose;
pub(crate) mod dataset;
pub mod decode;
pub mod export;
pub mod kernels;
pub(crate) mod manifest;
pub mod resize;
pub(crate) mod root;
pub(crate) mod skip;
pub mod spec;
pub(crate) mod table;
pub mod transform;
pub(crate) mod waterbirds;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

pub use celeba::CelebaAttributes;
pub use compose::{Compose, Normalize, ResizeTo, Step};
pub use dataset::{load, load_cached, load_with};
pub use resize::Interpolation;
pub use transform::{FolderPixels, Transform};

use super::Split;

/// Which layout a folder has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    /// `DIR/metadata.csv` with `img_filename, y, split, place`.
    Waterbirds,
    /// `DIR/img_align_celeba/` + attribute and partition lists, or a Waterbirds-style
    /// `DIR/metadata.csv`.
    Celeba(CelebaAttributes),
    /// A manifest `FILE` with `path, label, group[, split][, group_name][, class_name]`;
    /// paths relative to the manifest's folder.
    Csv,
}

/// A data folder as given by `--data`: `waterbirds:DIR`, `celeba:DIR` or `csv:FILE`. The
/// transform defaults to the layout's usual one at 224 px (`csv:` takes Waterbirds').
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FolderSpec {
    pub layout: Layout,
    /// The folder (Waterbirds, CelebA) or the manifest file (csv).
    pub path: PathBuf,
    pub transform: Transform,
}

impl FromStr for FolderSpec {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let Some((kind, path)) = s.split_once(':') else {
            bail!("data '{s}': expected waterbirds:DIR, celeba:DIR or csv:FILE");
        };
        if path.is_empty() {
            bail!("data '{s}': the path after '{kind}:' is empty");
        }
        let (layout, transform) = match kind {
            "waterbirds" => (Layout::Waterbirds, Transform::waterbirds(224)),
            "celeba" => (Layout::Celeba(CelebaAttributes::default()), Transform::celeba(224)),
            "csv" => (Layout::Csv, Transform::waterbirds(224)),
            other => bail!("data '{s}': unknown format '{other}' (waterbirds, celeba, csv)"),
        };
        Ok(FolderSpec { layout, path: PathBuf::from(path), transform })
    }
}

impl FolderSpec {
    /// The spec as `--data` takes it, CelebA's attributes and the transform, e.g.
    /// "waterbirds:/data/wb (Resize((256, 256), interpolation=bilinear) · CenterCrop(224) · ...)" or
    /// "celeba:/data/celeba, Blond_Hair x Male (CenterCrop(178) · Resize((224, 224), ...) · ...)".
    pub fn describe(&self) -> String {
        let (kind, attributes) = match &self.layout {
            Layout::Waterbirds => ("waterbirds", String::new()),
            Layout::Celeba(a) => ("celeba", format!(", {} x {}", a.target, a.spurious)),
            Layout::Csv => ("csv", String::new()),
        };
        format!("{kind}:{}{attributes} ({})", self.path.display(), self.transform.describe())
    }
}

/// One image of a split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the manifest's root.
    pub path: PathBuf,
    pub label: usize,
    pub group: usize,
    /// Line of the metadata file it came from (the header is line 1).
    pub line: usize,
}

/// Labels, groups, names and file paths of a folder, by split; no pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    pub name: String,
    /// Image paths are relative to this folder.
    pub root: PathBuf,
    /// The metadata file errors point at.
    pub source: PathBuf,
    pub class_names: Vec<String>,
    pub group_names: Vec<String>,
    /// Train, val, test.
    pub splits: [Vec<Entry>; 3],
}

impl Manifest {
    pub fn split(&self, split: Split) -> &[Entry] {
        &self.splits[split_index(split)]
    }

    /// Examples per group in `split`.
    pub fn group_counts(&self, split: Split) -> Vec<usize> {
        let mut counts = vec![0; self.group_names.len()];
        for e in self.split(split) {
            counts[e.group] += 1;
        }
        counts
    }

    /// Checks that every group has an example in every split and every image file exists.
    pub fn validate(&self) -> Result<()> {
        for split in Split::ALL {
            let counts = self.group_counts(split);
            if let Some(g) = counts.iter().position(|&c| c == 0) {
                bail!(
                    "{}: group {g} ({}) has no example in the {split} split",
                    self.source.display(),
                    self.group_names[g]
                );
            }
        }
        let files = self.splits.iter().flatten().map(|e| (e.path.as_path(), e.line));
        table::check_files(&self.root, &self.source, files)
    }
}

pub(crate) fn split_index(split: Split) -> usize {
    match split {
        Split::Train => 0,
        Split::Val => 1,
        Split::Test => 2,
    }
}

/// Reads the metadata of the folder `spec` names and validates it (files included).
pub fn read_manifest(spec: &FolderSpec) -> Result<Manifest> {
    let manifest = read_metadata(spec)?;
    manifest.validate()?;
    Ok(manifest)
}

/// Reads the metadata of the folder `spec` names, unvalidated (see [`Manifest::validate`]).
pub(crate) fn read_metadata(spec: &FolderSpec) -> Result<Manifest> {
    match &spec.layout {
        Layout::Waterbirds => waterbirds::read(&spec.path),
        Layout::Celeba(attributes) => celeba::read(&spec.path, attributes),
        Layout::Csv => manifest::read(&spec.path),
    }
}

/// The manifest's root for a metadata file: the folder that holds it.
pub(crate) fn parent_of(file: &Path) -> PathBuf {
    file.parent().map(Path::to_path_buf).unwrap_or_default()
}
