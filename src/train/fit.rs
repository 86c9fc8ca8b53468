//! The training loop: shuffled batches, an objective, an optimizer, and a report after every
//! epoch. It knows nothing of the loss (an [`Objective`]), of files (the caller records each
//! epoch) or of the screen (a [`Progress`] and an epoch callback).

use anyhow::{Result, bail};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use rand::seq::SliceRandom;

use super::objective::{Objective, TrainBatch};
use crate::data::{GroupedDataset, Split, batch};
use crate::experiment::{OptimizerKind, TrainSettings};
use crate::jobs::Progress;
use crate::model::Network;
use crate::util::rng::seeded;

/// The optimizer `settings` name.
pub fn optimizer(settings: &TrainSettings) -> ModuleOptimizer {
    let decay = (settings.weight_decay > 0.0).then(|| WeightDecayConfig::new(settings.weight_decay as f32));
    match settings.optimizer {
        OptimizerKind::Adam => AdamConfig::new().with_weight_decay(decay).init(),
        OptimizerKind::Sgd => SgdConfig::new()
            .with_weight_decay(decay)
            .with_momentum(
                (settings.momentum > 0.0).then(|| MomentumConfig::new().with_momentum(settings.momentum)),
            )
            .init(),
    }
}

/// Trains `model` (on an autodiff device) for `settings.epochs` epochs over the training
/// split. After each epoch `on_epoch(epoch, mean loss, model)` runs (recording, evaluation);
/// `progress` hears of every batch, `(batches done, batches in all)`, and can cancel.
/// Returns the trained model.
pub fn fit(
    mut model: Network,
    objective: &mut dyn Objective,
    dataset: &GroupedDataset,
    settings: &TrainSettings,
    device: &Device,
    on_epoch: &mut dyn FnMut(usize, f64, &Network) -> Result<()>,
    progress: &mut dyn Progress,
) -> Result<Network> {
    let mut optim = optimizer(settings);
    let mut order_rng = seeded(settings.seed, 2);
    let n = dataset.train.len();
    let batches = n.div_ceil(settings.batch_size);
    let total = batches * settings.epochs;
    for epoch in 1..=settings.epochs {
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut order_rng);
        let mut loss_sum = 0.0;
        for (b, chunk) in order.chunks(settings.batch_size).enumerate() {
            let batch = TrainBatch {
                images: batch::images(dataset, Split::Train, chunk, device)?,
                labels: batch::labels_of(dataset, Split::Train, chunk, device),
                indices: chunk.to_vec(),
            };
            let loss = objective.loss(&model, &batch)?;
            loss_sum += f64::from(loss.clone().into_scalar::<f32>()) * chunk.len() as f64;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(settings.learning_rate, model, grads);
            progress.report((epoch - 1) * batches + b + 1, total)?;
        }
        let mean_loss = loss_sum / n as f64;
        if !mean_loss.is_finite() {
            bail!("training diverged at epoch {epoch} (loss {mean_loss}); try a smaller learning_rate");
        }
        on_epoch(epoch, mean_loss, &model)?;
    }
    Ok(model)
}
