//! GroupDRO's online objective (`LossComputer.compute_robust_loss` of kohpangwei/group_DRO):
//! per batch, each group's mean loss L_g; the group weights q ← q·exp(η·(L_g + C/√n_g)),
//! renormalised; the loss Σ_g q_g·L_g. Reads the training split's group labels.

use anyhow::{Result, anyhow};
use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::activation::log_softmax;

use super::method::{MethodInfo, Mitigation, Preset, Recorder, Start, fine_tune};
use crate::experiment::lineage::{GroupDro, LabelUse, Method};
use crate::jobs::Progress;
use crate::model::{Mode, Network};
use crate::train::{Objective, Sampler, TrainBatch};

pub const INFO: MethodInfo = MethodInfo {
    name: "group-dro",
    about: "train group labels",
    labels: LabelUse::TrainGroups,
    presets: &[Preset {
        name: "group-dro",
        slug: "group-dro",
        short: "group-dro",
        settings: || Method::GroupDro(GroupDro::default()),
    }],
};

impl Default for GroupDro {
    /// The reference commands' (kohpangwei/group_DRO README): η = 0.01 (`--robust_step_size`),
    /// no generalization adjustment (`--generalization_adjustment 0`), group-balanced batches
    /// (`--reweight_groups`).
    fn default() -> Self {
        GroupDro { step_size: 0.01, adjustment: 0.0, reweight_groups: true }
    }
}

impl Mitigation for GroupDro {
    fn info(&self) -> &'static MethodInfo {
        &INFO
    }

    fn run(
        &self,
        start: &Start<'_>,
        recorder: &mut Recorder<'_>,
        progress: &mut dyn Progress,
    ) -> Result<Method> {
        let dataset = start.dataset;
        let mut objective =
            GroupDroObjective::new(self.clone(), dataset.train.group_counts(dataset.num_groups()));
        let sampler = if self.reweight_groups { Sampler::GroupBalanced } else { Sampler::Shuffle };
        fine_tune(start, &mut objective, &sampler, recorder, progress)?;
        Ok(Method::GroupDro(self.clone()))
    }
}

/// The group weights after one step: `q_g · exp(η · (L_g + C/√n_g))`, normalised to sum 1
/// (the adjustment only when C > 0 and every group has training examples).
pub(crate) fn update_weights(
    q: &[f64],
    group_losses: &[f64],
    step_size: f64,
    adjustment: f64,
    train_counts: &[usize],
) -> Vec<f64> {
    let adjust = adjustment > 0.0 && train_counts.iter().all(|&n| n > 0);
    let raw: Vec<f64> = q
        .iter()
        .zip(group_losses)
        .zip(train_counts)
        .map(|((&q, &l), &n)| {
            let l = if adjust { l + adjustment / (n as f64).sqrt() } else { l };
            q * (step_size * l).exp()
        })
        .collect();
    let sum: f64 = raw.iter().sum();
    raw.into_iter().map(|v| v / sum).collect()
}

/// [`Objective`] of GroupDRO.
pub struct GroupDroObjective {
    settings: GroupDro,
    /// The group weights q, persisting across batches and epochs (uniform at the start).
    pub weights: Vec<f64>,
    train_counts: Vec<usize>,
}

impl GroupDroObjective {
    pub fn new(settings: GroupDro, train_counts: Vec<usize>) -> GroupDroObjective {
        let n = train_counts.len();
        GroupDroObjective { settings, weights: vec![1.0 / n as f64; n], train_counts }
    }
}

impl Objective for GroupDroObjective {
    fn name(&self) -> &'static str {
        "group-dro"
    }

    fn loss(&mut self, model: &Network, batch: &TrainBatch) -> Result<Tensor<1>> {
        let logits = model.forward(batch.images.clone(), Mode::Auto);
        let [n, _] = logits.dims();
        let device = logits.device();
        let per_example =
            log_softmax(logits, 1).gather(1, batch.labels.clone().reshape([n, 1])).reshape([n]).neg();
        let groups = self.weights.len();
        // [groups, n]: 1/count_g where example i is in group g (0 for a group absent here).
        let mut average = vec![0.0f32; groups * n];
        let mut counts = vec![0usize; groups];
        for &g in &batch.groups {
            counts[g] += 1;
        }
        for (i, &g) in batch.groups.iter().enumerate() {
            average[g * n + i] = 1.0 / counts[g] as f32;
        }
        let average = Tensor::<2>::from_data(TensorData::new(average, [groups, n]), &device);
        let group_losses = average.matmul(per_example.reshape([n, 1])).reshape([groups]); // [groups]
        let values: Vec<f64> = group_losses
            .clone()
            .detach()
            .into_data()
            .convert::<f64>()
            .try_to_vec::<f64>()
            .map_err(|e| anyhow!("cannot read group losses: {e:?}"))?;
        self.weights = update_weights(
            &self.weights,
            &values,
            self.settings.step_size,
            self.settings.adjustment,
            &self.train_counts,
        );
        let q: Vec<f32> = self.weights.iter().map(|&q| q as f32).collect();
        let q = Tensor::<1>::from_data(TensorData::new(q, [groups]), &device);
        Ok((group_losses * q).sum())
    }
}
