//! Where a result came from: enough to reproduce it or to tell two results apart.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::data::DataChanges;
use crate::device::describe::DeviceInfo;
use crate::experiment::Experiment;

/// Exported with every JSON result; tables and CSV carry only its data changes, as note lines.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// memscope's version (Cargo.toml).
    pub memscope: String,
    /// The libtorch memscope was built against and runs on: version, CPU only or CUDA X
    /// ([`crate::device::LIBTORCH`]); empty when read from a file written before it was kept.
    #[serde(default)]
    pub libtorch: String,
    /// How float32 was computed: "cpu", or on CUDA the cuDNN and TF32 settings libtorch reports
    /// ([`crate::device::numerics_in_force`]), e.g. "cuDNN deterministic, TF32 off"; empty when
    /// read from a file written before it was kept.
    #[serde(default)]
    pub numerics: String,
    /// The device the result was computed on: `cpu` or `cuda:N`, its model, memory or
    /// threads ([`crate::device::describe`]); absent in files written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceInfo>,
    /// The experiment folder and its name.
    pub experiment: String,
    pub name: String,
    /// The data set and transform as `experiment.ron` records them (`--data-root` may say
    /// where its folder is now), e.g. "waterbirds:/data/wb (Resize((256, 256),
    /// interpolation=bilinear) · CenterCrop(224) · Normalize(ImageNet))".
    #[serde(default)]
    pub dataset: String,
    /// The epoch intervened on or described, its checkpoint file and that file's sha256.
    pub epoch: usize,
    pub checkpoint: String,
    pub sha256: String,
    /// The full request, its seed included.
    pub spec: serde_json::Value,
    /// How the data differs from the experiment's whole data set (a subset per group,
    /// skipped images); absent when it does not.
    #[serde(default, skip_serializing_if = "DataChanges::is_empty")]
    pub data: DataChanges,
}

impl Provenance {
    /// The provenance of a result computed from `experiment` at `epoch` by `spec`, on its
    /// data set changed by `data`.
    pub fn new(
        experiment: &Experiment,
        data: &DataChanges,
        epoch: usize,
        spec: &impl Serialize,
    ) -> Result<Provenance> {
        let entry = experiment.checkpoint(epoch)?;
        Ok(Provenance {
            memscope: env!("CARGO_PKG_VERSION").into(),
            libtorch: crate::device::LIBTORCH.into(),
            numerics: crate::device::numerics_in_force(),
            device: crate::device::describe::current(),
            experiment: experiment.dir.display().to_string(),
            name: experiment.manifest.name.clone(),
            dataset: experiment.manifest.dataset.describe(),
            epoch,
            checkpoint: entry.file.clone(),
            sha256: entry.sha256.clone(),
            spec: serde_json::to_value(spec).context("cannot serialise the request")?,
            data: data.clone(),
        })
    }
}
