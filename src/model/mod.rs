//! Models: their architecture as written in `experiment.ron`, construction, and the list
//! of layers whose weights hold neurons.

pub mod layers;
pub mod resnet;

use anyhow::{Result, ensure};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

pub use layers::{LayerInfo, LayerKind, ModulePath, layer_infos};
pub use resnet::{BOUNDARIES, SmallResNet, SmallResNetConfig};

/// The network every stage works on. One architecture today; ResNet-18/50 with
/// torchvision names join as further `ModelConfig` variants.
pub type Network = SmallResNet;

/// A model architecture, exactly as recorded in an experiment file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ModelConfig {
    SmallResNet(SmallResNetConfig),
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig::SmallResNet(SmallResNetConfig::default())
    }
}

impl ModelConfig {
    /// A freshly initialised network on `device` (weights drawn from the device's RNG).
    pub fn init(&self, device: &Device) -> Result<Network> {
        match self {
            ModelConfig::SmallResNet(config) => {
                config.validate()?;
                Ok(config.init(device))
            }
        }
    }

    /// Checks that the model can take images of `shape` and produce `classes` logits.
    pub fn check_fits(&self, shape: [usize; 3], classes: usize) -> Result<()> {
        match self {
            ModelConfig::SmallResNet(config) => {
                ensure!(
                    config.in_channels == shape[0],
                    "model expects {} input channels but the data set has {}",
                    config.in_channels,
                    shape[0]
                );
                ensure!(
                    config.num_classes == classes,
                    "model has {} outputs but the data set has {} classes",
                    config.num_classes,
                    classes
                );
                Ok(())
            }
        }
    }
}
