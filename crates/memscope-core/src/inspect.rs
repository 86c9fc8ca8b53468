//! What an experiment holds: its layers, groups and accuracy at one epoch.

use anyhow::Result;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{GroupedDataset, Split};
use crate::device::describe::{self, DeviceInfo};
use crate::eval::{AccuracyReport, evaluate};
use crate::experiment::Experiment;
use crate::jobs::Silent;
use crate::model::{LayerInfo, ModelConfig};

/// One group with its size in each split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupInfo {
    pub group: usize,
    pub name: String,
    pub class: usize,
    pub train: usize,
    pub val: usize,
    pub test: usize,
    /// Share of the training split: the weight of this group in the mean accuracy.
    pub train_proportion: f64,
}

/// The answer of `memscope info`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExperimentInfo {
    pub experiment: String,
    pub name: String,
    pub model: ModelConfig,
    /// The data set and its transform, as recorded ([`crate::data::DatasetSpec::describe`]).
    pub data: String,
    /// Where the checkpoints of an imported experiment come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<crate::experiment::ImportSource>,
    /// The parent and method of an experiment written by `memscope mitigate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<crate::experiment::lineage::Lineage>,
    /// The fine-tuning settings of an experiment written by `memscope mitigate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fine_tuning: Option<crate::experiment::TrainSettings>,
    /// PyTorch's `sum(p.numel() for p in model.parameters())`: weights and biases of every
    /// conv, linear and BatchNorm layer.
    pub trainable_parameters: usize,
    /// Values in BatchNorm's running statistics (`running_mean`, `running_var`), PyTorch
    /// buffers; `num_batches_tracked` is not stored.
    pub buffers: usize,
    /// Epochs with a checkpoint.
    pub epochs: Vec<usize>,
    /// The epoch the accuracies below belong to.
    pub epoch: usize,
    pub layers: Vec<LayerInfo>,
    pub groups: Vec<GroupInfo>,
    pub accuracy: AccuracyReport,
    /// The device the accuracies were computed on, and the libtorch.
    pub device: DeviceInfo,
}

/// The groups of `dataset` with their counts per split.
pub fn group_infos(dataset: &GroupedDataset) -> Vec<GroupInfo> {
    let n = dataset.num_groups();
    let counts: Vec<Vec<usize>> = Split::ALL.iter().map(|&s| dataset.split(s).group_counts(n)).collect();
    let proportions = dataset.train_proportions();
    let classes = dataset.class_names.len();
    dataset
        .group_names
        .iter()
        .enumerate()
        .map(|(g, name)| GroupInfo {
            group: g,
            name: name.clone(),
            class: g / (n / classes).max(1),
            train: counts[0][g],
            val: counts[1][g],
            test: counts[2][g],
            train_proportion: proportions[g],
        })
        .collect()
}

/// Describes `experiment` at `epoch`, with accuracies on `split`.
pub fn describe(
    experiment: &Experiment,
    dataset: &GroupedDataset,
    epoch: usize,
    split: Split,
    device: &Device,
) -> Result<ExperimentInfo> {
    let model = experiment.load_network(epoch, device)?;
    let counts = model.counts();
    Ok(ExperimentInfo {
        experiment: experiment.dir.display().to_string(),
        name: experiment.manifest.name.clone(),
        model: experiment.manifest.model.clone(),
        data: experiment.manifest.dataset.describe(),
        import: experiment.manifest.import.clone(),
        lineage: experiment.manifest.lineage.clone(),
        fine_tuning: experiment.manifest.lineage.as_ref().and(experiment.manifest.training.clone()),
        trainable_parameters: counts.trainable,
        buffers: counts.buffers,
        epochs: experiment.epochs().collect(),
        epoch,
        layers: model.layers(),
        groups: group_infos(dataset),
        accuracy: evaluate(&model, dataset, split, device, &mut Silent)?,
        device: describe::in_use(),
    })
}
