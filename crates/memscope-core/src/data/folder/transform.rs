//! The evaluation transform of a folder's images, and the pixel source that applies it to
//! the files in parallel.
//!
//! A transform is a [`Compose`] (written `resize=...,crop=...,interp=...,normalize=...`) or
//! one of the field's presets, which are compositions too:
//! `waterbirds(s)`: `Resize((r, r))` with r = int(s * 256 / 224), then `CenterCrop(s)`
//! (GroupDRO, DFR, the authors' code, for Waterbirds and, in DFR and the authors' code, CelebA).
//! `celeba(s)`: `CenterCrop(178)` then `Resize((s, s))` (GroupDRO and JTT for CelebA).
//! `timm-deit(s)`: timm's eval defaults at crop_pct 0.875, `Resize(floor(s / 0.875),
//! bicubic)` then `CenterCrop(s)` (DeiT's evaluation).
//! All end with `ToTensor` and ImageNet `Normalize`, in f32 as torch computes them.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use super::compose::{Compose, Normalize, ResizeTo, Step};
use super::decode::decode_file_top;
use super::resize::{Interpolation, PillowVersion, ResizeCrop, Rgb8};
use super::{Manifest, split_index};
use crate::data::Split;

/// CelebA's aligned images are 178x218; GroupDRO crops the square min(178, 218).
const CELEBA_CROP: usize = 178;
/// timm's `DEFAULT_CROP_PCT`, DeiT's evaluation crop.
const TIMM_CROP_PCT: f64 = 0.875;

/// An evaluation transform: a named preset of the field at an output side, or a
/// composition as written. Presets are recorded by name (experiments written before
/// compositions existed read as they did).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Transform {
    /// Resize to int(size * 256 / 224) square, centre crop `size`.
    Waterbirds { size: usize },
    /// Centre crop 178, resize to `size` square.
    Celeba { size: usize },
    /// Shorter side to floor(size / 0.875) bicubic, centre crop `size` (timm's DeiT eval).
    TimmDeit { size: usize },
    /// Steps as written.
    Compose(Compose),
}

impl Transform {
    /// The presets' names, as `--transform` takes them.
    pub const PRESETS: [&'static str; 3] = ["waterbirds", "celeba", "timm-deit"];

    pub fn waterbirds(size: usize) -> Transform {
        Transform::Waterbirds { size }
    }

    pub fn celeba(size: usize) -> Transform {
        Transform::Celeba { size }
    }

    pub fn timm_deit(size: usize) -> Transform {
        Transform::TimmDeit { size }
    }

    /// The preset named `name` (one of [`Self::PRESETS`]) at output side `size`.
    pub fn preset(name: &str, size: usize) -> Option<Transform> {
        match name {
            "waterbirds" => Some(Transform::Waterbirds { size }),
            "celeba" => Some(Transform::Celeba { size }),
            "timm-deit" => Some(Transform::TimmDeit { size }),
            _ => None,
        }
    }

    /// The same preset with output side `size` (Waterbirds' and timm's resizes scale with
    /// it); a composition has its sizes written in it.
    pub fn with_size(self, size: usize) -> Result<Transform> {
        match self {
            Transform::Waterbirds { .. } => Ok(Transform::Waterbirds { size }),
            Transform::Celeba { .. } => Ok(Transform::Celeba { size }),
            Transform::TimmDeit { .. } => Ok(Transform::TimmDeit { size }),
            Transform::Compose(c) => {
                bail!(
                    "--image-size sets a preset's size; the transform '{}' has its sizes written in it",
                    c.describe()
                )
            }
        }
    }

    /// The steps the transform takes.
    pub fn compose(&self) -> Compose {
        let square = |n| ResizeTo::Exact { height: n, width: n };
        let bilinear = Interpolation::Bilinear;
        let steps = match *self {
            // Python's int(size * 256 / 224) truncates; integer division does too.
            Transform::Waterbirds { size } => vec![
                Step::Resize { size: square(size * 256 / 224), interpolation: bilinear },
                Step::CenterCrop { height: size, width: size },
            ],
            Transform::Celeba { size } => vec![
                Step::CenterCrop { height: CELEBA_CROP, width: CELEBA_CROP },
                Step::Resize { size: square(size), interpolation: bilinear },
            ],
            // timm: scale_size = math.floor(img_size / crop_pct), then Resize(scale_size).
            Transform::TimmDeit { size } => vec![
                Step::Resize {
                    size: ResizeTo::Shorter((size as f64 / TIMM_CROP_PCT).floor() as usize),
                    interpolation: Interpolation::Bicubic,
                },
                Step::CenterCrop { height: size, width: size },
            ],
            Transform::Compose(ref c) => return c.clone(),
        };
        Compose { steps, normalize: Normalize::ImageNet }
    }

    /// `[height, width]` of the output images.
    pub fn output_shape(&self) -> [usize; 2] {
        let (width, height) = self.compose().output_size().unwrap_or((0, 0));
        [height, width]
    }

    /// In torchvision's words, e.g. "Resize((256, 256), interpolation=bilinear) ·
    /// CenterCrop(224) · Normalize(ImageNet)".
    pub fn describe(&self) -> String {
        self.compose().describe()
    }

    /// The transformed 8-bit image, before normalisation, as the current Pillow gives it.
    pub fn apply_u8(&self, img: &Rgb8) -> Rgb8 {
        self.apply_u8_as(img, PillowVersion::default())
    }

    /// The transformed 8-bit image as torchvision on Pillow `version` gives it, step by step.
    pub fn apply_u8_as(&self, img: &Rgb8, version: PillowVersion) -> Rgb8 {
        self.compose().apply_u8_as(img, version)
    }

    /// How an image of `width` x `height` is transformed: the rows it reads, the resize.
    pub fn plan(&self, width: usize, height: usize, version: PillowVersion) -> Plan {
        Plan::new(self.compose(), width, height, version)
    }

    /// [`Self::apply_u8_as`]'s bytes (HWC) written into `out`, computing only the pixels the
    /// crops keep; `scratch` holds the resize's intermediate pass.
    pub fn apply_into(&self, img: &Rgb8, version: PillowVersion, scratch: &mut Vec<u8>, out: &mut [u8]) {
        self.plan(img.width, img.height, version).run(img, scratch, out);
    }
}

impl FromStr for Transform {
    type Err = anyhow::Error;

    /// A preset (`waterbirds`, `celeba`, `timm-deit`, at 224 px or `NAME:SIZE`) or a
    /// composition (`resize=256,interp=bicubic,crop=224,normalize=imagenet`).
    fn from_str(text: &str) -> Result<Transform> {
        let text = text.trim();
        if text.contains('=') {
            return super::spec::parse(text).map(Transform::Compose);
        }
        let (name, size) = match text.split_once(':') {
            Some((name, size)) => {
                let size = size.trim().parse::<usize>().ok().filter(|s| (1..=8192).contains(s)).ok_or_else(
                    || anyhow!("transform '{text}': '{size}' is not a side in 1..=8192 pixels"),
                )?;
                (name.trim(), size)
            }
            None => (text, 224),
        };
        Transform::preset(name, size).ok_or_else(|| {
            anyhow!(
                "transform '{text}': not a preset ({}, optionally NAME:SIZE) nor a list of key=value ({})",
                Transform::PRESETS.join(", "),
                super::spec::KEYS.join(", ")
            )
        })
    }
}

/// A transform for one size of image: [`Transform::apply_u8_as`] computing only the pixels
/// the crops keep, from only the rows they depend on.
#[derive(Clone, Debug)]
pub struct Plan {
    compose: Compose,
    version: PillowVersion,
    /// The whole image's.
    height: usize,
    /// The resize and the image pixel its input starts at; none where the image is padded
    /// or resized twice.
    fast: Option<(ResizeCrop, usize, usize)>,
}

impl Plan {
    fn new(compose: Compose, width: usize, height: usize, version: PillowVersion) -> Plan {
        // An empty image (decoders refuse them) takes the whole path.
        let path = if width == 0 || height == 0 { None } else { compose.fast_path((width, height)) };
        let fast = path.map(|(before, size, interpolation, after)| {
            let resize =
                ResizeCrop::with_interpolation((before.2, before.3), size, after, interpolation, version);
            (resize, before.0, before.1)
        });
        Plan { compose, version, height, fast }
    }

    /// How many rows from the image's top the result depends on.
    pub fn rows(&self) -> usize {
        match &self.fast {
            Some((resize, _, top)) => (top + resize.rows_read()).min(self.height),
            None => self.height,
        }
    }

    /// Writes the transformed bytes into `out` from `img`, the image's first rows (at least
    /// [`Self::rows`]) at its whole width.
    pub fn run(&self, img: &Rgb8, scratch: &mut Vec<u8>, out: &mut [u8]) {
        let stride = img.width * 3;
        match &self.fast {
            Some((resize, left, top)) => {
                resize.run(&img.data[top * stride + left * 3..], stride, scratch, out)
            }
            None => out.copy_from_slice(&self.compose.apply_u8_as(img, self.version).data),
        }
    }
}

/// `ToTensor` then `normalize`: HWC u8 into CHW f32.
pub fn normalise(img: &Rgb8, normalize: &Normalize, out: &mut [f32]) {
    normalise_hwc(&img.data, &normalize.table(), out);
}

/// [`normalise`] of `[h, w, 3]` bytes into `[3, h, w]` (`out.len()` of them), through
/// `table`, the 256 values per channel ([`Normalize::table`]).
pub(crate) fn normalise_hwc(hwc: &[u8], table: &[[f32; 256]; 3], out: &mut [f32]) {
    let plane = hwc.len() / 3;
    let (r, rest) = out.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for (((px, r), g), b) in hwc.chunks_exact(3).zip(r).zip(g).zip(b) {
        *r = table[0][usize::from(px[0])];
        *g = table[1][usize::from(px[1])];
        *b = table[2][usize::from(px[2])];
    }
}

/// Decodes a folder's images on demand: files in, normalised `[n, 3, h, w]` pixels out.
#[derive(Debug)]
pub struct FolderPixels {
    root: PathBuf,
    /// The metadata file, and per split each image's line in it, for errors.
    source: PathBuf,
    lines: [Vec<usize>; 3],
    /// Per split, paths relative to `root`.
    paths: [Vec<PathBuf>; 3],
    transform: Transform,
    /// `ToTensor` and the transform's `Normalize`, per channel and byte value.
    table: [[f32; 256]; 3],
    /// `[height, width]` of every output image.
    shape: [usize; 2],
    pillow: PillowVersion,
    threads: usize,
}

impl FolderPixels {
    /// `threads` = 0 uses every available core.
    pub fn new(manifest: &Manifest, transform: Transform, threads: usize) -> FolderPixels {
        let paths = manifest.splits.clone().map(|s| s.into_iter().map(|e| e.path).collect());
        let lines = manifest.splits.clone().map(|s| s.into_iter().map(|e| e.line).collect());
        let threads =
            if threads == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { threads };
        FolderPixels {
            root: manifest.root.clone(),
            source: manifest.source.clone(),
            lines,
            paths,
            table: transform.compose().normalize.table(),
            shape: transform.output_shape(),
            transform,
            pillow: PillowVersion::default(),
            threads,
        }
    }

    /// Reproduces another Pillow version's resize (see [`PillowVersion`]).
    pub fn with_pillow(mut self, pillow: PillowVersion) -> FolderPixels {
        self.pillow = pillow;
        self
    }

    /// What the pixels depend on besides the files: the transform and the Pillow version
    /// reproduced (part of the pixel cache's key).
    pub fn settings(&self) -> (Transform, PillowVersion) {
        (self.transform.clone(), self.pillow)
    }

    /// `ToTensor` and `Normalize` per channel and byte value.
    pub(crate) fn table(&self) -> &[[f32; 256]; 3] {
        &self.table
    }

    /// The transform in words.
    pub fn describe(&self) -> String {
        self.transform.describe()
    }

    /// `[3, height, width]`
    pub fn image_shape(&self) -> [usize; 3] {
        [3, self.shape[0], self.shape[1]]
    }

    /// The normalised images of `indices` in `split`, `[n, 3, s, s]` flat.
    pub fn images(&self, split: Split, indices: &[usize]) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        self.images_into(split, indices, &mut out)?;
        Ok(out)
    }

    /// [`Self::images`] into `out`, reusing its memory.
    pub fn images_into(&self, split: Split, indices: &[usize], out: &mut Vec<f32>) -> Result<()> {
        let len = self.image_shape().iter().product();
        self.map(split, indices, len, out, |hwc, out: &mut [f32]| normalise_hwc(hwc, &self.table, out))
    }

    /// The transformed 8-bit images of `indices`, `[n, h, w, 3]` flat (HWC, before normalising).
    pub fn images_u8(&self, split: Split, indices: &[usize]) -> Result<Vec<u8>> {
        let [h, w] = self.shape;
        let mut out = Vec::new();
        self.map(split, indices, h * w * 3, &mut out, |hwc, out: &mut [u8]| out.copy_from_slice(hwc))?;
        Ok(out)
    }

    /// Decodes and transforms each image on worker threads, writing `len` values per image
    /// into `out` (its memory reused) from its transformed HWC bytes. Each worker reuses its
    /// buffers from image to image.
    fn map<T, F>(&self, split: Split, indices: &[usize], len: usize, out: &mut Vec<T>, write: F) -> Result<()>
    where
        T: Copy + Default + Send,
        F: Fn(&[u8], &mut [T]) + Sync,
    {
        let [h, w] = self.shape;
        let paths = &self.paths[split_index(split)];
        let lines = &self.lines[split_index(split)];
        if let Some(&bad) = indices.iter().find(|&&i| i >= paths.len()) {
            return Err(anyhow!("index {bad} out of range: the {split} split has {} images", paths.len()));
        }
        if out.capacity() < indices.len() * len {
            // Fresh zeroed memory (calloc: no pass over it) rather than growing the old one.
            *out = vec![T::default(); indices.len() * len];
        }
        out.resize(indices.len() * len, T::default());
        let queue = Mutex::new(out.chunks_exact_mut(len).zip(indices));
        let failed = AtomicBool::new(false);
        let first_error = Mutex::new(None);
        let workers = self.threads.clamp(1, indices.len().max(1));
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    let (mut file, mut img, mut pass) = (Vec::new(), Rgb8::default(), Vec::new());
                    let mut hwc = vec![0u8; h * w * 3];
                    while !failed.load(Ordering::Relaxed) {
                        let job = queue.lock().map(|mut q| q.next()).ok().flatten();
                        let Some((slot, &i)) = job else { break };
                        // The plan for the image's size is made once its header is read:
                        // it says how many rows to decode.
                        let mut plan = None;
                        let rows = |w, h| plan.insert(self.transform.plan(w, h, self.pillow)).rows();
                        let decoded = decode_file_top(&self.root.join(&paths[i]), &mut file, &mut img, rows);
                        match decoded
                            .and_then(|_| plan.ok_or_else(|| anyhow!("the image's size was never read")))
                        {
                            Ok(plan) => {
                                plan.run(&img, &mut pass, &mut hwc);
                                write(&hwc, slot);
                            }
                            Err(e) => {
                                failed.store(true, Ordering::Relaxed);
                                let e = e.context(format!(
                                    "{} line {}",
                                    self.source.display(),
                                    lines.get(i).copied().unwrap_or(0)
                                ));
                                if let Ok(mut first) = first_error.lock() {
                                    first.get_or_insert(e);
                                }
                            }
                        }
                    }
                });
            }
        });
        match first_error.into_inner().ok().flatten() {
            Some(e) => Err(anyhow!("{e:#} (--skip-bad-images leaves missing and corrupt images out)")),
            None => Ok(()),
        }
    }
}
