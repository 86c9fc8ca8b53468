//! Grouped image data: images, class labels, group ids and group names per split.
//!
//! Any data set with a spurious attribute fits this shape (the bundled spurious digits
//! now; Waterbirds and CelebA folders later): a group is a (label, attribute) pair.

pub mod batch;
pub mod digits;
pub mod folder;

use std::fmt;
use std::str::FromStr;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

pub use digits::DigitsSpec;

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

/// The examples of one split. Images are stored flat, `[n, channels, height, width]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SplitData {
    pub images: Vec<f32>,
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

    /// Number of examples in each of `n_groups` groups.
    pub fn group_counts(&self, n_groups: usize) -> Vec<usize> {
        let mut counts = vec![0; n_groups];
        for &g in &self.groups {
            counts[g] += 1;
        }
        counts
    }

    /// Indices of the examples of group `g`, in split order.
    pub fn indices_of_group(&self, g: usize) -> Vec<usize> {
        (0..self.len()).filter(|&i| self.groups[i] == g).collect()
    }

    /// The examples at `indices`, in that order.
    pub fn subset(&self, indices: &[usize], image_len: usize) -> SplitData {
        let mut out = SplitData::default();
        for &i in indices {
            out.images.extend_from_slice(&self.images[i * image_len..(i + 1) * image_len]);
            out.labels.push(self.labels[i]);
            out.groups.push(self.groups[i]);
            out.sources.push(self.sources[i]);
        }
        out
    }
}

/// A data set with groups, ready for training and evaluation.
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
}

impl GroupedDataset {
    pub fn split(&self, split: Split) -> &SplitData {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
            Split::Test => &self.test,
        }
    }

    pub fn image_len(&self) -> usize {
        self.image_shape.iter().product()
    }

    pub fn num_groups(&self) -> usize {
        self.group_names.len()
    }

    /// Each group's share of the training split: the weights of the conventional
    /// "mean accuracy" (GroupDRO, WILDS `adj_acc_avg`, DFR, the authors' code).
    pub fn train_proportions(&self) -> Vec<f64> {
        let counts = self.train.group_counts(self.num_groups());
        let total = counts.iter().sum::<usize>().max(1) as f64;
        counts.iter().map(|&c| c as f64 / total).collect()
    }
}

/// Which data set an experiment uses, as written in `experiment.ron`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DatasetSpec {
    /// The bundled demo: handwritten digits on land or water backgrounds.
    SpuriousDigits(DigitsSpec),
}

impl Default for DatasetSpec {
    fn default() -> Self {
        DatasetSpec::SpuriousDigits(DigitsSpec::default())
    }
}

impl DatasetSpec {
    /// Builds (or reads) the data set this spec describes.
    pub fn load(&self) -> Result<GroupedDataset> {
        match self {
            DatasetSpec::SpuriousDigits(spec) => digits::generate(spec),
        }
    }
}
