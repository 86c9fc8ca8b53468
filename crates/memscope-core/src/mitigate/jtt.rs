//! Just Train Twice: the training examples an identification model gets wrong, upweighted.

use anyhow::Result;
use burn::prelude::*;

use crate::data::{GroupedDataset, Split};
use crate::eval::{logits, predictions};
use crate::model::Network;

/// Which training examples `model` (eval mode, no augmentation) misclassifies.
pub fn error_set(model: &Network, dataset: &GroupedDataset, device: &Device) -> Result<Vec<bool>> {
    let logits = logits(model, dataset, Split::Train, device)?;
    let predicted = predictions(&logits, dataset.class_names.len());
    Ok(predicted.iter().zip(&dataset.train.labels).map(|(p, l)| p != l).collect())
}

/// Times each example is visited per epoch: 1, and 1 + `upweight` for an error (JTT's
/// `ConcatDataset([train, Subset(train, errors * up_weight)])`).
pub fn multiplicities(errors: &[bool], upweight: usize) -> Vec<usize> {
    errors.iter().map(|&e| if e { 1 + upweight } else { 1 }).collect()
}
