//! Training augmentation: torchvision's `RandomResizedCrop` and `RandomHorizontalFlip` on
//! images already in memory, seeded. Applied to normalised pixels: bilinear interpolation
//! and flipping commute with the per-channel affine normalisation, so the result is the
//! augmentation of the raw image, normalised.

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::DatasetSpec;

/// The augmentation a training run applies to every batch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Augment {
    /// The images as they are (memscope's ERM default).
    #[default]
    None,
    /// A random crop of `scale` of the area and aspect `ratio`, resized back to the image's
    /// size (bilinear, half-pixel centres as `torch.nn.functional.interpolate`), then a
    /// horizontal flip with probability one half when `flip`. The released mitigation:
    /// scale 0.7..1, ratio 3/4..4/3, flip.
    CropFlip { scale: (f64, f64), ratio: (f64, f64), flip: bool },
}

impl Augment {
    /// The released mitigation's augmentation (`SpuriousCorrelationFinetuningPruning.py`).
    pub fn released() -> Augment {
        Augment::CropFlip { scale: (0.7, 1.0), ratio: (3.0 / 4.0, 4.0 / 3.0), flip: true }
    }

    /// The released augmentation as a policy per data set: the release's crop and flip for
    /// Waterbirds, CelebA and CSV folders; the crop alone for the spurious digits, where a
    /// horizontal flip does not keep the label (a mirrored digit is not that digit: a
    /// mirrored 2 or 5 reads as the other, across the 0-4 / 5-9 class boundary, while the
    /// background that carries the spurious feature is unchanged).
    pub fn released_for(dataset: &DatasetSpec) -> Augment {
        match dataset {
            DatasetSpec::SpuriousDigits(_) => {
                Augment::CropFlip { scale: (0.7, 1.0), ratio: (3.0 / 4.0, 4.0 / 3.0), flip: false }
            }
            DatasetSpec::Folder(_) => Augment::released(),
        }
    }

    /// Applies the augmentation to `n` images `[c, h, w]` back to back, each with its own
    /// random draw from `rng`.
    pub fn apply(&self, images: &mut [f32], shape: [usize; 3], rng: &mut impl Rng) {
        let Augment::CropFlip { scale, ratio, flip } = self else { return };
        let [c, h, w] = shape;
        let len = c * h * w;
        let mut out = vec![0.0f32; len];
        for image in images.chunks_exact_mut(len) {
            let crop = crop_box(h, w, *scale, *ratio, rng);
            resize_bilinear(image, [c, h, w], crop, &mut out);
            if *flip && rng.random_bool(0.5) {
                for plane in out.chunks_exact_mut(h * w) {
                    for row in plane.chunks_exact_mut(w) {
                        row.reverse();
                    }
                }
            }
            image.copy_from_slice(&out);
        }
    }
}

impl fmt::Display for Augment {
    /// `none`, `crop 0.7-1`, `crop 0.7-1 + flip`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Augment::None => f.write_str("none"),
            Augment::CropFlip { scale, flip, .. } => {
                write!(f, "crop {}-{}", scale.0, scale.1)?;
                if *flip { f.write_str(" + flip") } else { Ok(()) }
            }
        }
    }
}

/// A crop `(top, left, height, width)` as torchvision's `RandomResizedCrop.get_params`: ten
/// tries at a random area and log-uniform aspect ratio, else the centre crop at the nearest
/// allowed aspect ratio.
pub(crate) fn crop_box(
    height: usize,
    width: usize,
    scale: (f64, f64),
    ratio: (f64, f64),
    rng: &mut impl Rng,
) -> (usize, usize, usize, usize) {
    let area = (height * width) as f64;
    let (log_lo, log_hi) = (ratio.0.ln(), ratio.1.ln());
    for _ in 0..10 {
        let target = area * rng.random_range(scale.0..=scale.1);
        let aspect = rng.random_range(log_lo..=log_hi).exp();
        let w = (target * aspect).sqrt().round() as usize;
        let h = (target / aspect).sqrt().round() as usize;
        if 0 < w && w <= width && 0 < h && h <= height {
            let top = rng.random_range(0..=height - h);
            let left = rng.random_range(0..=width - w);
            return (top, left, h, w);
        }
    }
    let in_ratio = width as f64 / height as f64;
    let (w, h) = if in_ratio < ratio.0 {
        (width, ((width as f64 / ratio.0).round() as usize).min(height))
    } else if in_ratio > ratio.1 {
        (((height as f64 * ratio.1).round() as usize).min(width), height)
    } else {
        (width, height)
    };
    ((height - h) / 2, (width - w) / 2, h, w)
}

/// The crop `(top, left, ch, cw)` of `image` resized to the whole `[c, h, w]` by bilinear
/// interpolation with half-pixel centres (no antialiasing: the crop is never smaller than
/// the output along both axes by more than the scale allows, and torchvision's tensor path
/// upsamples the same way).
fn resize_bilinear(
    image: &[f32],
    [c, h, w]: [usize; 3],
    (top, left, ch, cw): (usize, usize, usize, usize),
    out: &mut [f32],
) {
    let source = |o: usize, out_len: usize, in_len: usize| {
        let x = ((o as f64 + 0.5) * in_len as f64 / out_len as f64 - 0.5).max(0.0);
        let i0 = (x.floor() as usize).min(in_len - 1);
        let i1 = (i0 + 1).min(in_len - 1);
        (i0, i1, (x - i0 as f64) as f32)
    };
    let rows: Vec<_> = (0..h).map(|y| source(y, h, ch)).collect();
    let cols: Vec<_> = (0..w).map(|x| source(x, w, cw)).collect();
    for channel in 0..c {
        let plane = &image[channel * h * w..(channel + 1) * h * w];
        let at = |y: usize, x: usize| plane[(top + y) * w + left + x];
        for (y, &(y0, y1, fy)) in rows.iter().enumerate() {
            for (x, &(x0, x1, fx)) in cols.iter().enumerate() {
                let upper = at(y0, x0) * (1.0 - fx) + at(y0, x1) * fx;
                let lower = at(y1, x0) * (1.0 - fx) + at(y1, x1) * fx;
                out[channel * h * w + y * w + x] = upper * (1.0 - fy) + lower * fy;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::rng::seeded;

    #[test]
    fn the_whole_image_resized_to_itself_is_unchanged() {
        let image: Vec<f32> = (0..2 * 5 * 7).map(|v| v as f32).collect();
        let mut out = vec![0.0; image.len()];
        resize_bilinear(&image, [2, 5, 7], (0, 0, 5, 7), &mut out);
        assert_eq!(out, image);
    }

    #[test]
    fn a_crop_upsamples_between_its_pixels() {
        // A 1x2 crop [0, 10] stretched to 4 columns: half-pixel centres give 0, 2.5, 7.5, 10.
        let image = vec![0.0, 10.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let mut out = vec![0.0; 8];
        resize_bilinear(&image, [1, 2, 4], (0, 0, 1, 2), &mut out);
        assert_eq!(&out[..4], &[0.0, 2.5, 7.5, 10.0]);
    }

    #[test]
    fn crops_stay_inside_and_within_the_scale() {
        let mut rng = seeded(1, 0);
        for _ in 0..500 {
            let (t, l, h, w) = crop_box(24, 24, (0.7, 1.0), (0.75, 4.0 / 3.0), &mut rng);
            assert!(t + h <= 24 && l + w <= 24);
            let area = (h * w) as f64 / 576.0;
            assert!((0.6..=1.0).contains(&area), "area {area}");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_images() {
        let image: Vec<f32> = (0..3 * 8 * 8 * 4).map(|v| (v % 13) as f32).collect();
        let (mut a, mut b) = (image.clone(), image.clone());
        Augment::released().apply(&mut a, [3, 8, 8], &mut seeded(5, 1));
        Augment::released().apply(&mut b, [3, 8, 8], &mut seeded(5, 1));
        assert_eq!(a, b);
        assert_ne!(a, image);
    }
}
