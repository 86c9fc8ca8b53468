//! `--skip-bad-images`: every image is read and decoded once when the data set is opened;
//! those missing or undecodable are left out of the manifest and reported.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::decode::decode_file;
use super::{Manifest, split_index};
use crate::data::Split;
use crate::data::changes::SkippedImage;

/// Removes the manifest's bad images (on `threads` threads; 0: every core) and returns
/// them in metadata order.
pub(crate) fn drop_bad(manifest: &mut Manifest, threads: usize) -> Vec<SkippedImage> {
    let all: Vec<(Split, usize)> =
        Split::ALL.iter().flat_map(|&s| (0..manifest.split(s).len()).map(move |i| (s, i))).collect();
    let threads =
        if threads == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { threads };
    let next = AtomicUsize::new(0);
    let bad = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, all.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(split, i)) = all.get(k) else { break };
                    let entry = &manifest.split(split)[i];
                    let path = manifest.root.join(&entry.path);
                    let reason = if !path.is_file() {
                        Some("not found".to_string())
                    } else {
                        decode_file(&path).err().map(|e| format!("{:#}", e.root_cause()))
                    };
                    if let Some(reason) = reason
                        && let Ok(mut bad) = bad.lock()
                    {
                        bad.push((split, i, reason));
                    }
                }
            });
        }
    });
    let mut bad = bad.into_inner().unwrap_or_default();
    bad.sort_by_key(|&(split, i, _)| (split, i));
    let mut skipped: Vec<SkippedImage> = bad
        .iter()
        .map(|(split, i, reason)| {
            let entry = &manifest.split(*split)[*i];
            SkippedImage { split: *split, path: entry.path.clone(), line: entry.line, reason: reason.clone() }
        })
        .collect();
    for split in Split::ALL {
        let drop: Vec<usize> = bad.iter().filter(|b| b.0 == split).map(|b| b.1).collect();
        let entries = &mut manifest.splits[split_index(split)];
        let mut index = 0;
        entries.retain(|_| {
            index += 1;
            drop.binary_search(&(index - 1)).is_err()
        });
    }
    skipped.sort_by_key(|s| s.line);
    skipped
}
