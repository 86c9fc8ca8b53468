//! The field's evaluation transforms and the pixel source that applies them to a folder's
//! files in parallel.
//!
//! `waterbirds(s)`: `Resize((r, r))` with r = int(s * 256 / 224), then `CenterCrop(s)`
//! (GroupDRO, DFR, the authors' code, for Waterbirds and, in DFR and the authors' code, CelebA).
//! `celeba(s)`: `CenterCrop(178)` then `Resize((s, s))` (GroupDRO and JTT for CelebA).
//! Both end with `ToTensor` and ImageNet `Normalize`, in f32 as torch computes them.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, anyhow};
use serde::{Deserialize, Serialize};

use super::decode::decode_file_top;
use super::resize::{PillowVersion, ResizeCrop, Rgb8, center_crop, crop_offset, resize_bilinear_as};
use super::{Manifest, split_index};
use crate::data::Split;

pub(crate) const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub(crate) const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// CelebA's aligned images are 178x218; GroupDRO crops the square min(178, 218).
const CELEBA_CROP: usize = 178;

/// A named evaluation transform and its output side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Transform {
    /// Resize to int(size * 256 / 224) square, centre crop `size`.
    Waterbirds { size: usize },
    /// Centre crop 178, resize to `size` square.
    Celeba { size: usize },
}

impl Transform {
    pub fn waterbirds(size: usize) -> Transform {
        Transform::Waterbirds { size }
    }

    pub fn celeba(size: usize) -> Transform {
        Transform::Celeba { size }
    }

    /// The same transform with output side `size` (Waterbirds' resize scales with it).
    pub fn with_size(self, size: usize) -> Transform {
        match self {
            Transform::Waterbirds { .. } => Transform::Waterbirds { size },
            Transform::Celeba { .. } => Transform::Celeba { size },
        }
    }

    /// Side of the output image.
    pub fn size(self) -> usize {
        match self {
            Transform::Waterbirds { size } | Transform::Celeba { size } => size,
        }
    }

    /// How the transform is written in reports, e.g. "resize 256x256, centre crop 224".
    pub fn describe(self) -> String {
        match self {
            Transform::Waterbirds { size } => {
                let r = size * 256 / 224;
                format!("resize {r}x{r}, centre crop {size}, ImageNet normalise")
            }
            Transform::Celeba { size } => {
                format!("centre crop {CELEBA_CROP}, resize {size}x{size}, ImageNet normalise")
            }
        }
    }

    /// The transformed 8-bit image, before normalisation, as the current Pillow gives it.
    pub fn apply_u8(self, img: &Rgb8) -> Rgb8 {
        self.apply_u8_as(img, PillowVersion::default())
    }

    /// The transformed 8-bit image as torchvision on Pillow `version` gives it.
    pub fn apply_u8_as(self, img: &Rgb8, version: PillowVersion) -> Rgb8 {
        match self {
            Transform::Waterbirds { size } => {
                // Python's int(size * 256 / 224) truncates; integer division does too.
                let r = size * 256 / 224;
                center_crop(&resize_bilinear_as(img, r, r, version), size, size)
            }
            Transform::Celeba { size } => {
                resize_bilinear_as(&center_crop(img, CELEBA_CROP, CELEBA_CROP), size, size, version)
            }
        }
    }

    /// How an image of `width` x `height` is transformed: the rows it reads, the resize.
    pub fn plan(self, width: usize, height: usize, version: PillowVersion) -> Plan {
        let fast = match self {
            // An empty image (decoders refuse them) takes the whole path.
            _ if width == 0 || height == 0 => None,
            Transform::Waterbirds { size } => {
                let r = size * 256 / 224;
                let at = crop_offset(r, size);
                Some((ResizeCrop::new((width, height), (r, r), (at, at, size, size), version), 0, 0))
            }
            // Cropped first, inside the image (a smaller image is padded: the whole path).
            Transform::Celeba { size } if width >= CELEBA_CROP && height >= CELEBA_CROP => {
                let square = (CELEBA_CROP, CELEBA_CROP);
                let plan = ResizeCrop::new(square, (size, size), (0, 0, size, size), version);
                Some((plan, crop_offset(width, CELEBA_CROP), crop_offset(height, CELEBA_CROP)))
            }
            Transform::Celeba { .. } => None,
        };
        Plan { transform: self, version, height, fast }
    }

    /// [`Self::apply_u8_as`]'s bytes (HWC, `size * size * 3`) written into `out`, computing
    /// only the pixels the crop keeps; `scratch` holds the resize's intermediate pass.
    pub fn apply_into(self, img: &Rgb8, version: PillowVersion, scratch: &mut Vec<u8>, out: &mut [u8]) {
        self.plan(img.width, img.height, version).run(img, scratch, out);
    }
}

/// A transform for one size of image: [`Transform::apply_u8_as`] computing only the pixels
/// the crop keeps, from only the rows they depend on.
#[derive(Clone, Debug)]
pub struct Plan {
    transform: Transform,
    version: PillowVersion,
    /// The whole image's.
    height: usize,
    /// The resize and the image pixel its input starts at; none where the image is padded.
    fast: Option<(ResizeCrop, usize, usize)>,
}

impl Plan {
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
            None => out.copy_from_slice(&self.transform.apply_u8_as(img, self.version).data),
        }
    }
}

/// `ToTensor` then `Normalize(mean, std)`: HWC u8 into CHW f32, `(v / 255 - mean) / std`.
pub fn normalise(img: &Rgb8, out: &mut [f32]) {
    normalise_hwc(&img.data, out);
}

/// [`normalise`] of `[h, w, 3]` bytes into `[3, h, w]` (`out.len()` of them), through a
/// table of the 256 values per channel, each computed as torch computes it.
pub(crate) fn normalise_hwc(hwc: &[u8], out: &mut [f32]) {
    static TABLE: std::sync::LazyLock<[[f32; 256]; 3]> = std::sync::LazyLock::new(|| {
        std::array::from_fn(|c| {
            std::array::from_fn(|v| (v as f32 / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c])
        })
    });
    let table = &*TABLE;
    let plane = hwc.len() / 3;
    let (r, rest) = out.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for (((px, r), g), b) in hwc.chunks_exact(3).zip(r).zip(g).zip(b) {
        *r = table[0][usize::from(px[0])];
        *g = table[1][usize::from(px[1])];
        *b = table[2][usize::from(px[2])];
    }
}

/// Decodes a folder's images on demand: files in, normalised `[n, 3, s, s]` pixels out.
#[derive(Debug)]
pub struct FolderPixels {
    root: PathBuf,
    /// The metadata file, and per split each image's line in it, for errors.
    source: PathBuf,
    lines: [Vec<usize>; 3],
    /// Per split, paths relative to `root`.
    paths: [Vec<PathBuf>; 3],
    transform: Transform,
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
        (self.transform, self.pillow)
    }

    /// The transform in words.
    pub fn describe(&self) -> String {
        self.transform.describe()
    }

    /// `[3, size, size]`
    pub fn image_shape(&self) -> [usize; 3] {
        [3, self.transform.size(), self.transform.size()]
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
        self.map(split, indices, len, out, |hwc, out: &mut [f32]| normalise_hwc(hwc, out))
    }

    /// The transformed 8-bit images of `indices`, `[n, s, s, 3]` flat (HWC, before normalising).
    pub fn images_u8(&self, split: Split, indices: &[usize]) -> Result<Vec<u8>> {
        let s = self.transform.size();
        let mut out = Vec::new();
        self.map(split, indices, s * s * 3, &mut out, |hwc, out: &mut [u8]| out.copy_from_slice(hwc))?;
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
        let s = self.transform.size();
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
                    let mut hwc = vec![0u8; s * s * 3];
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
