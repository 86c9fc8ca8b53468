//! What a mitigation run records of where it came from and what it did: the parent
//! experiment and checkpoint, the method with every setting, and which group labels it read.
//! Data types only (reading an experiment needs nothing from `mitigate`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::neurons::Granularity;
use crate::neurons::scores::Sampling;

/// The parent of a mitigated experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lineage {
    /// The parent experiment's folder (absolute, as it was when the run started).
    pub parent: String,
    pub parent_name: String,
    /// The parent's checkpoint the run started from (this experiment's epoch 0).
    pub start_epoch: usize,
    pub start_sha256: String,
    pub method: Method,
    /// Which group labels the method read, and where.
    pub labels: LabelUse,
    pub seed: u64,
    /// How the data the run saw differed from the data set recorded (a subset per group,
    /// skipped images), one line each; empty when it did not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_changes: Vec<String>,
}

/// Which group labels a method reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabelUse {
    /// No group labels at all (class labels only).
    None,
    /// The training split's group labels, in the loss.
    TrainGroups,
    /// The validation split's group labels (DFR fits the last layer on them).
    ValGroups,
}

impl fmt::Display for LabelUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LabelUse::None => "none",
            LabelUse::TrainGroups => "train groups",
            LabelUse::ValGroups => "val groups",
        })
    }
}

/// A mitigation method and its settings, as `experiment.ron` records them. Its names, the
/// group labels it reads and how it trains are in `crate::mitigate::method` (one module per
/// method).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// The paper's method (You et al.), as released or as the slides describe it.
    SilentMajority(SilentMajority),
    /// More epochs of ERM: the control every method is measured against.
    Erm,
    /// Just Train Twice (Liu et al. 2021).
    Jtt(Jtt),
    /// GroupDRO (Sagawa et al. 2020).
    GroupDro(GroupDro),
    /// Deep Feature Reweighting (Kirichenko et al. 2022).
    Dfr(Dfr),
}

/// The two readings of the mitigation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// As released (`SpuriousCorrelationFinetuningPruning.py`): each epoch a global mask of
    /// the `fraction` smallest-|w| conv weights; NT-Xent both ways with a stop-gradient on one
    /// side + λ·cross-entropy.
    Code,
    /// As the slides write it: the critical neurons (top `fraction` by score) pruned in an
    /// auxiliary copy; L = NT-Xent(full, pruned) + λ·MSE(softmax, one-hot).
    Paper,
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Variant::Code => "code",
            Variant::Paper => "paper",
        })
    }
}

/// What the contrastive loss compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Features {
    /// The softmax probabilities (the released code: its head ends in a softmax).
    Probs,
    Logits,
    /// The pooled representation the head reads.
    Penultimate,
}

impl fmt::Display for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Features::Probs => "probs",
            Features::Logits => "logits",
            Features::Penultimate => "penultimate",
        })
    }
}

/// How the paper variant finds its critical neurons (at the start checkpoint).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Critical {
    Magnitude,
    /// The loss gradient on training examples chosen without group labels.
    Gradient(Sampling),
}

/// The settings of [`Method::SilentMajority`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilentMajority {
    pub variant: Variant,
    pub features: Features,
    /// τ of NT-Xent (0.5 as released).
    pub temperature: f64,
    /// λ on the supervised term (0.2 as released).
    pub lambda: f64,
    /// Code: the fraction of conv weights masked (0.01). Paper: the fraction of candidate
    /// neurons pruned (0.0001, the slides' 0.01%; at least one neuron).
    pub fraction: f64,
    /// Paper variant only: how critical neurons are scored, and what a neuron is.
    pub critical: Critical,
    pub granularity: Granularity,
}

/// The settings of [`Method::Jtt`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jtt {
    /// The parent's epoch whose training-set errors form the error set (T).
    pub identification_epoch: usize,
    /// λ_up: each error appears 1 + λ_up times per epoch.
    pub upweight: usize,
    /// Training examples the identification model got wrong.
    pub errors: usize,
}

/// The settings of [`Method::GroupDro`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupDro {
    /// η, the step size of the group weights (0.01).
    pub step_size: f64,
    /// C of the generalization adjustment C/√n_g (0).
    pub adjustment: f64,
    /// Draw batches group-balanced (`--reweight_groups`, on in the reference commands).
    pub reweight_groups: bool,
}

/// The settings of [`Method::Dfr`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dfr {
    /// Inverse L1 strengths tried (1, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01).
    pub c_grid: Vec<f64>,
    /// The C tuning picked (worst-group accuracy on the held-out half of val).
    pub c: f64,
    /// Group-balanced refits averaged (20).
    pub retrains: usize,
    /// Examples per group in each balanced subset of the whole val split.
    pub per_group: usize,
}
