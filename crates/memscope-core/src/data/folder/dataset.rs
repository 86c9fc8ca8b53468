//! A folder as a [`GroupedDataset`]: labels and groups in memory, pixels decoded on demand
//! by [`FolderPixels`] behind the data seam's [`PixelSource`].

use std::sync::Arc;

use anyhow::{Context, Result};

use super::{FolderPixels, FolderSpec, Manifest, read_metadata, skip};
use crate::data::{GroupedDataset, PixelSource, Split, SplitData};

impl PixelSource for FolderPixels {
    fn images(&self, split: Split, indices: &[usize]) -> Result<Vec<f32>> {
        FolderPixels::images(self, split, indices)
    }

    fn images_into(&self, split: Split, indices: &[usize], out: &mut Vec<f32>) -> Result<()> {
        FolderPixels::images_into(self, split, indices, out)
    }
}

/// Reads the folder `spec` names (metadata validated, every image file present) as a data
/// set; `threads` decode pixels (0: every core).
pub fn load(spec: &FolderSpec, threads: usize) -> Result<GroupedDataset> {
    load_with(spec, threads, false)
}

/// As [`load`]; with `skip_bad_images`, every image is decoded once first and those missing
/// or undecodable are left out, listed in the data set's `changes.skipped`.
pub fn load_with(spec: &FolderSpec, threads: usize, skip_bad_images: bool) -> Result<GroupedDataset> {
    load_cached(spec, threads, skip_bad_images, None)
}

/// As [`load_with`]; with a pixel cache folder, pixels come from the cache of these images
/// and this transform there, built first when missing (`progress` hears of the build).
pub fn load_cached(
    spec: &FolderSpec,
    threads: usize,
    skip_bad_images: bool,
    cache: Option<(&std::path::Path, &mut dyn crate::jobs::Progress)>,
) -> Result<GroupedDataset> {
    let mut manifest = read_metadata(spec)?;
    let skipped = if skip_bad_images { skip::drop_bad(&mut manifest, threads) } else { Vec::new() };
    if skipped.is_empty() {
        manifest.validate()?;
    } else {
        manifest.validate().with_context(|| format!("after skipping {} bad images", skipped.len()))?;
    }
    let pixels = FolderPixels::new(&manifest, spec.transform.clone(), threads);
    let shape = pixels.image_shape();
    let source: Arc<dyn PixelSource> = match cache {
        Some((dir, progress)) => Arc::new(super::cache::open_or_build(dir, &manifest, &pixels, progress)?.0),
        None => Arc::new(pixels),
    };
    let mut dataset = GroupedDataset::new(
        manifest.name.clone(),
        shape,
        manifest.class_names.clone(),
        manifest.group_names.clone(),
        Split::ALL.map(|s| split_data(&manifest, s)),
        source,
    )?;
    dataset.changes.skipped = skipped;
    Ok(dataset)
}

/// Labels and groups of `split`; `sources` are the metadata file's line numbers.
fn split_data(manifest: &Manifest, split: Split) -> SplitData {
    let entries = manifest.split(split);
    SplitData {
        labels: entries.iter().map(|e| e.label).collect(),
        groups: entries.iter().map(|e| e.group).collect(),
        sources: entries.iter().map(|e| e.line).collect(),
    }
}
