//! More epochs of ERM from the start checkpoint: the control every method is measured
//! against (the same fine-tuning, plain cross-entropy, every example once per epoch).

use anyhow::Result;

use super::method::{MethodInfo, Mitigation, Preset, Recorder, Start, fine_tune};
use crate::experiment::lineage::{LabelUse, Method};
use crate::jobs::Progress;
use crate::train::{Erm, Sampler};

pub(crate) const INFO: MethodInfo = MethodInfo {
    name: "erm",
    about: "more ERM: the control",
    labels: LabelUse::None,
    presets: &[Preset { name: "erm", slug: "erm", short: "erm", settings: || Method::Erm }],
};

/// [`Method::Erm`], which has no settings.
pub(crate) struct MoreErm;

impl Mitigation for MoreErm {
    fn info(&self) -> &'static MethodInfo {
        &INFO
    }

    fn run(
        &self,
        start: &Start<'_>,
        recorder: &mut Recorder<'_>,
        progress: &mut dyn Progress,
    ) -> Result<Method> {
        fine_tune(
            start,
            &mut Erm::new(&start.autodiff, start.training.ce_on),
            &Sampler::Shuffle,
            recorder,
            progress,
        )?;
        Ok(Method::Erm)
    }
}
