//! File reads and writes that cannot hang, read without bound, or leave a half-written file.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Reads the regular file at `path` (a symbolic link to one is fine), refusing a folder, a
/// device, a named pipe or socket (reading one could block or never end), a loop of
/// symbolic links and anything larger than `max_bytes`. `what` names the file in messages
/// ("checkpoint", …).
pub fn read_regular(path: &Path, what: &str, max_bytes: u64) -> Result<Vec<u8>> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if is_link_loop(&e) => bail!("{what} {} {LINK_LOOP}", path.display()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {what} {}", path.display())),
    };
    if meta.is_dir() {
        bail!("{what} {} is a folder, not a file", path.display());
    }
    if !meta.is_file() {
        bail!(
            "{what} {} is not a regular file (a device, pipe or socket); refusing to read it",
            path.display()
        );
    }
    if meta.len() > max_bytes {
        bail!(
            "{what} {} is {} bytes, more than the {max_bytes} this file can be",
            path.display(),
            meta.len()
        );
    }
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {what} {}", path.display()))?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    if bytes.len() as u64 > max_bytes {
        bail!("{what} {} grew past {max_bytes} bytes while being read", path.display());
    }
    Ok(bytes)
}

/// How a message says that a path cannot be followed to a file.
pub(crate) const LINK_LOOP: &str = "is a symbolic link loop (too many levels of symbolic links)";

/// True when `e` says a path's symbolic links go round in a loop (ELOOP).
pub(crate) fn is_link_loop(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

/// Cuts `text` to at most `max` characters, marking the cut (for error messages that quote
/// user input).
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}… ({} more bytes)", &text[..at], text.len() - at),
        None => text.to_string(),
    }
}

/// Writes `bytes` to `path` so that a reader sees either the old file or the complete new
/// one: through a temporary file in the same folder and a rename. A symbolic link is
/// followed (the link stays a link and its target is replaced); a device or named pipe
/// (`/dev/stdout`, a FIFO with a reader) is written into, never replaced by a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let target = resolve_links(path)?;
    if let Ok(meta) = std::fs::metadata(&target) {
        if meta.is_dir() {
            bail!("cannot write {}: it is a folder", path.display());
        }
        if !meta.is_file() {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .open(&target)
                .with_context(|| format!("cannot open {} for writing", path.display()))?;
            return file.write_all(bytes).with_context(|| format!("cannot write {}", path.display()));
        }
    }
    let dir = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = Scratch::create(dir, false).with_context(|| {
        format!("cannot write {}: cannot create a file in {}", path.display(), dir.display())
    })?;
    // A new file gets the usual 0644; a replaced one keeps its mode.
    let mode = std::fs::metadata(&target).map(|m| m.permissions()).unwrap_or_else(|_| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::Permissions::from_mode(0o644)
    });
    let written = std::fs::OpenOptions::new().write(true).open(&tmp.path).and_then(|mut file| {
        file.write_all(bytes)?;
        file.set_permissions(mode)?;
        file.sync_all()
    });
    written.with_context(|| format!("cannot write {}", path.display()))?;
    let _publishing = super::interrupt::publishing();
    std::fs::rename(&tmp.path, &target).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

/// Writes a result the user asked for (`--out FILE`) atomically, refusing to replace a
/// file an experiment owns (its `experiment.ron` or a checkpoint): a typo in `--out` must
/// not destroy a training run.
pub fn write_output(path: &Path, bytes: &[u8]) -> Result<()> {
    let target = resolve_links(path)?;
    let dir = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let experiment_file =
        name == "experiment.ron" || name.ends_with(".safetensors") || name.ends_with(".bpk");
    if experiment_file && dir.join("experiment.ron").is_file() {
        bail!(
            "--out {} would replace a file of the experiment in {}; write the result somewhere else",
            path.display(),
            dir.display()
        );
    }
    write_atomic(path, bytes)
}

/// A hidden scratch file or folder beside its destination, named `.memscope-PID-N[.tmp]`. It
/// is registered for removal on an interrupt BEFORE it is created (so no signal can leave it
/// behind) and removed when dropped, unless it was renamed away.
pub(crate) struct Scratch {
    pub path: PathBuf,
    _cleanup: super::interrupt::Cleanup,
}

impl Scratch {
    /// Creates a new scratch file (or folder, with `folder`) in `dir`.
    pub(crate) fn create(dir: &Path, folder: bool) -> std::io::Result<Scratch> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        loop {
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let suffix = if folder { "" } else { ".tmp" };
            let path = dir.join(format!(".memscope-{}-{n}{suffix}", std::process::id()));
            let cleanup = super::interrupt::remove_on_interrupt(&path);
            let made = if folder {
                std::fs::create_dir(&path)
            } else {
                std::fs::OpenOptions::new().write(true).create_new(true).open(&path).map(|_| ())
            };
            match made {
                Ok(()) => return Ok(Scratch { path, _cleanup: cleanup }),
                // Left by an earlier process with this pid: never touch it, try the next name
                // (dropping the guard unregisters it).
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => drop(cleanup),
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        match std::fs::symlink_metadata(&self.path) {
            Ok(meta) if meta.is_dir() => {
                let _ = std::fs::remove_dir_all(&self.path);
            }
            Ok(_) => {
                let _ = std::fs::remove_file(&self.path);
            }
            Err(_) => {}
        }
    }
}

/// `path` with every symbolic link in its last component followed (at most 16 deep).
fn resolve_links(path: &Path) -> Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..16 {
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = std::fs::read_link(&current)
                    .with_context(|| format!("cannot read the link {}", current.display()))?;
                current = match current.parent() {
                    Some(parent) if link.is_relative() => parent.join(link),
                    _ => link,
                };
            }
            _ => return Ok(current),
        }
    }
    bail!("cannot write {}: it {LINK_LOOP}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_stays_a_link_and_its_target_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target.json");
        std::fs::write(&target, "old").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink("target.json", &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "no temporary file is left: {names:?}");
    }

    #[test]
    fn an_output_never_replaces_an_experiments_own_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("experiment.ron"), "keep").unwrap();
        for name in ["experiment.ron", "epoch-040.safetensors"] {
            let err = write_output(&dir.path().join(name), b"x").unwrap_err().to_string();
            assert!(err.contains("would replace a file of the experiment"), "{err}");
        }
        assert_eq!(std::fs::read_to_string(dir.path().join("experiment.ron")).unwrap(), "keep");
        write_output(&dir.path().join("result.json"), b"{}").unwrap();
    }

    #[test]
    fn a_device_is_written_into_not_replaced() {
        write_atomic(Path::new("/dev/null"), b"discarded").unwrap();
        assert!(!std::fs::metadata("/dev/null").unwrap().is_file());
    }

    #[test]
    fn reads_refuse_devices_folders_and_oversized_files() {
        let err = read_regular(Path::new("/dev/zero"), "checkpoint", 10).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let err = read_regular(dir.path(), "checkpoint", 10).unwrap_err().to_string();
        assert!(err.contains("is a folder"), "{err}");
        let file = dir.path().join("f");
        std::fs::write(&file, [0u8; 11]).unwrap();
        let err = read_regular(&file, "checkpoint", 10).unwrap_err().to_string();
        assert!(err.contains("is 11 bytes"), "{err}");
        assert_eq!(read_regular(&file, "checkpoint", 11).unwrap().len(), 11);
        assert_eq!(clip("abcdef", 3), "abc… (3 more bytes)");
        assert_eq!(clip("abc", 3), "abc");
    }
}
