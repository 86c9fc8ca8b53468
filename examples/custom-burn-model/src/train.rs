//! Training with burn-train: the learner, its checkpointer (burn's recorder: one burnpack
//! file per epoch under `RUN/checkpoint/model-E.bpk`) and a plain-text renderer.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use burn::data::dataloader::DataLoaderBuilder;
use burn::module::Module;
use burn::optim::AdamConfig;
use burn::prelude::*;
use burn_train::checkpoint::{CheckpointingAction, CheckpointingStrategy};
use burn_train::metric::store::EventStoreClient;
use burn_train::metric::{AccuracyMetric, LossMetric};
use burn_train::{Learner, SupervisedTraining};
use memscope_core::data::{GroupedDataset, Split};

use crate::data::{DigitBatcher, items};
use crate::model::TinyCnn;

/// Keeps every epoch's checkpoint (burn-train's default keeps the last two and the best).
struct EveryEpoch;

impl CheckpointingStrategy for EveryEpoch {
    fn checkpointing(&mut self, _epoch: usize, _collector: &EventStoreClient) -> Vec<CheckpointingAction> {
        vec![CheckpointingAction::Save]
    }
}

/// The burn record of `epoch` in the run folder `run`.
pub fn record_path(run: &Path, epoch: usize) -> PathBuf {
    run.join("checkpoint").join(format!("model-{epoch}.bpk"))
}

/// Trains a fresh [`TinyCnn`] on the train split for `epochs` epochs with Adam, validating
/// on val; epoch 0 (the initialisation) and every epoch after it are saved in `run`.
pub fn train(dataset: &GroupedDataset, run: &Path, epochs: usize, device: &Device) -> Result<()> {
    let train_device = device.clone().autodiff();
    let model = TinyCnn::new(dataset.image_shape[0], dataset.class_names.len(), &train_device);
    std::fs::create_dir_all(run.join("checkpoint"))
        .with_context(|| format!("cannot create {}", run.display()))?;
    model.clone().save_file(record_path(run, 0)).map_err(|e| anyhow!("cannot save epoch 0: {e}"))?;

    let batcher = DigitBatcher { shape: dataset.image_shape };
    let loader_train = DataLoaderBuilder::new(batcher.clone())
        .batch_size(64)
        .shuffle(7)
        .set_device(train_device.clone())
        .build(items(dataset, Split::Train)?);
    let loader_valid = DataLoaderBuilder::new(batcher)
        .batch_size(256)
        .set_device(device.clone())
        .build(items(dataset, Split::Val)?);
    let training = SupervisedTraining::new(run, loader_train, loader_valid)
        .metrics((AccuracyMetric::new(), LossMetric::new()))
        .with_default_checkpointers()
        .with_checkpointing_strategy(EveryEpoch)
        .num_epochs(epochs)
        .summary();
    let learner = Learner::new(model, AdamConfig::new().init(), 2e-3);
    let _trained = training.launch(learner);
    Ok(())
}
