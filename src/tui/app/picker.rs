//! `O`: open another experiment. The list: the runs folder's experiments, the bundled demos
//! and the experiments opened in this session, read when the prompt opens; what is typed
//! narrows it (part of a name or path), and Enter opens the first listed, or the folder typed.

use std::path::{Path, PathBuf};

use super::{App, Effect};
use crate::tui::runs::scan;
use crate::tui::status::Status;
use memscope_core::experiment::{Experiment, MANIFEST, demo};

/// An experiment the picker offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Openable {
    pub dir: PathBuf,
    pub name: String,
    /// Where it was found and what it is ("runs folder · jtt from spurious-digits epoch 40").
    pub what: String,
    /// Trained on the explored data and groups (only those open here).
    pub same_data: bool,
}

/// The same folder, however it is spelled.
fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

impl App {
    /// The experiments the picker offers now, without the one open (each folder once).
    pub(super) fn openable(&self) -> Vec<Openable> {
        let current = &self.experiment.manifest;
        let train: Vec<usize> = self.groups.iter().map(|g| g.train).collect();
        let listing = scan(&self.mitigation.runs_dir, &current.groups, &train);
        let mut found: Vec<(PathBuf, String)> =
            listing.runs.iter().map(|r| (r.dir.clone(), format!("runs folder · {}", r.what()))).collect();
        if let Ok(cnn) = demo::locate() {
            let vit = cnn.with_file_name("spurious-digits-vit");
            found.extend([(cnn, "bundled demo".to_string()), (vit, "bundled demo".to_string())]);
        }
        found.extend(self.visited.iter().map(|dir| (dir.clone(), "opened in this session".to_string())));
        let mut offered: Vec<Openable> = Vec::new();
        for (dir, what) in found {
            let seen = same_dir(&dir, &self.experiment.dir) || offered.iter().any(|o| same_dir(&o.dir, &dir));
            if seen || !dir.join(MANIFEST).is_file() {
                continue;
            }
            let Ok(experiment) = Experiment::open(&dir) else { continue };
            let m = &experiment.manifest;
            let same_data = m.dataset == current.dataset && m.groups == current.groups;
            offered.push(Openable { dir, name: m.name.clone(), what, same_data });
        }
        offered
    }

    /// The offered experiments whose name or folder has `text` (any case), in order.
    pub fn open_matches(&self, text: &str) -> Vec<&Openable> {
        let text = text.to_lowercase();
        self.picker
            .iter()
            .filter(|o| {
                o.name.to_lowercase().contains(&text)
                    || o.dir.display().to_string().to_lowercase().contains(&text)
            })
            .collect()
    }

    /// Enter in the picker: the folder typed if it is an experiment, else the first match.
    pub(super) fn open_picked(&mut self, text: &str) -> Vec<Effect> {
        let typed = Path::new(text.trim());
        if !text.trim().is_empty() && typed.join(MANIFEST).is_file() {
            return vec![Effect::Open(typed.to_path_buf())];
        }
        if let Some(first) = self.open_matches(text).first() {
            return vec![Effect::Open(first.dir.clone())];
        }
        self.status = Status::Error(if self.picker.is_empty() {
            format!(
                "no other experiment in {} or the bundled demos: type an experiment folder",
                self.mitigation.runs_dir.display()
            )
        } else {
            format!("no experiment's name or folder has '{text}', and it is no experiment folder")
        });
        Vec::new()
    }
}
