//! Decodes and transforms image files like a folder data set does, writing the 8-bit
//! result (HWC, concatenated) to OUT and the throughput to stderr: the Rust side of
//! `scripts/pil-reference`, for comparing and timing on real folders.
//!
//! usage: cargo run --release --example folder_pixels -- waterbirds|celeba|timm-deit SIZE THREADS OUT FILE...

use std::time::Instant;

use anyhow::{Context, Result, bail};
use memscope_core::data::folder::decode::decode_file;
use memscope_core::data::folder::{Transform, transform::normalise};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        bail!("usage: folder_pixels waterbirds|celeba|timm-deit SIZE THREADS OUT FILE...");
    }
    let size: usize = args[1].parse().context("SIZE")?;
    let threads: usize = args[2].parse().context("THREADS")?;
    let Some(transform) = Transform::preset(&args[0], size) else {
        bail!("unknown transform {} ({})", args[0], Transform::PRESETS.join(", "));
    };
    let normalize = transform.compose().normalize;
    let (transform, normalize) = (&transform, &normalize);
    let files = &args[4..];
    let start = Instant::now();
    let chunk = files.len().div_ceil(threads.max(1)).max(1);
    let results: Vec<Result<Vec<u8>>> = std::thread::scope(|s| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || -> Result<Vec<u8>> {
                    let mut out = Vec::new();
                    let mut norm = vec![0f32; size * size * 3];
                    for f in part {
                        let img = transform.apply_u8(&decode_file(f.as_ref())?);
                        normalise(&img, normalize, &mut norm);
                        out.extend_from_slice(&img.data);
                    }
                    Ok(out)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| bail!("worker panicked"))).collect()
    });
    let mut all = Vec::new();
    for r in results {
        all.extend(r?);
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!("{} images in {secs:.2} s: {:.0} images/s", files.len(), files.len() as f64 / secs);
    std::fs::write(&args[3], all)?;
    Ok(())
}
