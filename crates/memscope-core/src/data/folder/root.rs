//! Where a recorded image folder lies now. An experiment records its folder's path; on
//! another machine, or after the folder moved, a data root given at run time replaces it.
//!
//! - No root given: the recorded path; a relative one is taken from the experiment folder.
//! - A root `DIR` given (`--data-root`, else `MEMSCOPE_DATA_ROOT`): `DIR` itself when it
//!   holds the layout (Waterbirds: `metadata.csv`; CelebA: `img_align_celeba/` or
//!   `metadata.csv`; csv: `DIR/FILE` with the recorded manifest's name), else the recorded
//!   folder's name inside it (`DIR/waterbird_complete95_forest2water2`; csv:
//!   `DIR/PARENT/FILE`), so a root that holds several data sets serves them all.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use super::{FolderSpec, Layout};
use crate::data::open::DataRoot;

/// The path to read `spec`'s folder (or manifest) from; an error names the recorded path
/// and says how to give the new one.
pub(crate) fn resolve(spec: &FolderSpec, experiment_dir: &Path, root: Option<&DataRoot>) -> Result<PathBuf> {
    let recorded = &spec.path;
    let Some(root) = root else {
        let path = if recorded.is_relative() { experiment_dir.join(recorded) } else { recorded.clone() };
        if !path.exists() {
            let relative = if recorded.is_relative() {
                format!(" (relative to the experiment folder: {})", path.display())
            } else {
                String::new()
            };
            bail!(
                "the experiment's {} {}{relative} does not exist; if it moved, pass --data-root DIR \
                 (or set MEMSCOPE_DATA_ROOT) to where it is now",
                what(&spec.layout),
                recorded.display()
            );
        }
        return Ok(path);
    };
    let candidates = candidates(&spec.layout, recorded, &root.dir);
    if let Some(found) = candidates.iter().find(|c| holds(&spec.layout, c)) {
        return Ok(found.clone());
    }
    let looked: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
    bail!(
        "{} {}: no {} there (looked for {}); the experiment recorded {}",
        root.from,
        root.dir.display(),
        what(&spec.layout),
        looked.join(" and "),
        recorded.display()
    )
}

/// The places a root may hold the data, in the order they are tried.
fn candidates(layout: &Layout, recorded: &Path, dir: &Path) -> Vec<PathBuf> {
    let name = recorded.file_name();
    match layout {
        Layout::Csv => {
            let mut out = Vec::new();
            if dir.is_file() {
                out.push(dir.to_path_buf());
            }
            if let Some(file) = name {
                out.push(dir.join(file));
                if let Some(parent) = recorded.parent().and_then(Path::file_name) {
                    out.push(dir.join(parent).join(file));
                }
            }
            out
        }
        Layout::Waterbirds | Layout::Celeba(_) => {
            let mut out = vec![dir.to_path_buf()];
            out.extend(name.map(|n| dir.join(n)));
            out
        }
    }
}

/// Whether `path` holds the layout's metadata.
fn holds(layout: &Layout, path: &Path) -> bool {
    match layout {
        Layout::Waterbirds => path.join("metadata.csv").is_file(),
        Layout::Celeba(_) => path.join("img_align_celeba").is_dir() || path.join("metadata.csv").is_file(),
        Layout::Csv => path.is_file(),
    }
}

fn what(layout: &Layout) -> &'static str {
    match layout {
        Layout::Waterbirds => "waterbirds folder",
        Layout::Celeba(_) => "celeba folder",
        Layout::Csv => "csv manifest",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::folder::Transform;

    fn spec(layout: Layout, path: &str) -> FolderSpec {
        FolderSpec { layout, path: PathBuf::from(path), transform: Transform::waterbirds(224) }
    }

    #[test]
    fn a_root_replaces_the_recorded_path_and_a_relative_one_follows_the_experiment() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let wb = data.join("wb");
        std::fs::create_dir_all(&wb).unwrap();
        std::fs::write(wb.join("metadata.csv"), "").unwrap();
        std::fs::write(data.join("m.csv"), "").unwrap();
        let exp = tmp.path().join("exp");
        std::fs::create_dir(&exp).unwrap();
        let waterbirds = spec(Layout::Waterbirds, "/gone/wb");
        let root = |dir: &Path| DataRoot { dir: dir.to_path_buf(), from: "--data-root" };

        assert_eq!(resolve(&waterbirds, &exp, Some(&root(&wb))).unwrap(), wb, "the folder itself");
        assert_eq!(resolve(&waterbirds, &exp, Some(&root(&data))).unwrap(), wb, "a folder holding it");
        let e = resolve(&waterbirds, &exp, Some(&root(&exp))).unwrap_err().to_string();
        assert!(e.starts_with("--data-root ") && e.contains("the experiment recorded /gone/wb"), "{e}");

        let e = resolve(&waterbirds, &exp, None).unwrap_err().to_string();
        assert!(e.contains("/gone/wb does not exist") && e.contains("pass --data-root"), "{e}");
        let relative = spec(Layout::Waterbirds, "../data/wb");
        assert_eq!(resolve(&relative, &exp, None).unwrap(), exp.join("../data/wb"));

        let csv = spec(Layout::Csv, "/gone/data/m.csv");
        assert_eq!(resolve(&csv, &exp, Some(&root(&data))).unwrap(), data.join("m.csv"));
        assert_eq!(resolve(&csv, &exp, Some(&root(tmp.path()))).unwrap(), data.join("m.csv"));
    }
}
