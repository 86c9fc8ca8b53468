//! The training loop: shuffled batches, an objective, an optimizer, and a report after every
//! epoch. It knows nothing of the loss (an [`Objective`]), of files (the caller records each
//! epoch) or of the screen (a [`Progress`] and an epoch callback).

use anyhow::{Context, Result, anyhow, bail};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::{DType, FloatDType};

use super::adam::FusedAdam;
use super::objective::{Objective, TrainBatch};
use super::sampler::Sampler;
use crate::data::{GroupedDataset, Split, batch};
use crate::device::{Pass, guard};
use crate::experiment::{Diagnostics, LearningRate, OptimizerKind, TrainSettings};
use crate::jobs::{Progress, Within};
use crate::model::Network;
use crate::util::rng::seeded;

/// The optimizer `settings` name.
pub fn optimizer(settings: &TrainSettings) -> ModuleOptimizer {
    let decay = (settings.weight_decay > 0.0).then(|| WeightDecayConfig::new(settings.weight_decay as f32));
    match settings.optimizer {
        OptimizerKind::Adam => FusedAdam::new(settings.adam_epsilon, settings.weight_decay).into(),
        OptimizerKind::Sgd => SgdConfig::new()
            .with_weight_decay(decay)
            .with_momentum(
                (settings.momentum > 0.0).then(|| MomentumConfig::new().with_momentum(settings.momentum)),
            )
            .init(),
    }
}

/// What runs after each epoch of [`fit`]: `(epoch, mean loss, the objective's diagnostics,
/// model, progress of its passes)`.
pub type OnEpoch<'a> =
    dyn FnMut(usize, f64, Option<Diagnostics>, &Network, &mut dyn Progress) -> Result<()> + 'a;

/// Trains `model` (on an autodiff device) for `settings.epochs` epochs over the training
/// split, drawn by `sampler`, with the settings' augmentation and learning-rate schedule.
/// Before each epoch the objective hears of it ([`Objective::begin_epoch`]); after it
/// `on_epoch(epoch, mean loss, diagnostics, model, progress)` runs (recording, evaluation; its passes ask
/// `progress` whether to go on). `progress` hears of every batch, `(batches done, batches in
/// all)`, and can cancel. Returns the trained model.
#[allow(clippy::too_many_arguments)]
pub fn fit(
    mut model: Network,
    objective: &mut dyn Objective,
    sampler: &Sampler,
    dataset: &GroupedDataset,
    settings: &TrainSettings,
    device: &Device,
    on_epoch: &mut OnEpoch<'_>,
    progress: &mut dyn Progress,
) -> Result<Network> {
    crate::device::assert_module_on(&model, device, "the network to train");
    let mut optim = optimizer(settings);
    let mut order_rng = seeded(settings.seed, 2);
    let mut augment_rng = seeded(settings.seed, 4);
    let mut lr = LearningRate::new(settings.schedule, settings.learning_rate);
    let n_groups = dataset.num_groups();
    // Every epoch of a sampler has the same length.
    let per_epoch = sampler.epoch(&dataset.train, n_groups, &mut seeded(settings.seed, 5))?.len();
    let batches = per_epoch.div_ceil(settings.batch_size);
    let total = batches * settings.epochs;
    let diagnosed = objective.diagnosed();
    for epoch in 1..=settings.epochs {
        objective.begin_epoch(&model, epoch)?;
        let order = sampler.epoch(&dataset.train, n_groups, &mut order_rng)?;
        let mut loss_sum = LossSum::new(device);
        let mut gradient_norms = LossSum::new(device);
        let mut b = 0;
        let shape = dataset.image_shape;
        let augment = &settings.augment;
        let rng = &mut augment_rng;
        batch::prefetched(
            dataset,
            Split::Train,
            order.chunks(settings.batch_size),
            |_, pixels| augment.apply(pixels, shape, rng),
            |chunk, pixels| {
                let step = || -> Result<()> {
                    let batch = TrainBatch {
                        images: batch::from_chw(pixels, chunk.len(), shape, device),
                        labels: batch::labels_of(dataset, Split::Train, chunk, device),
                        groups: chunk.iter().map(|&i| dataset.train.groups[i]).collect(),
                        indices: chunk.to_vec(),
                    };
                    let loss = objective.loss(&model, &batch)?;
                    loss_sum.add(&loss, chunk.len());
                    let grads = GradientsParams::from_grads(loss.backward(), &model);
                    if diagnosed {
                        gradient_norms.add(&gradient_norm(&model, &grads, device), 1);
                    }
                    model = optim.step(lr.current, model.clone(), grads);
                    Ok(())
                };
                guard(Pass::Training, chunk.len(), device, step)??;
                b += 1;
                progress.report((epoch - 1) * batches + b, total)?;
                Ok(())
            },
        )?;
        let mean_loss = loss_sum.read()? / order.len().max(1) as f64;
        if !mean_loss.is_finite() {
            bail!("training diverged at epoch {epoch} (loss {mean_loss}); try a smaller learning_rate");
        }
        lr.step(mean_loss);
        let diagnostics = match objective.diagnostics()? {
            Some(d) => Some(Diagnostics { grad_norm: gradient_norms.read()? / b.max(1) as f64, ..d }),
            None => None,
        };
        on_epoch(epoch, mean_loss, diagnostics, &model, &mut Within::new(progress, epoch * batches, total))?;
    }
    Ok(model)
}

/// The L2 norm of every parameter's gradient in `grads` together, `[1]`, on the device.
fn gradient_norm(model: &Network, grads: &GradientsParams, device: &Device) -> Tensor<1> {
    let mut squares = SquaredGradients { grads, sum: None };
    model.visit(&mut squares);
    match squares.sum {
        Some(sum) => sum.sqrt(),
        None => Tensor::zeros([1], device),
    }
}

struct SquaredGradients<'a> {
    grads: &'a GradientsParams,
    sum: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredGradients<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some(g) = self.grads.get::<D>(param.id) else { return };
        let square = g.powf_scalar(2.0).sum();
        self.sum = Some(match self.sum.take() {
            Some(sum) => sum + square,
            None => square,
        });
    }
}

/// An epoch's loss summed over its examples (each batch's mean loss times its size), kept on
/// the device so that no batch waits for the host to read its loss: one read per epoch. The
/// sum is in float64, in batch order, each term f64(loss) × size: the very operations (and so
/// the very bits) of a sum on the host.
struct LossSum(Tensor<1>);

impl LossSum {
    fn new(device: &Device) -> LossSum {
        LossSum(Tensor::zeros([1], (&device.clone().without_autodiff(), DType::F64)))
    }

    /// Adds a batch's mean `loss` (`[1]`) over `examples` examples.
    fn add(&mut self, loss: &Tensor<1>, examples: usize) {
        let term = loss.clone().without_autodiff().cast(FloatDType::F64).mul_scalar(examples as f64);
        self.0 = self.0.clone() + term;
    }

    fn read(self) -> Result<f64> {
        let values =
            self.0.into_data().try_to_vec::<f64>().map_err(|e| anyhow!("cannot read the loss: {e:?}"))?;
        values.first().copied().context("cannot read the loss: no value")
    }
}
