//! Writing a grouped data set as a Waterbirds-style folder (JPEG images + `metadata.csv`), so
//! that PyTorch code written for Waterbirds trains on it unchanged and the folder reader can
//! be tested on real files.
//!
//! Groups must be Waterbirds' `2y + place` (4 groups, 2 classes). Images are taken as RGB in
//! 0..=1, rounded to 8 bits, resized with Pillow's bilinear resize to `size` x `size` and
//! encoded as baseline JPEG, quality 95, 4:2:0.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};

use super::resize::{Rgb8, resize_bilinear};
use crate::data::{GroupedDataset, Split};
use crate::util::fsx::Scratch;

/// Images are converted and written this many at a time, so memory stays bounded.
const BATCH: usize = 256;

/// What an export wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSummary {
    pub metadata: PathBuf,
    /// Images per split: train, val, test.
    pub images: [usize; 3],
}

/// `pixels(split, indices)`: those images as `[n, 3, h, w]` RGB in 0..=1 (e.g.
/// `|s, i| dataset.images(s, i)` for the spurious digits).
pub(crate) type PixelsFn<'a> = &'a dyn Fn(Split, &[usize]) -> Result<Vec<f32>>;

/// Labels and groups of one split.
pub struct SplitLabels<'a> {
    pub labels: &'a [usize],
    pub groups: &'a [usize],
}

/// Writes `out/metadata.csv` and one folder of JPEGs per class. `pixels(split, indices)`
/// returns those images as `[n, 3, h, w]` RGB in 0..=1 (`shape` = `[3, h, w]`).
pub fn write_waterbirds(
    out: &Path,
    size: usize,
    class_names: &[String],
    shape: [usize; 3],
    splits: [SplitLabels<'_>; 3],
    pixels: PixelsFn<'_>,
) -> Result<ExportSummary> {
    ensure!(
        class_names.len() == 2,
        "a Waterbirds folder has 2 classes, this data set has {}",
        class_names.len()
    );
    ensure!(shape[0] == 3, "a Waterbirds folder holds RGB images, these have {} channels", shape[0]);
    ensure!(size > 0, "the image size must be positive");
    let folders: Vec<String> = class_names.iter().enumerate().map(|(i, n)| folder_name(i, n)).collect();
    for f in &folders {
        let dir = out.join(f);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut csv = String::from("img_id,img_filename,y,split,place,place_filename\n");
    let mut counts = [0; 3];
    let mut id = 0usize;
    for (k, (split, labels)) in Split::ALL.into_iter().zip(&splits).enumerate() {
        let n = labels.labels.len();
        ensure!(labels.groups.len() == n, "{split}: {} labels but {} groups", n, labels.groups.len());
        let indices: Vec<usize> = (0..n).collect();
        for batch in indices.chunks(BATCH) {
            let images = pixels(split, batch)?;
            let len = shape.iter().product::<usize>();
            ensure!(
                images.len() == batch.len() * len,
                "{split}: pixel source returned {} values",
                images.len()
            );
            for (&i, chw) in batch.iter().zip(images.chunks_exact(len)) {
                let (y, g) = (labels.labels[i], labels.groups[i]);
                if y > 1 || g > 3 || g / 2 != y {
                    bail!("{split} example {i}: group {g} with label {y} is not Waterbirds' 2y + place");
                }
                id += 1;
                let rel = format!("{}/{}_{:06}.jpg", folders[y], split, id);
                let rgb = resize_bilinear(&to_rgb8(chw, shape), size, size);
                let path = out.join(&rel);
                std::fs::write(&path, encode_jpeg(&rgb)?)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                writeln!(csv, "{id},{rel},{y},{k},{},none", g % 2)?;
            }
        }
        counts[k] = n;
    }
    let metadata = out.join("metadata.csv");
    std::fs::write(&metadata, csv).with_context(|| format!("cannot write {}", metadata.display()))?;
    Ok(ExportSummary { metadata, images: counts })
}

/// `000.name_with_underscores`, like CUB's species folders.
fn folder_name(i: usize, name: &str) -> String {
    let clean: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    format!("{i:03}.{clean}")
}

/// CHW floats in 0..=1 to 8-bit HWC, rounding to nearest.
fn to_rgb8(chw: &[f32], [c, h, w]: [usize; 3]) -> Rgb8 {
    let plane = h * w;
    let mut data = vec![0u8; plane * c];
    for (p, px) in data.chunks_exact_mut(c).enumerate() {
        for (ch, v) in px.iter_mut().enumerate() {
            *v = (chw[ch * plane + p].clamp(0.0, 1.0) * 255.0).round() as u8;
        }
    }
    Rgb8 { width: w, height: h, data }
}

/// Baseline JPEG, quality 95, 4:2:0 (libjpeg's defaults at that quality).
pub(crate) fn encode_jpeg(img: &Rgb8) -> Result<Vec<u8>> {
    std::panic::catch_unwind(|| -> std::io::Result<Vec<u8>> {
        let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
        c.set_size(img.width, img.height);
        c.set_fastest_defaults();
        c.set_quality(95.0);
        let mut started = c.start_compress(Vec::new())?;
        started.write_scanlines(&img.data)?;
        started.finish()
    })
    .map_err(|_| anyhow::anyhow!("JPEG encoder failed"))?
    .context("JPEG encoder failed")
}

/// Writes `dataset` (RGB pixels in 0..=1, groups `2y + place`: the spurious digits) as a
/// Waterbirds folder at `out`, all three splits. It is built in a hidden staging folder beside
/// `out` and moved into place whole, so `out` never holds a part of an export. An existing
/// `out` that is not empty is replaced only with `force`, and never when it holds an
/// experiment; a file or a symbolic link at `out` is refused.
pub fn export_waterbirds(
    dataset: &GroupedDataset,
    out: &Path,
    size: usize,
    force: bool,
) -> Result<ExportSummary> {
    let existing = match std::fs::symlink_metadata(out) {
        Ok(meta) if meta.file_type().is_symlink() => {
            bail!("--out {} is a symbolic link; pass the folder it points to", out.display())
        }
        Ok(meta) if !meta.is_dir() => bail!("--out {} exists and is not a folder", out.display()),
        Ok(_) => {
            let mut entries =
                std::fs::read_dir(out).with_context(|| format!("cannot read {}", out.display()))?;
            entries.next().is_some()
        }
        Err(_) => false,
    };
    if existing && out.join("experiment.ron").exists() {
        bail!("--out {} holds an experiment; export to another folder", out.display());
    }
    if existing && !force {
        bail!("--out {} exists and is not empty; pass --force to replace it", out.display());
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let staging = Scratch::create(&parent, true)
        .with_context(|| format!("cannot create a staging folder in {}", parent.display()))?;
    let splits = Split::ALL
        .map(|s| SplitLabels { labels: &dataset.split(s).labels, groups: &dataset.split(s).groups });
    let pixels = |s: Split, indices: &[usize]| dataset.images(s, indices);
    let summary =
        write_waterbirds(&staging.path, size, &dataset.class_names, dataset.image_shape, splits, &pixels)?;
    // Moved aside first (into a scratch folder removed when dropped), so the old folder is
    // replaced only once the new one is whole; an interrupt waits for the renames.
    let aside = if existing {
        Some(
            Scratch::create(&parent, true)
                .with_context(|| format!("cannot create a folder in {}", parent.display()))?,
        )
    } else {
        None
    };
    let _publishing = crate::util::interrupt::publishing();
    if let Some(aside) = &aside {
        std::fs::rename(out, &aside.path)
            .with_context(|| format!("cannot move the old {} aside", out.display()))?;
    }
    if let Err(e) = std::fs::rename(&staging.path, out) {
        if let Some(aside) = &aside {
            let _ = std::fs::rename(&aside.path, out); // the old folder back in its place
        }
        return Err(e).with_context(|| format!("cannot move the export into {}", out.display()));
    }
    Ok(ExportSummary { metadata: out.join("metadata.csv"), ..summary })
}
