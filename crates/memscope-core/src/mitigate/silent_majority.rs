//! The paper's mitigation as a training objective: the network run dense and run pruned
//! (sharing its weights) are pulled together by NT-Xent, plus a supervised term. No group
//! labels are read.

use anyhow::{Result, anyhow, bail, ensure};
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::prelude::*;
use burn::tensor::activation::softmax;

use super::method::{MethodInfo, Mitigation, Preset, Recorder, Start, fine_tune};
use super::ntxent::nt_xent;
use super::prune::{self, DeviceMasks, Masks, smallest_magnitude};
use crate::data::Split;
use crate::experiment::lineage::{Critical, Features, LabelUse, Method, SilentMajority, Variant};
use crate::experiment::{CrossEntropyOn, Diagnostics};
use crate::jobs::{Progress, Within};
use crate::model::{Mode, Network};
use crate::neurons::scores::{Criterion, Sampling};
use crate::neurons::select::{Selection, select};
use crate::neurons::{CandidateFilter, Granularity};
use crate::session::Session;
use crate::train::{Objective, Sampler, TrainBatch, ce_input};

pub const INFO: MethodInfo = MethodInfo {
    name: "silent-majority",
    about: "the paper's mitigation; no group labels",
    labels: LabelUse::None,
    presets: &[
        Preset {
            name: "silent-majority (code)",
            slug: "silent-majority-code",
            short: "sm-code",
            settings: || Method::SilentMajority(SilentMajority::code()),
        },
        Preset {
            name: "silent-majority (paper, as read)",
            slug: "silent-majority-paper",
            short: "sm-paper",
            settings: || Method::SilentMajority(SilentMajority::paper()),
        },
    ],
};

impl SilentMajority {
    /// As released (`SpuriousCorrelationFinetuningPruning.py`): NT-Xent with τ = 0.5 on the
    /// softmax outputs, 0.2 × cross-entropy, the 1% smallest-|w| conv weights masked each
    /// epoch. (`critical` and `granularity` are the paper variant's; unused here.)
    pub fn code() -> Self {
        SilentMajority { variant: Variant::Code, features: Features::Probs, fraction: 0.01, ..Self::paper() }
    }

    /// As the slides write it: the top 0.01% of conv units (fraction 0.0001, at least one)
    /// by the label-free gradient (the 256 highest-loss training examples, 128 drawn) pruned
    /// in the auxiliary copy; NT-Xent on the "features" (penultimate); τ and λ as released
    /// (the slides give no values).
    pub fn paper() -> Self {
        SilentMajority {
            variant: Variant::Paper,
            features: Features::Penultimate,
            temperature: 0.5,
            lambda: 0.2,
            fraction: 0.0001,
            critical: Critical::Gradient(Sampling::LABEL_FREE),
            granularity: Granularity::Unit,
        }
    }

    /// The released code's settings, or the slides'.
    pub fn of(variant: Variant) -> Self {
        match variant {
            Variant::Code => Self::code(),
            Variant::Paper => Self::paper(),
        }
    }
}

impl Default for SilentMajority {
    /// [`SilentMajority::code`].
    fn default() -> Self {
        SilentMajority::code()
    }
}

impl Mitigation for SilentMajority {
    fn info(&self) -> &'static MethodInfo {
        &INFO
    }

    /// The paper variant is memscope's reading of the slides, not the authors' code: its
    /// label says so wherever it is shown ("silent-majority (paper as read, penultimate)").
    fn label(&self) -> String {
        let variant = match self.variant {
            Variant::Code => "code",
            Variant::Paper => "paper as read",
        };
        format!("{} ({variant}, {})", INFO.name, self.features)
    }

    fn slug(&self) -> String {
        let variant = match self.variant {
            Variant::Code => "code",
            Variant::Paper => "paper",
        };
        format!("{}-{variant}", INFO.name)
    }

    fn run(
        &self,
        start: &Start<'_>,
        recorder: &mut Recorder<'_>,
        progress: &mut dyn Progress,
    ) -> Result<Method> {
        ensure!(
            self.variant == Variant::Code || self.fraction > 0.0,
            "the paper variant prunes at least one neuron: a fraction of 0 (the mask ablation) is the code variant's"
        );
        let critical = match self.variant {
            // Before the first batch: the gradient pass only asks whether to go on.
            Variant::Paper => Some(critical_neurons(self, start, &mut Within::new(progress, 0, 0))?),
            Variant::Code => None,
        };
        let fixed = critical.as_ref().map(|masks| (masks, &start.model));
        let mut objective = SilentMajorityObjective::new(self.clone(), fixed, &start.autodiff)?
            .with_ce_on(start.training.ce_on);
        fine_tune(start, &mut objective, &Sampler::Shuffle, recorder, progress)?;
        Ok(Method::SilentMajority(self.clone()))
    }
}

/// The paper variant's critical neurons at the start checkpoint: the top `fraction` of the
/// candidate units (the head left out) by magnitude or by the label-free gradient on train,
/// as masks.
fn critical_neurons(
    settings: &SilentMajority,
    start: &Start<'_>,
    progress: &mut dyn Progress,
) -> Result<Masks> {
    let seed = start.seed();
    let mut session = Session::new(start.parent.clone(), start.dataset.clone(), start.device.clone())?;
    let filter = CandidateFilter { exclude_head: true, ..CandidateFilter::default() };
    let space = session.space(&filter, settings.granularity)?;
    let criterion = match settings.critical {
        Critical::Magnitude => Criterion::Magnitude,
        Critical::Gradient(sampling) => {
            Criterion::Gradient { group: None, split: Split::Train, sampling, seed }
        }
    };
    let scores = session.scores(start.epoch, &criterion, &space, progress)?;
    let chosen = select(&scores, Selection::TopFraction(settings.fraction), seed)?;
    prune::neurons(&space, &chosen)
}

/// The contrastive features of a pass and its logits, BatchNorm in training mode.
pub fn views(model: &Network, images: Tensor<4>, features: Features) -> (Tensor<2>, Tensor<2>) {
    match features {
        Features::Penultimate => {
            let f = model.features(images, Mode::Auto);
            let logits = model.head(f.clone());
            (f, logits)
        }
        Features::Logits => {
            let logits = model.forward(images, Mode::Auto);
            (logits.clone(), logits)
        }
        Features::Probs => {
            let logits = model.forward(images, Mode::Auto);
            (softmax(logits.clone(), 1), logits)
        }
    }
}

/// What the pruned pass masks this epoch (for the record and the screen).
#[derive(Clone, Debug, Default)]
pub struct PruneReport {
    pub zeroed: usize,
    pub total: usize,
    pub per_layer: Vec<(String, f64)>,
}

/// [`Objective`] of the silent-majority mitigation (both variants).
pub struct SilentMajorityObjective {
    settings: SilentMajority,
    masks: Option<DeviceMasks>,
    device: Device,
    ce: CrossEntropyLoss,
    ce_on: CrossEntropyOn,
    pub last_prune: PruneReport,
    terms: Terms,
}

/// The epoch's terms summed over its batches, on the device (read once per epoch):
/// `[ntxent, supervised, distance]`.
#[derive(Default)]
struct Terms {
    sum: Option<Tensor<1>>,
    batches: usize,
}

impl Terms {
    /// Adds a batch's NT-Xent, supervised term and dense-vs-masked distance (graphs left
    /// behind).
    fn add(&mut self, ntxent: &Tensor<1>, supervised: &Tensor<1>, distance: Tensor<1>) {
        let values = Tensor::cat(vec![ntxent.clone(), supervised.clone(), distance], 0).without_autodiff();
        self.sum = Some(match self.sum.take() {
            Some(sum) => sum + values,
            None => values,
        });
        self.batches += 1;
    }

    /// The means since the last read (gradient norm left at 0 for the loop), and a fresh start.
    fn read(&mut self) -> Result<Option<Diagnostics>> {
        let Some(sum) = self.sum.take() else { return Ok(None) };
        let n = std::mem::take(&mut self.batches).max(1) as f64;
        let values = sum.into_data().convert::<f64>().try_to_vec::<f64>().map_err(|e| anyhow!("{e:?}"))?;
        let [ntxent, ce, distance] = values[..] else { bail!("expected three diagnostic terms") };
        Ok(Some(Diagnostics { ntxent: ntxent / n, ce: ce / n, grad_norm: 0.0, distance: distance / n }))
    }
}

/// Per example, the L2 distance between the softmax outputs of `dense` and `masked` logits,
/// averaged over the batch (`[1]`, off the graph).
fn output_distance(dense: &Tensor<2>, masked: &Tensor<2>) -> Tensor<1> {
    let difference = softmax(dense.clone().detach(), 1) - softmax(masked.clone().detach(), 1);
    difference.powf_scalar(2.0).sum_dim(1).sqrt().mean()
}

impl SilentMajorityObjective {
    /// For the code variant the mask is recomputed at every epoch's start; the paper variant
    /// takes its critical-neuron `fixed` masks here.
    pub fn new(settings: SilentMajority, fixed: Option<(&Masks, &Network)>, device: &Device) -> Result<Self> {
        let masks = match (settings.variant, fixed) {
            (Variant::Code, None) => None,
            (Variant::Paper, Some((masks, model))) => Some(DeviceMasks::new(masks, model, device)),
            (Variant::Code, Some(_)) => bail!("the code variant computes its own masks"),
            (Variant::Paper, None) => bail!("the paper variant needs its critical neurons"),
        };
        let last_prune = match fixed {
            Some((m, _)) => PruneReport { zeroed: m.zeroed, total: m.total, per_layer: m.per_layer() },
            None => PruneReport::default(),
        };
        Ok(SilentMajorityObjective {
            settings,
            masks,
            device: device.clone(),
            ce: CrossEntropyLossConfig::new().init(device),
            ce_on: CrossEntropyOn::Logits,
            last_prune,
            terms: Terms::default(),
        })
    }

    /// The supervised term read from the softmax output (the release's form) or the logits.
    pub fn with_ce_on(self, ce_on: CrossEntropyOn) -> Self {
        SilentMajorityObjective { ce_on, ..self }
    }
}

/// The features of a dense pass that carries no gradient (the release's `torch.no_grad()`
/// pass): the parameters are read untracked, so no autodiff graph is built, while BatchNorm
/// still normalises with the batch's statistics and updates its running ones (shared with
/// `model`).
pub fn values_without_graph(model: &Network, images: Tensor<4>, features: Features) -> Tensor<2> {
    views(&model.clone().no_grad(), images, features).0
}

impl Objective for SilentMajorityObjective {
    fn name(&self) -> &'static str {
        "silent-majority"
    }

    fn begin_epoch(&mut self, model: &Network, _epoch: usize) -> Result<()> {
        if self.settings.variant == Variant::Code {
            let masks = smallest_magnitude(model, self.settings.fraction)?;
            self.last_prune =
                PruneReport { zeroed: masks.zeroed, total: masks.total, per_layer: masks.per_layer() };
            self.masks = Some(DeviceMasks::new(&masks, model, &self.device));
        }
        Ok(())
    }

    fn diagnosed(&self) -> bool {
        true
    }

    fn diagnostics(&mut self) -> Result<Option<Diagnostics>> {
        self.terms.read()
    }

    fn loss(&mut self, model: &Network, batch: &TrainBatch) -> Result<Tensor<1>> {
        let Some(masks) = &self.masks else {
            bail!("the pruning mask was not computed before the first batch")
        };
        let s = &self.settings;
        let pruned = masks.apply(model);
        let x = batch.images.clone();
        match s.variant {
            Variant::Code => {
                // The released order: a dense pass without gradient (it updates BatchNorm's
                // running statistics, as the release's no-grad pass does), the pruned pass,
                // then the dense pass that carries gradients.
                let dense_values = values_without_graph(model, x.clone(), s.features);
                let (p, masked_logits) = views(&pruned, x.clone(), s.features);
                let first = nt_xent(dense_values, p.clone(), s.temperature);
                let (dense, logits) = views(model, x, s.features);
                let second = nt_xent(dense, p.detach(), s.temperature);
                let distance = output_distance(&logits, &masked_logits);
                let ce = self.ce.forward(ce_input(self.ce_on, logits), batch.labels.clone());
                let contrast = first + second;
                self.terms.add(&contrast, &ce, distance);
                Ok(contrast + ce.mul_scalar(s.lambda))
            }
            Variant::Paper => {
                let (dense, logits) = views(model, x.clone(), s.features);
                let (p, masked_logits) = views(&pruned, x, s.features);
                let distance = output_distance(&logits, &masked_logits);
                let contrast = nt_xent(dense, p, s.temperature);
                let mse = mse_one_hot(logits, batch.labels.clone());
                self.terms.add(&contrast, &mse, distance);
                Ok(contrast + mse.mul_scalar(s.lambda))
            }
        }
    }
}

/// The slides' L_MSE = ‖ŷ − y‖², ŷ the softmax probabilities and y one-hot, averaged over
/// the batch.
pub(crate) fn mse_one_hot(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let [n, classes] = logits.dims();
    // burn's `one_hot` reads the labels back to check them: on CUDA a wait every batch.
    let class = Tensor::<1, Int>::arange(0..classes as i64, &labels.device()).reshape([1, classes]);
    let target = labels.reshape([n, 1]).expand([n, classes]).equal(class.expand([n, classes])).float();
    (softmax(logits, 1) - target).powf_scalar(2.0).sum_dim(1).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    /// The one-hot target made by comparing with the class numbers is burn's `one_hot`.
    #[test]
    fn the_mse_is_the_one_of_burns_one_hot() {
        let device = crate::device::DeviceSpec::Cpu.device().unwrap();
        let logits =
            Tensor::<2>::from_data(TensorData::new(vec![0.5f32, -1.0, 2.0, 0.1, 0.2, 0.3], [2, 3]), &device);
        let labels = Tensor::<1, Int>::from_data(TensorData::new(vec![2i64, 0], [2]), &device);
        let target = labels.clone().one_hot(3).float();
        let want = (softmax(logits.clone(), 1) - target).powf_scalar(2.0).sum_dim(1).mean();
        let got = mse_one_hot(logits, labels);
        assert_eq!(
            got.into_data().try_to_vec::<f32>().unwrap(),
            want.into_data().try_to_vec::<f32>().unwrap()
        );
    }
}
