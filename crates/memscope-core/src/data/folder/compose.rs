//! An evaluation transform as torchvision composes it: geometric steps in the order written
//! (`Resize`, `CenterCrop`), then `ToTensor` and an optional `Normalize`.
//!
//! Each step is applied as torchvision applies it to a PIL image, to the byte: `Resize` is
//! Pillow's `Image.resize` (see `resize`), with torchvision's rule for one int (the shorter
//! side becomes N, the longer `int(N * long / short)`); `CenterCrop` pads with zeros when
//! the image is smaller and starts at `int(round((H - h) / 2))`.
//!
//! The seam: a new step is one variant of [`Step`] and its arms in `impl Step` (what it
//! does to an image, to a size, how it is written and read back).

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use super::resize::{Interpolation, PillowVersion, Rgb8, center_crop, crop_offset, resize_as};

pub(crate) const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub(crate) const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// `Resize`'s size argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResizeTo {
    /// `Resize(n)`: the shorter side becomes n, the longer keeps the aspect ratio.
    Shorter(usize),
    /// `Resize((height, width))`.
    Exact { height: usize, width: usize },
}

/// One geometric step of the composition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    Resize { size: ResizeTo, interpolation: Interpolation },
    CenterCrop { height: usize, width: usize },
}

/// Where a kept region of a step's input lies: (x, y, width, height).
pub(crate) type Region = (usize, usize, usize, usize);

impl Step {
    /// The command-line keys of the steps (in `--transform`'s `key=value` list).
    pub const KEYS: [&'static str; 2] = ["resize", "crop"];

    /// The step a `key=value` item of `--transform` writes (`interpolation` for a resize);
    /// `None` when `key` names no step.
    pub fn parse(key: &str, value: &str, interpolation: Interpolation) -> Option<Result<Step>> {
        let step = match key {
            "resize" => parse_side(key, value, true).map(|size| Step::Resize { size, interpolation }),
            "crop" => parse_side(key, value, false).map(|size| match size {
                ResizeTo::Shorter(n) => Step::CenterCrop { height: n, width: n },
                ResizeTo::Exact { height, width } => Step::CenterCrop { height, width },
            }),
            _ => return None,
        };
        Some(step)
    }

    /// The step in torchvision's words, e.g. `Resize(256, interpolation=bicubic)`.
    pub fn describe(&self) -> String {
        match *self {
            Step::Resize { size: ResizeTo::Shorter(n), interpolation } => {
                format!("Resize({n}, interpolation={})", interpolation.name())
            }
            Step::Resize { size: ResizeTo::Exact { height, width }, interpolation } => {
                format!("Resize(({height}, {width}), interpolation={})", interpolation.name())
            }
            Step::CenterCrop { height, width } if height == width => format!("CenterCrop({height})"),
            Step::CenterCrop { height, width } => format!("CenterCrop(({height}, {width}))"),
        }
    }

    /// The output `(width, height)` for an input of `(width, height)`.
    pub fn output_size(&self, (width, height): (usize, usize)) -> (usize, usize) {
        match *self {
            Step::Resize { size: ResizeTo::Exact { height, width }, .. } => (width, height),
            Step::Resize { size: ResizeTo::Shorter(n), .. } => shorter_side((width, height), n),
            Step::CenterCrop { height, width } => (width, height),
        }
    }

    /// The output size whatever the input's, when it does not depend on it.
    fn fixed_size(&self) -> Option<(usize, usize)> {
        match *self {
            Step::Resize { size: ResizeTo::Shorter(_), .. } => None,
            _ => Some(self.output_size((0, 0))),
        }
    }

    /// The step applied to `img` as torchvision applies it to a PIL image.
    pub fn apply(&self, img: &Rgb8, version: PillowVersion) -> Rgb8 {
        let (width, height) = self.output_size((img.width, img.height));
        match *self {
            // torchvision returns the image itself when its size is already the target.
            Step::Resize { .. } if (width, height) == (img.width, img.height) => img.clone(),
            Step::Resize { interpolation, .. } => resize_as(img, width, height, interpolation, version),
            Step::CenterCrop { .. } => center_crop(img, width, height),
        }
    }

    /// For the fast path: the region of `kept` (a region of an input of `size`) that this
    /// step keeps, when the step only selects pixels (a crop inside the input).
    fn narrow(&self, kept: Region) -> Option<Region> {
        match *self {
            Step::CenterCrop { height, width } if width <= kept.2 && height <= kept.3 => Some((
                kept.0 + crop_offset(kept.2, width),
                kept.1 + crop_offset(kept.3, height),
                width,
                height,
            )),
            _ => None,
        }
    }
}

/// `N` or `HxW` (`shorter` says whether a lone N is a shorter side or a square).
fn parse_side(key: &str, value: &str, shorter: bool) -> Result<ResizeTo> {
    let side = |text: &str| match text.trim().parse::<usize>() {
        Ok(n) if (1..=8192).contains(&n) => Ok(n),
        _ => bail!("{key}={value}: '{text}' is not a side in 1..=8192 pixels (valid: {key}=N or {key}=HxW)"),
    };
    match value.split_once(['x', 'X']) {
        Some((h, w)) => Ok(ResizeTo::Exact { height: side(h)?, width: side(w)? }),
        None if shorter => Ok(ResizeTo::Shorter(side(value)?)),
        None => {
            let n = side(value)?;
            Ok(ResizeTo::Exact { height: n, width: n })
        }
    }
}

/// torchvision's `Resize(n)` size for an image of `(width, height)`: the shorter side n,
/// the longer `int(n * long / short)` (Python's true division, truncated).
pub fn shorter_side((width, height): (usize, usize), n: usize) -> (usize, usize) {
    let (short, long) = if width <= height { (width, height) } else { (height, width) };
    if short == 0 {
        return (width, height);
    }
    let new_long = ((n * long) as f64 / short as f64) as usize;
    if width <= height { (n, new_long) } else { (new_long, n) }
}

/// `Normalize` after `ToTensor`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum Normalize {
    /// ImageNet's mean and std.
    #[default]
    ImageNet,
    /// `Normalize(mean, std)`, the values as written (torch makes them f32).
    MeanStd { mean: [f64; 3], std: [f64; 3] },
    /// `ToTensor` alone: values in [0, 1].
    None,
}

impl Normalize {
    /// The step in torchvision's words; `None` has none.
    pub fn describe(&self) -> Option<String> {
        match self {
            Normalize::ImageNet => Some("Normalize(ImageNet)".into()),
            Normalize::MeanStd { mean, std } => {
                let list = |v: &[f64; 3]| format!("[{}, {}, {}]", v[0], v[1], v[2]);
                Some(format!("Normalize(mean={}, std={})", list(mean), list(std)))
            }
            Normalize::None => None,
        }
    }

    /// Per channel, the 256 values `ToTensor` then this give, each computed as torch does
    /// (`v / 255` in f32, then `(x - mean) / std` with mean and std made f32).
    pub fn table(&self) -> [[f32; 256]; 3] {
        let (mean, std) = match self {
            Normalize::ImageNet => (IMAGENET_MEAN, IMAGENET_STD),
            Normalize::MeanStd { mean, std } => (mean.map(|m| m as f32), std.map(|s| s as f32)),
            Normalize::None => return [std::array::from_fn(|v| v as f32 / 255.0); 3],
        };
        std::array::from_fn(|c| std::array::from_fn(|v| (v as f32 / 255.0 - mean[c]) / std[c]))
    }
}

/// Geometric steps in order, then `ToTensor` and the normalisation. Always has a fixed
/// output size (checked when made and when read).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawCompose")]
pub struct Compose {
    pub steps: Vec<Step>,
    pub normalize: Normalize,
}

/// [`Compose`] as read, before its check.
#[derive(Deserialize)]
#[serde(rename = "Compose", deny_unknown_fields)]
struct RawCompose {
    steps: Vec<Step>,
    #[serde(default)]
    normalize: Normalize,
}

impl TryFrom<RawCompose> for Compose {
    type Error = anyhow::Error;

    fn try_from(raw: RawCompose) -> Result<Compose> {
        Compose::new(raw.steps, raw.normalize)
    }
}

impl Compose {
    /// The composition, refused when the images it makes could differ in size (every image
    /// of a batch must have the same) or a side or a std is not positive.
    pub fn new(steps: Vec<Step>, normalize: Normalize) -> Result<Compose> {
        let sides = |s: &Step| match *s {
            Step::Resize { size: ResizeTo::Shorter(n), .. } => vec![n],
            Step::Resize { size: ResizeTo::Exact { height, width }, .. }
            | Step::CenterCrop { height, width } => {
                vec![height, width]
            }
        };
        if let Some(step) = steps.iter().find(|s| sides(s).contains(&0)) {
            bail!("transform: {} has a side of 0 pixels", step.describe());
        }
        if let Normalize::MeanStd { std, .. } = normalize
            && std.iter().any(|&s| !(s.is_finite() && s > 0.0))
        {
            bail!("transform: std must be three numbers > 0, not {std:?}");
        }
        let compose = Compose { steps, normalize };
        if compose.output_size().is_none() {
            bail!(
                "transform '{}': images of different shapes would come out in different sizes; \
                 end it with crop=N (or HxW), or resize to HxW",
                compose.describe()
            );
        }
        Ok(compose)
    }

    /// `(width, height)` of every output image.
    pub fn output_size(&self) -> Option<(usize, usize)> {
        let last_fixed = self.steps.iter().rposition(|s| s.fixed_size().is_some())?;
        let start = self.steps[last_fixed].fixed_size()?;
        Some(self.steps[last_fixed + 1..].iter().fold(start, |size, s| s.output_size(size)))
    }

    /// In torchvision's words, e.g. `Resize((64, 64), interpolation=bilinear) · Normalize(ImageNet)`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.steps.iter().map(Step::describe).collect();
        parts.extend(self.normalize.describe());
        if parts.is_empty() {
            return "ToTensor".into();
        }
        parts.join(" · ")
    }

    /// Every step applied in turn to `img` (before `ToTensor`).
    pub fn apply_u8_as(&self, img: &Rgb8, version: PillowVersion) -> Rgb8 {
        self.steps.iter().fold(img.clone(), |img, step| step.apply(&img, version))
    }

    /// For an image of `(width, height)`: when the steps are crops inside the image, at most
    /// one resize, then crops inside its result, the region of the image the resize reads,
    /// the resize's input and output sizes and interpolation, and the region of its output
    /// kept. `None` when a crop pads or a second resize follows (the step-by-step path).
    pub(crate) fn fast_path(
        &self,
        (width, height): (usize, usize),
    ) -> Option<(Region, (usize, usize), Interpolation, Region)> {
        let mut before = (0, 0, width, height);
        let mut resize: Option<((usize, usize), Interpolation)> = None;
        let mut after = before;
        for step in &self.steps {
            match (step, resize) {
                (Step::Resize { interpolation, .. }, None) => {
                    let size = step.output_size((before.2, before.3));
                    resize = Some((size, *interpolation));
                    after = (0, 0, size.0, size.1);
                }
                (Step::Resize { .. }, Some(_)) => return None,
                (_, None) => before = step.narrow(before)?,
                (_, Some(_)) => after = step.narrow(after)?,
            }
        }
        match resize {
            Some((size, interpolation)) => Some((before, size, interpolation, after)),
            // Crops alone: an identity resize of what they keep.
            None => Some((before, (before.2, before.3), Interpolation::Bilinear, (0, 0, before.2, before.3))),
        }
    }
}
