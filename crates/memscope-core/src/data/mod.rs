//! Grouped image data: images, class labels, group ids and group names per split.
//!
//! Any data set with a spurious attribute fits this shape (the bundled spurious digits
//! now; Waterbirds and CelebA folders later): a group is a (label, attribute) pair. A new
//! format is one more file here: it builds the splits' labels and groups and a
//! [`PixelSource`] for the pixels, and a [`DatasetSpec`] variant names it.

pub mod augment;
pub mod batch;
pub(crate) mod changes;
pub mod digits;
pub mod folder;
pub mod memory;
pub mod open;
pub(crate) mod subset;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Result, bail, ensure};
use serde::{Deserialize, Serialize};

pub use changes::DataChanges;
pub use digits::DigitsSpec;
pub use open::OpenOptions;

/// A group with less than this share of the training examples is a minority group: the
/// explorer's caption and tour and the report's verdicts use this one definition. A fixed
/// share (not "half an equal share", which the report once used) because a caption can say
/// it in four words ("<10% of train"), and on the demo, Waterbirds (4%, 1%) and CelebA (1%)
/// both pick the same groups; with many small groups (twenty at 5%) every group is a minority
/// by this rule, which is said on the page that lists the roles.
pub const MINORITY_SHARE: f64 = 0.1;

/// Per group, whether it is a minority ([`MINORITY_SHARE`]) given each group's training count.
pub fn minority(train: &[usize]) -> Vec<bool> {
    let total: usize = train.iter().sum();
    train.iter().map(|&n| (n as f64) < MINORITY_SHARE * total as f64).collect()
}

/// The three splits every grouped data set has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Split {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "train" => Ok(Split::Train),
            "val" | "valid" | "validation" => Ok(Split::Val),
            "test" => Ok(Split::Test),
            other => bail!("unknown split '{other}' (valid: train, val, test)"),
        }
    }
}

/// What a data set knows of one split's examples without their pixels.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SplitData {
    pub labels: Vec<usize>,
    pub groups: Vec<usize>,
    /// Row of each example in the source file (several renditions may share a row in train).
    pub sources: Vec<usize>,
}

impl SplitData {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Number of examples in each of `n_groups` groups (ids are checked when the data set is
    /// built, see [`GroupedDataset::new`]).
    pub fn group_counts(&self, n_groups: usize) -> Vec<usize> {
        let mut counts = vec![0; n_groups];
        for &g in &self.groups {
            if let Some(c) = counts.get_mut(g) {
                *c += 1;
            }
        }
        counts
    }

    /// Indices of the examples of group `g`, in split order.
    pub fn indices_of_group(&self, g: usize) -> Vec<usize> {
        (0..self.len()).filter(|&i| self.groups[i] == g).collect()
    }

    /// The examples at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> SplitData {
        SplitData {
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            groups: indices.iter().map(|&i| self.groups[i]).collect(),
            sources: indices.iter().map(|&i| self.sources[i]).collect(),
        }
    }
}

/// Pixels of examples, normalised, produced on demand: held in memory for the generated
/// digits, decoded from files for image folders.
pub trait PixelSource: Send + Sync + fmt::Debug {
    /// The images of `indices` (positions within `split`), each `[c, h, w]`, back to back.
    fn images(&self, split: Split, indices: &[usize]) -> Result<Vec<f32>>;

    /// [`Self::images`] into `out`, whose memory a source may reuse (the batch reader hands
    /// each batch's buffer back for the next: a fresh buffer of a 224 px batch is 60 MB of
    /// pages the kernel must zero).
    fn images_into(&self, split: Split, indices: &[usize], out: &mut Vec<f32>) -> Result<()> {
        *out = self.images(split, indices)?;
        Ok(())
    }
}

/// A data set with groups, ready for training and evaluation: labels, groups and names in
/// memory, pixels behind a [`PixelSource`].
#[derive(Clone, Debug)]
pub struct GroupedDataset {
    pub name: String,
    /// `[channels, height, width]`
    pub image_shape: [usize; 3],
    pub class_names: Vec<String>,
    pub group_names: Vec<String>,
    pub train: SplitData,
    pub val: SplitData,
    pub test: SplitData,
    /// How this differs from the data set as recorded (a subset, skipped images); empty
    /// unless asked for when opening.
    pub changes: DataChanges,
    pixels: Arc<dyn PixelSource>,
}

impl GroupedDataset {
    /// A data set from its splits (train, val, test) and pixels. Every label must name a
    /// class and every group id a group: a bad id is refused here, not found by an index
    /// panic later.
    pub fn new(
        name: String,
        image_shape: [usize; 3],
        class_names: Vec<String>,
        group_names: Vec<String>,
        [train, val, test]: [SplitData; 3],
        pixels: Arc<dyn PixelSource>,
    ) -> Result<GroupedDataset> {
        ensure!(!class_names.is_empty(), "{name}: the data set names no classes");
        ensure!(!group_names.is_empty(), "{name}: the data set names no groups");
        for (split, data) in Split::ALL.iter().zip([&train, &val, &test]) {
            let n = data.labels.len();
            ensure!(
                data.groups.len() == n && data.sources.len() == n,
                "{name}: the {split} split has {n} labels but {} group ids and {} sources",
                data.groups.len(),
                data.sources.len()
            );
            if let Some(i) = data.labels.iter().position(|&l| l >= class_names.len()) {
                bail!(
                    "{name}: {split} example {i} has label {} (valid: 0..={})",
                    data.labels[i],
                    class_names.len() - 1
                );
            }
            if let Some(i) = data.groups.iter().position(|&g| g >= group_names.len()) {
                bail!(
                    "{name}: {split} example {i} has group {} (valid: 0..={})",
                    data.groups[i],
                    group_names.len() - 1
                );
            }
        }
        Ok(GroupedDataset {
            name,
            image_shape,
            class_names,
            group_names,
            train,
            val,
            test,
            changes: DataChanges::default(),
            pixels,
        })
    }

    pub fn split(&self, split: Split) -> &SplitData {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
            Split::Test => &self.test,
        }
    }

    pub(crate) fn image_len(&self) -> usize {
        self.image_shape.iter().product()
    }

    pub fn num_groups(&self) -> usize {
        self.group_names.len()
    }

    /// The normalised pixels of examples `indices` of `split`, `[n, c, h, w]` flat.
    pub fn images(&self, split: Split, indices: &[usize]) -> Result<Vec<f32>> {
        let mut values = Vec::new();
        self.images_into(split, indices, &mut values)?;
        Ok(values)
    }

    /// [`Self::images`] into `out`, reusing its memory where the pixel source can.
    pub fn images_into(&self, split: Split, indices: &[usize], out: &mut Vec<f32>) -> Result<()> {
        self.pixels.images_into(split, indices, out)?;
        ensure!(
            out.len() == indices.len() * self.image_len(),
            "{}: the pixel source gave {} values for {} images of shape {:?}",
            self.name,
            out.len(),
            indices.len(),
            self.image_shape
        );
        Ok(())
    }

    /// The same data set with `split` cut down to the examples `keep` (in that order).
    pub fn restrict(&self, split: Split, keep: &[usize]) -> GroupedDataset {
        let mut out = self.clone();
        let data = self.split(split).subset(keep);
        match split {
            Split::Train => out.train = data,
            Split::Val => out.val = data,
            Split::Test => out.test = data,
        }
        out.pixels = Arc::new(Restricted { inner: self.pixels.clone(), split, keep: keep.to_vec() });
        out
    }

    /// Each group's share of the training split: the weights of the conventional
    /// "mean accuracy" (GroupDRO, WILDS `adj_acc_avg`, DFR, the authors' code). Of the full
    /// split when a subset was taken.
    pub fn train_proportions(&self) -> Vec<f64> {
        let counts = self.train_group_counts();
        let total = counts.iter().sum::<usize>().max(1) as f64;
        counts.iter().map(|&c| c as f64 / total).collect()
    }
}

/// A pixel source with one split re-indexed (see [`GroupedDataset::restrict`]).
#[derive(Debug)]
struct Restricted {
    inner: Arc<dyn PixelSource>,
    split: Split,
    keep: Vec<usize>,
}

impl PixelSource for Restricted {
    fn images(&self, split: Split, indices: &[usize]) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        self.images_into(split, indices, &mut out)?;
        Ok(out)
    }

    fn images_into(&self, split: Split, indices: &[usize], out: &mut Vec<f32>) -> Result<()> {
        if split != self.split {
            return self.inner.images_into(split, indices, out);
        }
        let mapped: Option<Vec<usize>> = indices.iter().map(|&i| self.keep.get(i).copied()).collect();
        match mapped {
            Some(mapped) => self.inner.images_into(split, &mapped, out),
            None => bail!("an example index is outside the {} kept {split} examples", self.keep.len()),
        }
    }
}

/// Which data set an experiment uses, as written in `experiment.ron`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DatasetSpec {
    /// The bundled demo: handwritten digits on land or water backgrounds.
    SpuriousDigits(DigitsSpec),
    /// An image folder: Waterbirds, CelebA or a CSV manifest, decoded on demand.
    Folder(folder::FolderSpec),
}

impl Default for DatasetSpec {
    fn default() -> Self {
        DatasetSpec::SpuriousDigits(DigitsSpec::default())
    }
}

/// `digits` (the bundled spurious digits), `digits:SIZE` (drawn at SIZE x SIZE pixels), or an
/// image folder: `waterbirds:DIR`, `celeba:DIR`, `csv:FILE`.
impl FromStr for DatasetSpec {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        if s == "digits" || s == "spurious-digits" {
            return Ok(DatasetSpec::default());
        }
        if let Some(size) = s.strip_prefix("digits:") {
            let image_size = size.parse::<usize>().map_err(|_| {
                anyhow::anyhow!(
                    "data '{s}': the size after 'digits:' must be a number of pixels (e.g. digits:64)"
                )
            })?;
            let spec = DigitsSpec { image_size, ..DigitsSpec::default() };
            digits::validate(&spec)?;
            return Ok(DatasetSpec::SpuriousDigits(spec));
        }
        s.parse::<folder::FolderSpec>()
            .map(DatasetSpec::Folder)
            .map_err(|e| anyhow::anyhow!("{e}; or digits / digits:SIZE for the bundled spurious digits"))
    }
}

impl DatasetSpec {
    /// The data set in words, e.g. "spurious digits 24x24 (bundled, generated from seed
    /// 2024)" or "waterbirds:/data/wb (Resize((256, 256), interpolation=bilinear) · CenterCrop(224) ·
    /// Normalize(ImageNet))".
    pub fn describe(&self) -> String {
        match self {
            DatasetSpec::SpuriousDigits(spec) => format!(
                "spurious digits {0}x{0} (bundled, generated from seed {1})",
                spec.image_size, spec.seed
            ),
            DatasetSpec::Folder(spec) => spec.describe(),
        }
    }

    /// Builds (or reads) the data set this spec describes.
    pub fn load(&self) -> Result<GroupedDataset> {
        self.load_with(false)
    }

    /// As [`DatasetSpec::load`]; with `skip_bad_images`, a folder's missing or undecodable
    /// images are left out (listed in the result's `changes`) instead of failing.
    pub fn load_with(&self, skip_bad_images: bool) -> Result<GroupedDataset> {
        match self {
            DatasetSpec::SpuriousDigits(spec) => digits::generate(spec),
            // Decoding threads: one per core.
            DatasetSpec::Folder(spec) => folder::load_with(spec, 0, skip_bad_images),
        }
    }
}
