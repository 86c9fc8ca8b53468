//! "Spurious digits": the bundled demo data set.
//!
//! Handwritten digits (UCI Optical Recognition of Handwritten Digits, CC BY 4.0) drawn on a
//! "land" or "water" background. The label is y = 0 for digits 0-4 and 1 for 5-9; the
//! background is the spurious attribute a; group g = 2y + a as in Waterbirds. The training
//! split has Waterbirds-like proportions, so the background predicts the label for most
//! training examples; val and test have every group equally large.

use std::io::Read;
use std::sync::Arc;

use anyhow::{Context, Result, bail, ensure};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::memory::MemoryPixels;
use super::{GroupedDataset, SplitData};
use crate::util::rng::seeded;

/// The digits file, compiled in so the demo needs no files at run time.
const DIGITS_CSV_GZ: &[u8] = include_bytes!("../../../../assets/digits.csv.gz");
const SOURCE: &str = "assets/digits.csv.gz";
const DIGIT_SIDE: usize = 8;
const SCALE: usize = 2;
/// Bounds that keep a plan from asking for more than the source digits or memory hold.
const MAX_EVAL_PER_GROUP: usize = 200;
const MAX_TRAIN_GROUP: usize = 1_000_000;
const MAX_PIXEL_BYTES: usize = 4 << 30;
/// The grey both backgrounds fade to as `background_contrast` goes to 0.
const NEUTRAL: [f32; 3] = [0.36, 0.38, 0.36];

/// How the spurious-digits data set is generated. Every field has a default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DigitsSpec {
    pub seed: u64,
    /// Training examples per group G0..G3 (about 73 / 4 / 1 / 22 %, as in Waterbirds).
    pub train_groups: [usize; 4],
    /// Examples per group in each of val and test.
    pub eval_per_group: usize,
    /// Side of the square image in pixels (the digit is drawn 16x16 inside it).
    pub image_size: usize,
    /// Standard deviation of the pixel noise added to every image.
    pub pixel_noise: f32,
    /// How far the backgrounds' colours and textures stand out from a neutral grey
    /// (0: both backgrounds are the same grey; 1: full olive land and blue water).
    pub background_contrast: f32,
}

impl Default for DigitsSpec {
    fn default() -> Self {
        DigitsSpec {
            seed: 2024,
            train_groups: [1460, 80, 20, 440],
            eval_per_group: 100,
            image_size: 24,
            pixel_noise: 0.05,
            background_contrast: 0.2,
        }
    }
}

pub(crate) const CLASS_NAMES: [&str; 2] = ["digit 0-4", "digit 5-9"];
pub(crate) const GROUP_NAMES: [&str; 4] = ["0-4 on land", "0-4 on water", "5-9 on land", "5-9 on water"];

/// One source digit: 64 intensities 0..=16 and its digit 0..=9.
struct SourceDigit {
    pixels: [u8; 64],
    digit: u8,
}

fn source_digits() -> Result<Vec<SourceDigit>> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(DIGITS_CSV_GZ)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot decompress {SOURCE}"))?;
    text.lines()
        .enumerate()
        .map(|(row, line)| {
            let values: Vec<u8> = line
                .split(',')
                .map(|v| v.trim().parse::<u8>())
                .collect::<Result<_, _>>()
                .with_context(|| format!("{SOURCE} row {row}: not a list of integers"))?;
            ensure!(values.len() == 65, "{SOURCE} row {row}: expected 65 values, found {}", values.len());
            let mut pixels = [0u8; 64];
            pixels.copy_from_slice(&values[..64]);
            Ok(SourceDigit { pixels, digit: values[64] })
        })
        .collect()
}

pub(crate) fn validate(spec: &DigitsSpec) -> Result<()> {
    let min_side = DIGIT_SIDE * SCALE + 2;
    ensure!(
        spec.image_size >= min_side && spec.image_size <= 256,
        "spurious digits: image_size {} is out of range (valid: {min_side}..=256)",
        spec.image_size
    );
    ensure!(
        spec.pixel_noise.is_finite() && spec.pixel_noise >= 0.0,
        "spurious digits: pixel_noise {} must be a finite number >= 0",
        spec.pixel_noise
    );
    ensure!(
        spec.background_contrast.is_finite() && (0.0..=1.0).contains(&spec.background_contrast),
        "spurious digits: background_contrast {} must be in [0, 1]",
        spec.background_contrast
    );
    // About 900 source digits per class: each needs 2 x eval_per_group val and test digits.
    ensure!(
        (1..=MAX_EVAL_PER_GROUP).contains(&spec.eval_per_group),
        "spurious digits: eval_per_group {} is out of range (valid: 1..={MAX_EVAL_PER_GROUP})",
        spec.eval_per_group
    );
    for (g, &n) in spec.train_groups.iter().enumerate() {
        ensure!(
            (1..=MAX_TRAIN_GROUP).contains(&n),
            "spurious digits: train_groups[{g}] = {n} is out of range (valid: 1..={MAX_TRAIN_GROUP})"
        );
    }
    // The pixels are generated in memory: refuse what would not fit before allocating.
    let examples = spec.train_groups.iter().sum::<usize>() + 8 * spec.eval_per_group;
    let bytes = examples as u128 * 3 * (spec.image_size as u128).pow(2) * 4;
    ensure!(
        bytes <= MAX_PIXEL_BYTES as u128,
        "spurious digits: {examples} images of {0}x{0} would take {1} MB (at most {2} MB): use fewer or smaller images",
        spec.image_size,
        bytes >> 20,
        MAX_PIXEL_BYTES >> 20
    );
    Ok(())
}

/// Generates the data set. Deterministic in `spec`; source digits are disjoint across
/// splits, and each minority training example is a digit used nowhere else.
pub fn generate(spec: &DigitsSpec) -> Result<GroupedDataset> {
    validate(spec)?;
    let digits = source_digits()?;
    let mut order_rng = seeded(spec.seed, 0);
    let mut draw_rng = seeded(spec.seed, 1);

    let mut train = SplitData::default();
    let mut val = SplitData::default();
    let mut test = SplitData::default();
    // Pixels of train, val and test, `[n, 3, side, side]` each.
    let mut pixels: [Vec<f32>; 3] = Default::default();
    for (class, class_name) in CLASS_NAMES.iter().enumerate() {
        let mut rows: Vec<usize> =
            (0..digits.len()).filter(|&r| usize::from(digits[r].digit >= 5) == class).collect();
        rows.shuffle(&mut order_rng);

        let per_eval = 2 * spec.eval_per_group;
        let (majority_bg, minority_bg) = if class == 0 { (0, 1) } else { (1, 0) };
        let majority = spec.train_groups[2 * class + majority_bg];
        let minority = spec.train_groups[2 * class + minority_bg];
        let available = rows.len().saturating_sub(2 * per_eval);
        if available < minority + 1 {
            bail!(
                "spurious digits: class {} has {} source digits, too few for {} val/test per group \
                 plus {minority} distinct minority training digits",
                class_name,
                rows.len(),
                spec.eval_per_group
            );
        }
        let (test_rows, rest) = rows.split_at(per_eval);
        let (val_rows, train_rows) = rest.split_at(per_eval);

        let [train_pixels, val_pixels, test_pixels] = &mut pixels;
        for (split, images, eval_rows) in
            [(&mut test, &mut *test_pixels, test_rows), (&mut val, &mut *val_pixels, val_rows)]
        {
            for (i, &row) in eval_rows.iter().enumerate() {
                let background = usize::from(i >= spec.eval_per_group);
                push((split, &mut *images), &digits, row, class, background, spec, &mut draw_rng);
            }
        }
        // Minority examples are distinct digits; majority renditions cycle through the rest
        // (with fresh offsets and textures when a digit repeats).
        let (minority_rows, majority_rows) = train_rows.split_at(minority);
        for &row in minority_rows {
            push((&mut train, &mut *train_pixels), &digits, row, class, minority_bg, spec, &mut draw_rng);
        }
        for i in 0..majority {
            let row = majority_rows[i % majority_rows.len()];
            push((&mut train, &mut *train_pixels), &digits, row, class, majority_bg, spec, &mut draw_rng);
        }
    }

    let side = spec.image_size;
    let shape = [3, side, side];
    GroupedDataset::new(
        "spurious-digits".into(),
        shape,
        CLASS_NAMES.iter().map(|s| s.to_string()).collect(),
        GROUP_NAMES.iter().map(|s| s.to_string()).collect(),
        [train, val, test],
        Arc::new(MemoryPixels::new(shape, pixels)?),
    )
}

fn push(
    (split, images): (&mut SplitData, &mut Vec<f32>),
    digits: &[SourceDigit],
    row: usize,
    class: usize,
    background: usize,
    spec: &DigitsSpec,
    rng: &mut ChaCha8Rng,
) {
    images.extend(render(&digits[row].pixels, background == 1, spec, rng));
    split.labels.push(class);
    split.groups.push(2 * class + background);
    split.sources.push(row);
}

/// Draws one digit on a textured background. Returns `[3, side, side]` values in [0, 1].
fn render(pixels: &[u8; 64], water: bool, spec: &DigitsSpec, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let side = spec.image_size;
    let plane = side * side;
    let mut image = vec![0f32; 3 * plane];

    // Land: olive-brown soil with coarse speckles. Water: blue with horizontal waves.
    let phase: f32 = rng.random_range(0.0..std::f32::consts::TAU);
    let tint: f32 = rng.random_range(-0.06..0.06);
    let cells = side.div_ceil(3);
    let speckle: Vec<f32> = (0..cells * cells).map(|_| rng.random_range(-0.12..0.12)).collect();
    for y in 0..side {
        for x in 0..side {
            let (fy, fx) = (y as f32, x as f32);
            let rgb = if water {
                let wave = 0.09 * (0.9 * fy + phase + 0.5 * (0.4 * fx).sin()).sin();
                [0.16 + tint + wave * 0.5, 0.32 + wave, 0.62 + tint + wave]
            } else {
                let s = speckle[(y / 3) * cells + x / 3];
                [0.48 + tint + s, 0.40 + s * 0.8, 0.20 + tint * 0.5 + s * 0.5]
            };
            for c in 0..3 {
                image[c * plane + y * side + x] =
                    NEUTRAL[c] + spec.background_contrast * (rgb[c] - NEUTRAL[c]);
            }
        }
    }

    // The digit, upscaled 2x, at a random offset, in a light ink.
    let span = DIGIT_SIDE * SCALE;
    let max_offset = side - span;
    let oy = rng.random_range(1..max_offset);
    let ox = rng.random_range(1..max_offset);
    let ink: [f32; 3] = std::array::from_fn(|_| 0.92 + rng.random_range(-0.06..0.06));
    for dy in 0..span {
        for dx in 0..span {
            let alpha = f32::from(pixels[(dy / SCALE) * DIGIT_SIDE + dx / SCALE]) / 16.0;
            let at = (oy + dy) * side + ox + dx;
            for c in 0..3 {
                let v = &mut image[c * plane + at];
                *v = *v * (1.0 - alpha) + ink[c] * alpha;
            }
        }
    }

    if spec.pixel_noise > 0.0 {
        // Box-Muller keeps this independent of any distribution crate's algorithm.
        for v in image.iter_mut() {
            let u1: f32 = rng.random_range(f32::EPSILON..1.0);
            let u2: f32 = rng.random::<f32>();
            let n = (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos();
            *v = (*v + spec.pixel_noise * n).clamp(0.0, 1.0);
        }
    }
    image
}
