//! Writing an experiment folder: created in a hidden staging folder next to its destination,
//! one checkpoint and manifest update per epoch, and moved into place only when complete.
//! A lock file keeps two writers off one destination; a writer dropped before `finish`
//! (an error, a cancellation) removes what it staged.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::manifest::{CheckpointEntry, MANIFEST, Manifest};
use super::{Experiment, checkpoint, checkpoint_file};
use crate::model::Network;
use crate::util::interrupt::{Cleanup, remove_on_interrupt};

/// A new experiment being written.
pub struct ExperimentWriter {
    experiment: Experiment,
    out: PathBuf,
    staging: PathBuf,
    lock: PathBuf,
    finished: bool,
    /// Remove the staging folder and the lock if the process is interrupted.
    _cleanup: [Cleanup; 2],
}

impl ExperimentWriter {
    /// Starts an experiment with `manifest` (its checkpoint list is emptied) that will land
    /// at `out`. An existing experiment there is replaced only when `overwrite` is set;
    /// anything else at `out` is refused.
    pub fn create(out: &Path, mut manifest: Manifest, overwrite: bool) -> Result<ExperimentWriter> {
        let lock = sibling(out, "lock")?;
        take_lock(&lock, out)?;
        let lock_guard = remove_on_interrupt(&lock);
        // From here on the lock is ours: drop the writer to release it.
        let staging = sibling(out, "partial")?;
        manifest.checkpoints.clear();
        let staging_guard = remove_on_interrupt(&staging);
        let writer = ExperimentWriter {
            experiment: Experiment { dir: staging.clone(), manifest },
            out: out.to_path_buf(),
            staging,
            _cleanup: [lock_guard, staging_guard],
            lock,
            finished: false,
        };
        recover_interrupted_install(out)?;
        check_destination(out, overwrite)?;
        if writer.staging.exists() {
            // Left by a run that died; the lock says no other run is using it.
            std::fs::remove_dir_all(&writer.staging)
                .with_context(|| format!("cannot clear {}", writer.staging.display()))?;
        }
        std::fs::create_dir_all(&writer.staging)
            .with_context(|| format!("cannot create {}", writer.staging.display()))?;
        Ok(writer)
    }

    /// The experiment as written so far (its folder is the staging folder until `finish`).
    pub fn experiment(&self) -> &Experiment {
        &self.experiment
    }

    /// Saves `model` as the checkpoint of `entry.epoch` and records `entry` (its file and
    /// sha256 are filled in here) in the manifest.
    pub fn record(&mut self, model: &Network, mut entry: CheckpointEntry) -> Result<()> {
        entry.file = checkpoint_file(entry.epoch);
        entry.sha256 = checkpoint::save(model, &self.staging.join(&entry.file))?;
        self.experiment.manifest.checkpoints.push(entry);
        self.experiment.save()
    }

    /// Records `entry`, a checkpoint kept where it is (an imported run's file), in the manifest.
    pub(crate) fn record_external(&mut self, entry: CheckpointEntry) -> Result<()> {
        self.experiment.manifest.checkpoints.push(entry);
        self.experiment.save()
    }

    /// Changes the manifest (e.g. settings a run found) and saves it.
    pub(crate) fn update_manifest(&mut self, change: impl FnOnce(&mut Manifest)) -> Result<()> {
        change(&mut self.experiment.manifest);
        self.experiment.save()
    }

    /// Moves the finished experiment to its destination, replacing what was there only at
    /// the end, and returns it.
    pub fn finish(mut self) -> Result<Experiment> {
        install(&self.staging, &self.out)?;
        self.finished = true;
        let mut experiment = self.experiment.clone();
        experiment.dir = self.out.clone();
        Ok(experiment)
    }
}

impl Drop for ExperimentWriter {
    fn drop(&mut self) {
        if !self.finished && self.staging.exists() {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
        let _ = std::fs::remove_file(&self.lock);
    }
}

/// `.NAME.tag` beside `out`.
fn sibling(out: &Path, tag: &str) -> Result<PathBuf> {
    let name = out
        .file_name()
        .with_context(|| format!("--out {} has no folder name", out.display()))?
        .to_string_lossy();
    Ok(out.with_file_name(format!(".{name}.{tag}")))
}

/// Creates the lock file, or names the process that holds it. A lock whose process is gone
/// (a crash) is taken over.
fn take_lock(lock: &Path, out: &Path) -> Result<()> {
    if let Some(parent) = lock.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    for _ in 0..2 {
        match std::fs::OpenOptions::new().write(true).create_new(true).open(lock) {
            Ok(mut file) => {
                use std::io::Write;
                writeln!(file, "{}", std::process::id())
                    .with_context(|| format!("cannot write the lock {}", lock.display()))?;
                return Ok(());
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let holder = std::fs::read_to_string(lock).unwrap_or_default();
                match holder.trim().parse::<u32>() {
                    Ok(pid) if Path::new(&format!("/proc/{pid}")).exists() => bail!(
                        "{} is being written by another memscope (process {pid}, lock {}); wait for it or choose another --out",
                        out.display(),
                        lock.display()
                    ),
                    _ => {
                        std::fs::remove_file(lock)
                            .with_context(|| format!("cannot remove the stale lock {}", lock.display()))?;
                    }
                }
            }
            Err(e) => return Err(e).with_context(|| format!("cannot create the lock {}", lock.display())),
        }
    }
    bail!("cannot take the lock {}", lock.display())
}

/// A crash between moving the old experiment aside and moving the new one in leaves
/// `.NAME.old` and nothing at `out`: put the old one back. An `.old` beside a present
/// experiment is never deleted here; the user is told.
fn recover_interrupted_install(out: &Path) -> Result<()> {
    let old = sibling(out, "old")?;
    if !old.exists() {
        return Ok(());
    }
    if !out.exists() {
        std::fs::rename(&old, out)
            .with_context(|| format!("cannot restore {} from {}", out.display(), old.display()))?;
        log::warn!(
            "restored the experiment {} that an interrupted run had moved to {}",
            out.display(),
            old.display()
        );
        return Ok(());
    }
    bail!(
        "{} holds an earlier experiment left by an interrupted run; inspect it and remove it, then try again",
        old.display()
    )
}

/// Refuses to replace anything but an experiment, and an experiment unless asked.
fn check_destination(out: &Path, overwrite: bool) -> Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(out) else { return Ok(()) };
    if meta.file_type().is_symlink() {
        bail!(
            "{} is a symbolic link; pass the folder it points to, or another --out (memscope never replaces a link)",
            out.display()
        );
    }
    if !meta.is_dir() {
        bail!("{} exists and is not a folder; choose another --out", out.display());
    }
    let is_empty = out.read_dir().map(|mut d| d.next().is_none()).unwrap_or(false);
    if is_empty {
        return Ok(());
    }
    if !out.join(MANIFEST).is_file() {
        bail!("{} exists and is not an experiment folder; choose another --out", out.display());
    }
    if !overwrite {
        bail!("experiment {} already exists; pass --force to replace it", out.display());
    }
    Ok(())
}

/// Moves the finished staging folder to `out`, replacing what was there only at the end.
fn install(staging: &Path, out: &Path) -> Result<()> {
    let old = sibling(out, "old")?;
    let _publishing = crate::util::interrupt::publishing();
    if out.exists() {
        std::fs::rename(out, &old).with_context(|| format!("cannot move {} aside", out.display()))?;
    }
    std::fs::rename(staging, out)
        .with_context(|| format!("cannot move the new experiment to {}", out.display()))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).with_context(|| format!("cannot remove {}", old.display()))?;
    }
    Ok(())
}
