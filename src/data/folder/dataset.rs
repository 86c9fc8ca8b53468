//! A folder as a [`GroupedDataset`]: labels and groups in memory, pixels decoded on demand
//! by [`FolderPixels`] behind the data seam's [`PixelSource`].

use std::sync::Arc;

use anyhow::Result;

use super::{FolderPixels, FolderSpec, Manifest, read_manifest};
use crate::data::{GroupedDataset, PixelSource, Split, SplitData};

impl PixelSource for FolderPixels {
    fn images(&self, split: Split, indices: &[usize]) -> Result<Vec<f32>> {
        FolderPixels::images(self, split, indices)
    }
}

/// Reads the folder `spec` names (metadata validated, every image file present) as a data
/// set; `threads` decode pixels (0: every core).
pub fn load(spec: &FolderSpec, threads: usize) -> Result<GroupedDataset> {
    let manifest = read_manifest(spec)?;
    let pixels = FolderPixels::new(&manifest, spec.transform, threads);
    GroupedDataset::new(
        manifest.name.clone(),
        pixels.image_shape(),
        manifest.class_names.clone(),
        manifest.group_names.clone(),
        Split::ALL.map(|s| split_data(&manifest, s)),
        Arc::new(pixels),
    )
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
