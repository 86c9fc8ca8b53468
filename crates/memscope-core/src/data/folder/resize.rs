//! Pillow's uint8 resize (`Image.resize(size, BILINEAR | BICUBIC | NEAREST)`, which
//! torchvision's `Resize` calls on PIL images), and torchvision's centre crop.
//!
//! Bilinear and bicubic are a port of Pillow's `ImagingResample` (libImaging/Resample.c):
//! antialiased coefficients computed in f64 (support scaled by the downscale factor),
//! normalised per output pixel, turned into fixed point with `PRECISION_BITS`; two separable
//! passes, each rounding `(ss + half) >> PRECISION_BITS` and clipping to 0..=255. Nearest is
//! Pillow's `ImagingScaleAffine`: input pixel `int(x0)` with x0 = scale / 2 accumulated by
//! `scale` per output pixel. The same operations in the same order give the same bytes as
//! Pillow, not merely close ones.
//!
//! The order of the passes depends on the Pillow version (1-level differences on a quarter
//! of the pixels otherwise): up to 12, horizontal (over only the rows the vertical pass
//! reads) then vertical; from 13, vertical first when the height shrinks by more than twice
//! as many pixels as the width.

/// An 8-bit RGB image, row-major, 3 bytes a pixel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rgb8 {
    pub width: usize,
    pub height: usize,
    /// `[height, width, 3]`
    pub data: Vec<u8>,
}

use super::kernels::{self, Kernel, PRECISION_BITS, Taps};

/// Which Pillow's resize to reproduce: they differ in the order of the two passes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PillowVersion {
    /// Pillow 7 to 12: always horizontal, then vertical.
    Pillow12,
    /// Pillow 13 and later: vertical first when `h - H > 2 (w - W)` and `h > H`.
    #[default]
    Pillow13,
}

impl PillowVersion {
    /// The behaviour of Pillow `major`.
    pub fn from_major(major: u32) -> PillowVersion {
        if major >= 13 { PillowVersion::Pillow13 } else { PillowVersion::Pillow12 }
    }
}

/// How `Resize` samples: PIL's filters of the same names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interpolation {
    /// Triangle filter, support 1 (torchvision's default).
    #[default]
    Bilinear,
    /// Keys' cubic with a = -0.5, support 2.
    Bicubic,
    /// The input pixel under each output pixel's centre, no antialiasing.
    Nearest,
}

impl Interpolation {
    pub const ALL: [Interpolation; 3] =
        [Interpolation::Bilinear, Interpolation::Bicubic, Interpolation::Nearest];

    /// The name torchvision's `InterpolationMode` and the command line use.
    pub fn name(self) -> &'static str {
        match self {
            Interpolation::Bilinear => "bilinear",
            Interpolation::Bicubic => "bicubic",
            Interpolation::Nearest => "nearest",
        }
    }
}

/// Per output pixel: the first input pixel, the number of inputs, and fixed-point weights
/// (`ksize` of them, unused ones 0).
struct Coeffs {
    ksize: usize,
    bounds: Vec<(usize, usize)>,
    weights: Vec<i32>,
}

fn bilinear(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

/// Pillow's `bicubic_filter`, a = -0.5.
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// The coefficients of `interpolation` for `in_size` -> `out_size`.
fn coefficients(in_size: usize, out_size: usize, interpolation: Interpolation) -> Coeffs {
    match interpolation {
        Interpolation::Bilinear => filter_coefficients(in_size, out_size, bilinear, 1.0),
        Interpolation::Bicubic => filter_coefficients(in_size, out_size, bicubic, 2.0),
        Interpolation::Nearest => nearest_coefficients(in_size, out_size),
    }
}

/// Pillow's `ImagingScaleAffine` along one axis as one weight of 1.0 per output pixel: the
/// input position starts at scale / 2 and grows by `scale` (accumulated in f64, as Pillow
/// does), truncated, and clamped to the image (Pillow leaves those pixels to its fill).
fn nearest_coefficients(in_size: usize, out_size: usize) -> Coeffs {
    let scale = (in_size as f32 - 0.0f32) as f64 / out_size as f64;
    let mut at = scale * 0.5;
    let mut bounds = Vec::with_capacity(out_size);
    for _ in 0..out_size {
        bounds.push(((at as usize).min(in_size.saturating_sub(1)), 1));
        at += scale;
    }
    Coeffs { ksize: 1, bounds, weights: vec![1 << PRECISION_BITS; out_size] }
}

/// Pillow's `precompute_coeffs` (`filter` of support `filter_support`) followed by
/// `normalize_coeffs_8bpc`.
fn filter_coefficients(
    in_size: usize,
    out_size: usize,
    filter: fn(f64) -> f64,
    filter_support: f64,
) -> Coeffs {
    // Pillow passes the box as floats: in1 - in0 is a float subtraction, then widened.
    let scale = (in_size as f32 - 0.0f32) as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter_support * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        // C's (int) truncates toward zero, as `as i64` does.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let n = xmax.saturating_sub(xmin);
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(n) {
            let w = filter(((x + xmin) as f64 - center + 0.5) * ss);
            *kx = w;
            ww += w;
        }
        let row = &mut weights[xx * ksize..xx * ksize + n];
        for (out, kx) in row.iter_mut().zip(&mut k[..n]) {
            if ww != 0.0 {
                *kx /= ww;
            }
            let scaled = *kx * (1u32 << PRECISION_BITS) as f64;
            *out = if *kx < 0.0 { (-0.5 + scaled) as i32 } else { (0.5 + scaled) as i32 };
        }
        bounds.push((xmin, n));
    }
    Coeffs { ksize, bounds, weights }
}

fn clip8(ss: i32) -> u8 {
    if ss >= (1 << PRECISION_BITS << 8) {
        255
    } else if ss <= 0 {
        0
    } else {
        (ss >> PRECISION_BITS) as u8
    }
}

/// Resizes `src` to `width` x `height` exactly as Pillow's `resize(..., BILINEAR)` on an
/// RGB image (the current Pillow). Resizing to the image's own size returns it unchanged.
pub fn resize_bilinear(src: &Rgb8, width: usize, height: usize) -> Rgb8 {
    resize_bilinear_as(src, width, height, PillowVersion::default())
}

/// [`resize_bilinear`] as a given Pillow version computes it.
pub fn resize_bilinear_as(src: &Rgb8, width: usize, height: usize, version: PillowVersion) -> Rgb8 {
    resize_as(src, width, height, Interpolation::Bilinear, version)
}

/// Resizes `src` to `width` x `height` exactly as Pillow `version`'s `resize(..., interpolation)`
/// on an RGB image. Resizing to the image's own size returns it unchanged.
pub fn resize_as(
    src: &Rgb8,
    width: usize,
    height: usize,
    interpolation: Interpolation,
    version: PillowVersion,
) -> Rgb8 {
    let need_h = width != src.width;
    let need_v = height != src.height;
    let horiz = coefficients(src.width, width, interpolation);
    let mut vert = coefficients(src.height, height, interpolation);
    let shrink_h = src.height as i64 - height as i64;
    let shrink_w = src.width as i64 - width as i64;
    if version == PillowVersion::Pillow13 && shrink_h > 0 && shrink_h > 2 * shrink_w {
        let mut img = if need_v { vertical(src, &vert) } else { src.clone() };
        if need_h {
            img = horizontal(&img, &horiz, 0, img.height);
        }
        return img;
    }
    let mut img = src.clone();
    if need_h {
        // Only the rows the vertical pass reads are resized horizontally.
        let first = vert.bounds.first().map_or(0, |b| b.0);
        let last = vert.bounds.last().map_or(0, |b| b.0 + b.1);
        for b in &mut vert.bounds {
            b.0 -= first;
        }
        img = horizontal(src, &horiz, first, last - first);
    }
    if need_v {
        img = vertical(&img, &vert);
    }
    img
}

fn horizontal(src: &Rgb8, c: &Coeffs, first_row: usize, rows: usize) -> Rgb8 {
    let out_w = c.bounds.len();
    let mut data = vec![0u8; rows * out_w * 3];
    let half = 1i32 << (PRECISION_BITS - 1);
    for y in 0..rows {
        let line = &src.data[(y + first_row) * src.width * 3..(y + first_row + 1) * src.width * 3];
        let out = &mut data[y * out_w * 3..(y + 1) * out_w * 3];
        for (xx, &(xmin, n)) in c.bounds.iter().enumerate() {
            let k = &c.weights[xx * c.ksize..xx * c.ksize + n];
            let mut ss = [half; 3];
            for (x, &w) in k.iter().enumerate() {
                let p = &line[(x + xmin) * 3..(x + xmin) * 3 + 3];
                for ch in 0..3 {
                    ss[ch] = ss[ch].wrapping_add(i32::from(p[ch]).wrapping_mul(w));
                }
            }
            for ch in 0..3 {
                out[xx * 3 + ch] = clip8(ss[ch]);
            }
        }
    }
    Rgb8 { width: out_w, height: rows, data }
}

fn vertical(src: &Rgb8, c: &Coeffs) -> Rgb8 {
    let out_h = c.bounds.len();
    let row_len = src.width * 3;
    let mut data = vec![0u8; out_h * row_len];
    let half = 1i32 << (PRECISION_BITS - 1);
    let mut ss = vec![0i32; row_len];
    for (yy, &(ymin, n)) in c.bounds.iter().enumerate() {
        let k = &c.weights[yy * c.ksize..yy * c.ksize + n];
        ss.fill(half);
        for (y, &w) in k.iter().enumerate() {
            let line = &src.data[(y + ymin) * row_len..(y + ymin + 1) * row_len];
            for (s, &p) in ss.iter_mut().zip(line) {
                *s = s.wrapping_add(i32::from(p).wrapping_mul(w));
            }
        }
        for (out, &s) in data[yy * row_len..(yy + 1) * row_len].iter_mut().zip(&ss) {
            *out = clip8(s);
        }
    }
    Rgb8 { width: src.width, height: out_h, data }
}

/// Pillow's resize of an input to `size`, then a crop of the result: computes only the kept
/// pixels, each by the same operations as [`resize_bilinear_as`] (rows and columns outside
/// the crop do not enter a kept pixel's sums), so the bytes equal resize-then-crop's.
#[derive(Clone, Debug)]
pub struct ResizeCrop {
    /// Kept output columns, in input pixels; the same counted from the first column read.
    horiz: Taps,
    horiz_local: Taps,
    /// Kept output rows, in input pixels.
    vert: Taps,
    vertical_first: bool,
    kernel: Kernel,
}

impl ResizeCrop {
    /// Resizes a `input.0` x `input.1` image to `size` bilinearly, keeping `keep` = (x, y,
    /// width, height) of the result (which must lie inside it).
    pub fn new(
        input: (usize, usize),
        size: (usize, usize),
        keep: (usize, usize, usize, usize),
        version: PillowVersion,
    ) -> ResizeCrop {
        ResizeCrop::with_interpolation(input, size, keep, Interpolation::Bilinear, version)
    }

    /// [`Self::new`] with `interpolation`'s coefficients.
    pub fn with_interpolation(
        input: (usize, usize),
        size: (usize, usize),
        keep: (usize, usize, usize, usize),
        interpolation: Interpolation,
        version: PillowVersion,
    ) -> ResizeCrop {
        let (x, y, w, h) = keep;
        assert!(x + w <= size.0 && y + h <= size.1, "crop outside the resized image");
        let horiz = kept_taps(input.0, size.0, x..x + w, interpolation);
        let vert = kept_taps(input.1, size.1, y..y + h, interpolation);
        let shrink_h = input.1 as i64 - size.1 as i64;
        let shrink_w = input.0 as i64 - size.0 as i64;
        let vertical_first = version == PillowVersion::Pillow13 && shrink_h > 0 && shrink_h > 2 * shrink_w;
        let horiz_local = horiz.shifted(horiz.span().0);
        ResizeCrop { horiz, horiz_local, vert, vertical_first, kernel: Kernel::best() }
    }

    /// Computes with `kernel` (which the CPU must run) instead of the fastest one.
    pub fn with_kernel(mut self, kernel: Kernel) -> ResizeCrop {
        self.kernel = kernel;
        self
    }

    /// Rows of the input the result depends on, from its top.
    pub(crate) fn rows_read(&self) -> usize {
        self.vert.span().1
    }

    /// Bytes of the result: width x height x 3.
    pub(crate) fn output_len(&self) -> usize {
        self.horiz.len() * self.vert.len() * 3
    }

    /// Runs on `src`, whose input pixel (x, y) starts at byte `y * stride + 3x`; `out` gets
    /// the kept pixels, HWC. `scratch` holds the intermediate pass (reused between calls).
    pub fn run(&self, src: &[u8], stride: usize, scratch: &mut Vec<u8>, out: &mut [u8]) {
        assert_eq!(out.len(), self.output_len(), "resize: output length");
        let out_row = self.horiz.len() * 3;
        if self.vertical_first {
            let (c0, c1) = self.horiz.span();
            let row = (c1 - c0) * 3;
            scratch.resize(self.vert.len() * row + 16, 0);
            for (yy, line) in scratch.chunks_exact_mut(row).take(self.vert.len()).enumerate() {
                let (first, weights) = self.vert.pixel(yy);
                kernels::vertical(self.kernel, &src[c0 * 3..], stride, first, weights, line);
            }
            for (yy, line) in out.chunks_exact_mut(out_row).enumerate() {
                kernels::horizontal(self.kernel, &scratch[yy * row..], &self.horiz_local, line);
            }
        } else {
            let (r0, r1) = self.vert.span();
            scratch.resize((r1 - r0) * out_row, 0);
            for (r, line) in scratch.chunks_exact_mut(out_row).enumerate() {
                kernels::horizontal(self.kernel, &src[(r0 + r) * stride..], &self.horiz, line);
            }
            for (yy, line) in out.chunks_exact_mut(out_row).enumerate() {
                let (first, weights) = self.vert.pixel(yy);
                kernels::vertical(self.kernel, scratch, out_row, first - r0, weights, line);
            }
        }
    }
}

/// Pillow's coefficients for `in_size` -> `out_size`, for the output pixels `kept`; the
/// identity (one weight of 1.0) where the size does not change, as Pillow skips that pass.
fn kept_taps(
    in_size: usize,
    out_size: usize,
    kept: std::ops::Range<usize>,
    interpolation: Interpolation,
) -> Taps {
    if in_size == out_size {
        let bounds = kept.map(|x| (x, 1)).collect::<Vec<_>>();
        let weights = vec![1 << PRECISION_BITS; bounds.len()];
        return Taps::new(1, bounds, &weights);
    }
    let c = coefficients(in_size, out_size, interpolation);
    let weights = &c.weights[kept.start * c.ksize..kept.end * c.ksize];
    Taps::new(c.ksize, c.bounds[kept].to_vec(), weights)
}

/// torchvision's `CenterCrop(size)` on a PIL image: offsets `round((H - h) / 2)` with
/// Python's round-half-to-even; an image smaller than the crop is padded with zeros
/// (torchvision pads, Pillow's `crop` fills outside pixels with 0).
pub fn center_crop(src: &Rgb8, width: usize, height: usize) -> Rgb8 {
    let offset = |size: usize, crop: usize| -> isize {
        if crop > size {
            // torchvision pads (crop - size) // 2 before, then crops at 0.
            -(((crop - size) / 2) as isize)
        } else {
            crop_offset(size, crop) as isize
        }
    };
    let top = offset(src.height, height);
    let left = offset(src.width, width);
    let mut data = vec![0u8; width * height * 3];
    for y in 0..height {
        let sy = y as isize + top;
        if sy < 0 || sy >= src.height as isize {
            continue;
        }
        for x in 0..width {
            let sx = x as isize + left;
            if sx < 0 || sx >= src.width as isize {
                continue;
            }
            let from = (sy as usize * src.width + sx as usize) * 3;
            data[(y * width + x) * 3..(y * width + x) * 3 + 3].copy_from_slice(&src.data[from..from + 3]);
        }
    }
    Rgb8 { width, height, data }
}

/// Where torchvision's centre crop of `crop` (at most `size`) starts: `round((size - crop) / 2)`
/// with Python's round-half-to-even.
pub fn crop_offset(size: usize, crop: usize) -> usize {
    round_half_even(size.saturating_sub(crop) as f64 / 2.0) as usize
}

fn round_half_even(v: f64) -> f64 {
    let r = v.round();
    if (v - v.trunc()).abs() == 0.5 && r % 2.0 != 0.0 { r - v.signum() } else { r }
}
