//! GroupDRO's online objective (`LossComputer.compute_robust_loss` of kohpangwei/group_DRO):
//! per batch, each group's mean loss L_g; the group weights q ← q·exp(η·(L_g + C/√n_g)),
//! renormalised; the loss Σ_g q_g·L_g. Reads the training split's group labels.

use anyhow::{Result, anyhow};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::{DType, FloatDType, TensorData};

use super::method::{MethodInfo, Mitigation, Preset, Recorder, Start, fine_tune};
use crate::data::batch;
use crate::experiment::CrossEntropyOn;
use crate::experiment::lineage::{GroupDro, LabelUse, Method};
use crate::jobs::Progress;
use crate::model::{Mode, Network};
use crate::train::{Objective, Sampler, TrainBatch, ce_input};

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
            GroupDroObjective::new(self.clone(), dataset.train.group_counts(dataset.num_groups()))
                .with_ce_on(start.training.ce_on);
        let sampler = if self.reweight_groups { Sampler::GroupBalanced } else { Sampler::Shuffle };
        fine_tune(start, &mut objective, &sampler, recorder, progress)?;
        Ok(Method::GroupDro(self.clone()))
    }
}

/// The generalization adjustment of each group, `C/√n_g`, or none (when C = 0 or a group has
/// no training example).
fn adjustments(adjustment: f64, train_counts: &[usize]) -> Option<Vec<f64>> {
    let adjust = adjustment > 0.0 && train_counts.iter().all(|&n| n > 0);
    adjust.then(|| train_counts.iter().map(|&n| adjustment / (n as f64).sqrt()).collect())
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
    let adjust = adjustments(adjustment, train_counts);
    let raw: Vec<f64> = q
        .iter()
        .zip(group_losses)
        .enumerate()
        .map(|(g, (&q, &l))| {
            let l = match &adjust {
                Some(a) => l + a[g],
                None => l,
            };
            q * (step_size * l).exp()
        })
        .collect();
    let sum: f64 = raw.iter().sum();
    raw.into_iter().map(|v| v / sum).collect()
}

/// [`update_weights`] on the device, in float64: `q` and `adjust` (`[groups]`, float64) and
/// `group_losses` (`[groups]`, float32, its gradient not followed) stay where they are.
fn update_on_device(
    q: Tensor<1>,
    group_losses: &Tensor<1>,
    step_size: f64,
    adjust: Option<&Tensor<1>>,
) -> Tensor<1> {
    let l = group_losses.clone().detach().without_autodiff().cast(FloatDType::F64);
    let l = match adjust {
        Some(a) => l + a.clone(),
        None => l,
    };
    let raw = q * l.mul_scalar(step_size).exp();
    raw.clone() / raw.sum()
}

/// The group weights q, persisting across batches and epochs.
enum Weights {
    /// On the host, where they are updated when batches are on the CPU (reading the group
    /// losses costs nothing there).
    Host(Vec<f64>),
    /// On the batches' CUDA device, float64, with the adjustments: reading the group losses
    /// would make every batch wait for the GPU.
    Device { q: Tensor<1>, adjust: Option<Tensor<1>> },
}

/// [`Objective`] of GroupDRO.
pub struct GroupDroObjective {
    settings: GroupDro,
    weights: Weights,
    train_counts: Vec<usize>,
    ce_on: CrossEntropyOn,
}

impl GroupDroObjective {
    pub fn new(settings: GroupDro, train_counts: Vec<usize>) -> GroupDroObjective {
        let n = train_counts.len();
        let weights = Weights::Host(vec![1.0 / n as f64; n]);
        GroupDroObjective { settings, weights, train_counts, ce_on: CrossEntropyOn::Logits }
    }

    /// The per-example cross-entropy read from the softmax output instead of the logits.
    pub fn with_ce_on(self, ce_on: CrossEntropyOn) -> GroupDroObjective {
        GroupDroObjective { ce_on, ..self }
    }

    /// The group weights q now (uniform before the first batch).
    pub fn weights(&self) -> Result<Vec<f64>> {
        match &self.weights {
            Weights::Host(q) => Ok(q.clone()),
            Weights::Device { q, .. } => q
                .clone()
                .into_data()
                .try_to_vec::<f64>()
                .map_err(|e| anyhow!("cannot read group weights: {e:?}")),
        }
    }

    /// Starts from the group weights `q` (one per group, summing to 1) instead of uniform ones.
    pub fn set_weights(&mut self, q: Vec<f64>) {
        self.weights = Weights::Host(q);
    }

    /// This batch's q (`[groups]`, float32, on `device`) after updating it with the batch's
    /// `group_losses`.
    fn step(&mut self, group_losses: &Tensor<1>, device: &Device) -> Result<Tensor<1>> {
        let GroupDro { step_size, adjustment, .. } = self.settings;
        let groups = self.train_counts.len();
        if let (Weights::Host(q), Some(_)) = (&self.weights, crate::device::cuda_index(device)) {
            // The first batch on CUDA: the weights move there, once.
            let plain = device.clone().without_autodiff();
            let f64s =
                |v: Vec<f64>| Tensor::<1>::from_data(TensorData::new(v, [groups]), (&plain, DType::F64));
            let adjust = adjustments(adjustment, &self.train_counts).map(f64s);
            self.weights = Weights::Device { q: f64s(q.clone()), adjust };
        }
        match &mut self.weights {
            Weights::Host(q) => {
                let losses: Vec<f64> = group_losses
                    .clone()
                    .detach()
                    .into_data()
                    .convert::<f64>()
                    .try_to_vec::<f64>()
                    .map_err(|e| anyhow!("cannot read group losses: {e:?}"))?;
                *q = update_weights(q, &losses, step_size, adjustment, &self.train_counts);
                let q: Vec<f32> = q.iter().map(|&q| q as f32).collect();
                Ok(Tensor::<1>::from_data(TensorData::new(q, [groups]), device))
            }
            Weights::Device { q, adjust } => {
                *q = update_on_device(q.clone(), group_losses, step_size, adjust.as_ref());
                let q = q.clone().cast(FloatDType::F32);
                Ok(if device.is_autodiff() { q.autodiff() } else { q })
            }
        }
    }
}

/// `[groups, n]`: 1/count_g where example i of the batch is in group g (count_g: the batch's
/// examples of group g), 0 elsewhere, made on `device` from the batch's group numbers.
/// Stored row-major (a transposed one-hot would take another, differently rounded, matmul).
fn group_average(groups: &[usize], n_groups: usize, device: &Device) -> Tensor<2> {
    let n = groups.len();
    let of_example = batch::labels(groups.iter().copied(), device).reshape([1, n]).expand([n_groups, n]);
    let group =
        Tensor::<1, Int>::arange(0..n_groups as i64, device).reshape([n_groups, 1]).expand([n_groups, n]);
    let members = group.equal(of_example).float(); // [groups, n]
    let counts = members.clone().sum_dim(1).clamp_min(1.0); // [groups, 1]
    members / counts
}

impl Objective for GroupDroObjective {
    fn name(&self) -> &'static str {
        "group-dro"
    }

    fn loss(&mut self, model: &Network, batch: &TrainBatch) -> Result<Tensor<1>> {
        let logits = model.forward(batch.images.clone(), Mode::Auto);
        let [n, _] = logits.dims();
        let device = logits.device();
        let per_example = log_softmax(ce_input(self.ce_on, logits), 1)
            .gather(1, batch.labels.clone().reshape([n, 1]))
            .reshape([n])
            .neg();
        let average = group_average(&batch.groups, self.train_counts.len(), &device);
        let group_losses = average.matmul(per_example.reshape([n, 1])).reshape([self.train_counts.len()]);
        let q = self.step(&group_losses, &device)?;
        crate::device::assert_on(&q, &device, "GroupDRO's group weights");
        Ok((group_losses * q).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CUDA path's update, run here on the CPU, against the host's.
    #[test]
    fn the_device_update_is_the_host_update() {
        let device = crate::device::DeviceSpec::Cpu.device().unwrap();
        let counts = [30, 3, 5, 40];
        let losses32 = [0.7f32, 2.5, 1.25, 0.1];
        let mut host = vec![0.1, 0.2, 0.3, 0.4];
        let f64s = |v: Vec<f64>| Tensor::<1>::from_data(TensorData::new(v, [4]), (&device, DType::F64));
        let mut q = f64s(host.clone());
        let adjust = adjustments(2.0, &counts).map(f64s);
        let losses = Tensor::<1>::from_data(TensorData::new(losses32.to_vec(), [4]), &device);
        let wide: Vec<f64> = losses32.iter().map(|&l| f64::from(l)).collect();
        for _ in 0..3 {
            host = update_weights(&host, &wide, 0.3, 2.0, &counts);
            q = update_on_device(q, &losses, 0.3, adjust.as_ref());
        }
        let got = q.into_data().try_to_vec::<f64>().unwrap();
        for (g, h) in got.iter().zip(&host) {
            assert!((g - h).abs() <= 1e-15 * h, "{got:?} vs {host:?}");
        }
    }

    /// The averaging matrix made on the device is the one the host made: 1/count_g or 0.
    #[test]
    fn the_group_average_has_one_over_each_count() {
        let device = crate::device::DeviceSpec::Cpu.device().unwrap();
        let average = group_average(&[0, 2, 2, 0, 2], 4, &device).into_data().try_to_vec::<f32>().unwrap();
        let third = 1.0f32 / 3.0;
        #[rustfmt::skip]
        let want = [
            0.5, 0.0, 0.0, 0.5, 0.0,
            0.0, 0.0, 0.0, 0.0, 0.0,
            0.0, third, third, 0.0, third,
            0.0, 0.0, 0.0, 0.0, 0.0,
        ];
        assert_eq!(average, want);
    }
}
