//! Just Train Twice (Liu et al. 2021): the training examples an identification model (the
//! parent at an earlier epoch) gets wrong, upweighted; plain ERM otherwise. No group labels.

use anyhow::{Context, Result};
use burn::prelude::*;

use super::method::{MethodInfo, Mitigation, Preset, Recorder, Start, fine_tune};
use crate::data::{GroupedDataset, Split};
use crate::eval::{logits, predictions};
use crate::experiment::lineage::{Jtt, LabelUse, Method};
use crate::jobs::Progress;
use crate::model::Network;
use crate::train::{Erm, Sampler};

pub const INFO: MethodInfo = MethodInfo {
    name: "jtt",
    about: "no group labels in training",
    labels: LabelUse::None,
    presets: &[Preset { name: "jtt", slug: "jtt", short: "jtt", settings: || Method::Jtt(Jtt::default()) }],
};

impl Default for Jtt {
    /// SpuCo's defaults: the errors of epoch T = 1 (JTT used 60 of 300 on Waterbirds, 1 of 50
    /// on CelebA), each visited 1 + λ_up = 101 times per epoch (λ_up = 100, JTT's Waterbirds
    /// run and SpuCo's default).
    fn default() -> Self {
        Jtt { identification_epoch: 1, upweight: 100, errors: 0 }
    }
}

impl Mitigation for Jtt {
    fn info(&self) -> &'static MethodInfo {
        &INFO
    }

    fn found(&self) -> Option<String> {
        Some(format!("error set: {} training examples at epoch {}", self.errors, self.identification_epoch))
    }

    fn run(
        &self,
        start: &Start<'_>,
        recorder: &mut Recorder<'_>,
        progress: &mut dyn Progress,
    ) -> Result<Method> {
        let identification =
            start.parent.load_network(self.identification_epoch, start.device).with_context(|| {
                format!("JTT's identification epoch {} (--jtt-epoch)", self.identification_epoch)
            })?;
        let errors = error_set(&identification, start.dataset, start.device, progress)?;
        let sampler = Sampler::Repeat(multiplicities(&errors, self.upweight));
        fine_tune(start, &mut Erm::new(&start.autodiff, start.training.ce_on), &sampler, recorder, progress)?;
        Ok(Method::Jtt(Jtt { errors: errors.iter().filter(|&&e| e).count(), ..self.clone() }))
    }
}

/// Which training examples `model` (eval mode, no augmentation) misclassifies; `progress`
/// hears of each batch.
pub fn error_set(
    model: &Network,
    dataset: &GroupedDataset,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<Vec<bool>> {
    let logits = logits(model, dataset, Split::Train, device, progress)?;
    let predicted = predictions(&logits, dataset.class_names.len());
    Ok(predicted.iter().zip(&dataset.train.labels).map(|(p, l)| p != l).collect())
}

/// Times each example is visited per epoch: 1, and 1 + `upweight` for an error (JTT's
/// `ConcatDataset([train, Subset(train, errors * up_weight)])`).
pub fn multiplicities(errors: &[bool], upweight: usize) -> Vec<usize> {
    errors.iter().map(|&e| if e { 1 + upweight } else { 1 }).collect()
}
