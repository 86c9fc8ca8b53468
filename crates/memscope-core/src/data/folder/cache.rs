//! An on-disk cache of a folder's transformed 8-bit images: built once (decoded and
//! transformed in parallel, written split by split), then read back by offset instead of
//! decoding JPEGs. The pixels are the uncached path's bytes, so the normalised images are
//! identical. A cache is found by a key, the sha256 of everything its pixels depend on: the
//! metadata file's bytes, every image's path and size, the transform and the Pillow version
//! reproduced; a change to any of them makes a new key (the old cache is left alone).
//!
//! Layout: `DIR/<key>/{train,val,test}.u8` (`[n, s, s, 3]` each) and `DIR/<key>/cache.json`,
//! built in `DIR/.<key>.partial` and renamed into place when complete.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, ensure};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::transform::normalise_hwc;
use super::{FolderPixels, Manifest, split_index};
use crate::data::{PixelSource, Split};
use crate::jobs::Progress;
use crate::util::interrupt::remove_on_interrupt;

const FORMAT: u32 = 1;
/// Images decoded per write while building.
const CHUNK: usize = 256;

/// What `cache.json` records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CacheInfo {
    pub format: u32,
    pub key: String,
    pub data_set: String,
    pub transform: String,
    /// `[height, width, channels]` of every image.
    pub image_shape: [usize; 3],
    /// Images per split (train, val, test).
    pub counts: [usize; 3],
}

/// The key of `manifest`'s images under `pixels`' transform.
pub fn key(manifest: &Manifest, pixels: &FolderPixels) -> Result<String> {
    let mut hash = Sha256::new();
    hash.update(format!("memscope-pixels-{FORMAT}\n{:?}\n", pixels.settings()).as_bytes());
    let metadata = std::fs::read(&manifest.source)
        .with_context(|| format!("cannot read {} to key the pixel cache", manifest.source.display()))?;
    hash.update((metadata.len() as u64).to_le_bytes());
    hash.update(&metadata);
    for (s, split) in manifest.splits.iter().enumerate() {
        hash.update(format!("split {s} {}\n", split.len()).as_bytes());
        for entry in split {
            let path = manifest.root.join(&entry.path);
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(u64::MAX);
            hash.update(format!("{}\t{size}\n", entry.path.display()).as_bytes());
        }
    }
    Ok(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Pixels read from a built cache.
#[derive(Debug)]
pub struct CachedPixels {
    pub dir: PathBuf,
    pub info: CacheInfo,
    files: [File; 3],
    /// `ToTensor` and the transform's `Normalize` ([`FolderPixels`]'s).
    table: [[f32; 256]; 3],
}

impl CachedPixels {
    fn image_len(&self) -> usize {
        self.info.image_shape.iter().product()
    }

    /// The 8-bit images of `indices`, `[n, s, s, 3]` flat.
    pub fn images_u8(&self, split: Split, indices: &[usize]) -> Result<Vec<u8>> {
        let s = split_index(split);
        let len = self.image_len();
        let mut out = vec![0u8; indices.len() * len];
        for (slot, &i) in out.chunks_exact_mut(len).zip(indices) {
            ensure!(
                i < self.info.counts[s],
                "index {i} out of range: the {split} split has {} images",
                self.info.counts[s]
            );
            self.files[s]
                .read_exact_at(slot, (i * len) as u64)
                .with_context(|| format!("cannot read the pixel cache {}", self.dir.display()))?;
        }
        Ok(out)
    }
}

impl PixelSource for CachedPixels {
    fn images(&self, split: Split, indices: &[usize]) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        self.images_into(split, indices, &mut out)?;
        Ok(out)
    }

    fn images_into(&self, split: Split, indices: &[usize], out: &mut Vec<f32>) -> Result<()> {
        let len = self.image_len();
        let raw = self.images_u8(split, indices)?;
        out.resize(raw.len(), 0.0);
        for (src, dst) in raw.chunks_exact(len).zip(out.chunks_exact_mut(len)) {
            normalise_hwc(src, &self.table, dst);
        }
        Ok(())
    }
}

fn split_file(dir: &Path, split: Split) -> PathBuf {
    dir.join(format!("{}.u8", split.name()))
}

/// Opens the cache of `manifest` under `pixels` in `dir`, building it first when it does not
/// exist (`progress` hears of every chunk of images built, and can cancel: nothing is left).
/// Returns the cache and whether it was built now.
pub fn open_or_build(
    dir: &Path,
    manifest: &Manifest,
    pixels: &FolderPixels,
    progress: &mut dyn Progress,
) -> Result<(CachedPixels, bool)> {
    let key = key(manifest, pixels)?;
    let home = dir.join(&key);
    let built = if home.join("cache.json").is_file() {
        false
    } else {
        build(dir, &key, manifest, pixels, progress)?;
        true
    };
    let text = std::fs::read_to_string(home.join("cache.json"))
        .with_context(|| format!("cannot read {}", home.join("cache.json").display()))?;
    let info: CacheInfo = serde_json::from_str(&text).map_err(|e| {
        anyhow!("{} is not a pixel cache ({e}): delete the folder to rebuild it", home.display())
    })?;
    ensure!(
        info.format == FORMAT && info.key == key,
        "{} was written by another memscope: delete the folder to rebuild it",
        home.display()
    );
    let len: usize = info.image_shape.iter().product();
    let mut files = Vec::new();
    for split in Split::ALL {
        let path = split_file(&home, split);
        let file = File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let want = (info.counts[split_index(split)] * len) as u64;
        ensure!(
            size == want,
            "{} has {size} bytes, {want} expected: delete {} to rebuild it",
            path.display(),
            home.display()
        );
        files.push(file);
    }
    let files: [File; 3] = files.try_into().map_err(|_| anyhow!("three split files"))?;
    Ok((CachedPixels { dir: home, info, files, table: *pixels.table() }, built))
}

fn build(
    dir: &Path,
    key: &str,
    manifest: &Manifest,
    pixels: &FolderPixels,
    progress: &mut dyn Progress,
) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the pixel cache folder {}", dir.display()))?;
    let staging = dir.join(format!(".{key}.partial"));
    let _cleanup = remove_on_interrupt(&staging);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).with_context(|| format!("cannot clear {}", staging.display()))?;
    }
    std::fs::create_dir(&staging).with_context(|| format!("cannot create {}", staging.display()))?;
    let result = (|| -> Result<()> {
        let total: usize = manifest.splits.iter().map(Vec::len).sum();
        let mut done = 0;
        for split in Split::ALL {
            let n = manifest.split(split).len();
            let path = split_file(&staging, split);
            let mut out = BufWriter::new(
                File::create(&path).with_context(|| format!("cannot create {}", path.display()))?,
            );
            let all: Vec<usize> = (0..n).collect();
            for chunk in all.chunks(CHUNK) {
                let bytes = pixels.images_u8(split, chunk)?;
                out.write_all(&bytes).with_context(|| format!("cannot write {}", path.display()))?;
                done += chunk.len();
                progress.report(done, total)?;
            }
            out.into_inner()
                .map_err(|e| anyhow!("cannot write {}: {}", path.display(), e.error()))?
                .sync_all()
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        let [_, h, w] = pixels.image_shape();
        let info = CacheInfo {
            format: FORMAT,
            key: key.to_string(),
            data_set: manifest.name.clone(),
            transform: pixels.describe(),
            image_shape: [h, w, 3],
            counts: manifest.splits.each_ref().map(Vec::len),
        };
        let text = serde_json::to_string_pretty(&info).context("cannot serialise cache.json")?;
        crate::util::fsx::write_atomic(&staging.join("cache.json"), text.as_bytes())?;
        let home = dir.join(key);
        if let Err(e) = std::fs::rename(&staging, &home) {
            // Another process finished the same cache first: use theirs.
            if !home.join("cache.json").is_file() {
                return Err(anyhow!("cannot move the pixel cache into {}: {e}", home.display()));
            }
        }
        Ok(())
    })();
    if staging.exists() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}
