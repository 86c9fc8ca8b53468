//! Opening an experiment's data set at run time: where its folder lies now, bad images
//! left out or not, and a seeded subset per group.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::{DatasetSpec, GroupedDataset, digits, folder};

/// How to open a recorded data set (`--data-root`, `--skip-bad-images`, `--max-per-group`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpenOptions {
    /// Where an image folder lies now, replacing the recorded path.
    pub data_root: Option<DataRoot>,
    /// Leave out images that are missing or do not decode instead of failing.
    pub skip_bad_images: bool,
    /// Keep at most this many examples per group of every split (seeded by `subset_seed`).
    pub max_per_group: Option<usize>,
    pub subset_seed: u64,
    /// A folder for cached 8-bit pixels of image folders (see [`folder::cache`]).
    pub pixel_cache: Option<PathBuf>,
}

/// A data root given at run time, and where it came from (for messages).
#[derive(Clone, Debug, PartialEq)]
pub struct DataRoot {
    pub dir: PathBuf,
    /// `--data-root` or `MEMSCOPE_DATA_ROOT`.
    pub from: &'static str,
}

impl DatasetSpec {
    /// The data set as recorded in the experiment at `experiment_dir`, opened as `options`
    /// say: a folder's path resolved (see `folder::root::resolve`), bad images skipped,
    /// a subset taken. The result's `changes` records what differs from the whole data set.
    pub fn open(&self, experiment_dir: &Path, options: &OpenOptions) -> Result<GroupedDataset> {
        self.open_with(experiment_dir, options, &mut crate::jobs::Silent)
    }

    /// As [`Self::open`]; `progress` hears of a pixel cache being built.
    pub fn open_with(
        &self,
        experiment_dir: &Path,
        options: &OpenOptions,
        progress: &mut dyn crate::jobs::Progress,
    ) -> Result<GroupedDataset> {
        let dataset = match self {
            DatasetSpec::SpuriousDigits(spec) => digits::generate(spec)?,
            DatasetSpec::Folder(spec) => {
                let path = folder::root::resolve(spec, experiment_dir, options.data_root.as_ref())?;
                let spec = folder::FolderSpec { path, ..spec.clone() };
                let cache = options.pixel_cache.as_deref().map(|dir| (dir, progress));
                folder::load_cached(&spec, 0, options.skip_bad_images, cache)?
            }
        };
        Ok(match options.max_per_group {
            Some(n) => dataset.subset_per_group(n, options.subset_seed),
            None => dataset,
        })
    }
}
