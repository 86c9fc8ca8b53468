//! Throughput of the folder loader: opens `waterbirds:DIR` (224 px, resize 256 + centre crop
//! 224 + ImageNet normalise) and decodes every image of every split through the data seam,
//! in batches of 100 (into one buffer, reused as the engine's batch reader reuses its buffers),
//! RUNS times; prints each run's seconds and the median images per second.
//!
//! With CACHE_DIR, pixels come from the pixel cache there (built first when missing).
//!
//! usage: cargo run --release --example folder_throughput -- DIR THREADS RUNS [CACHE_DIR]

use std::time::Instant;

use anyhow::{Context, Result, bail};
use memscope_core::data::Split;
use memscope_core::data::folder::{FolderSpec, load, load_cached};
use memscope_core::jobs::Silent;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !(3..=4).contains(&args.len()) {
        bail!("usage: folder_throughput DIR THREADS RUNS [CACHE_DIR]");
    }
    let threads: usize = args[1].parse().context("THREADS")?;
    let runs: usize = args[2].parse().context("RUNS")?;
    let spec: FolderSpec = format!("waterbirds:{}", args[0]).parse()?;
    let dataset = match args.get(3) {
        Some(cache) => load_cached(&spec, threads, false, Some((std::path::Path::new(cache), &mut Silent)))?,
        None => load(&spec, threads)?,
    };
    let n: usize = Split::ALL.iter().map(|&s| dataset.split(s).len()).sum();
    let mut times = Vec::new();
    for run in 0..runs {
        let start = Instant::now();
        let mut checksum = 0f64;
        // One buffer reused from batch to batch, as the engine's batch reader reuses them.
        let mut pixels = Vec::new();
        for split in Split::ALL {
            let all: Vec<usize> = (0..dataset.split(split).len()).collect();
            for batch in all.chunks(100) {
                dataset.images_into(split, batch, &mut pixels)?;
                checksum += f64::from(pixels[0]);
            }
        }
        let secs = start.elapsed().as_secs_f64();
        eprintln!("run {run}: {secs:.3} s ({:.0} images/s; checksum {checksum:.3})", n as f64 / secs);
        times.push(secs);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "memscope {n} images, {threads} threads: median {median:.3} s, {:.0} images/s",
        n as f64 / median
    );
    Ok(())
}
