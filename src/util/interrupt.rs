//! What happens on SIGINT, SIGTERM or SIGHUP (Ctrl-C, `kill`, a dropped SSH connection):
//! every path registered here is removed (staging folders, lock files, half-written
//! temporary files), every registered hook runs (the explorer restores the terminal), and
//! the process exits with 128 + 2. Nothing the command did not finish is left behind.
//!
//! A guard unregisters its path when the work that made it ends normally.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Registered entries with the id of the guard that owns them.
type Registry<T> = Mutex<Vec<(u64, T)>>;

static PATHS: Registry<PathBuf> = Mutex::new(Vec::new());
static HOOKS: Registry<fn()> = Mutex::new(Vec::new());
static NEXT: Mutex<u64> = Mutex::new(0);

fn next_id() -> u64 {
    let mut next = NEXT.lock().unwrap_or_else(|e| e.into_inner());
    *next += 1;
    *next
}

/// Removes `path` (file or folder) if the process is interrupted before the guard drops.
#[must_use = "the path is unregistered when the guard drops"]
pub struct Cleanup(u64);

impl Drop for Cleanup {
    fn drop(&mut self) {
        PATHS.lock().unwrap_or_else(|e| e.into_inner()).retain(|(id, _)| *id != self.0);
    }
}

pub fn remove_on_interrupt(path: &Path) -> Cleanup {
    let id = next_id();
    PATHS.lock().unwrap_or_else(|e| e.into_inner()).push((id, path.to_path_buf()));
    Cleanup(id)
}

/// Runs `hook` if the process is interrupted before the guard drops.
#[must_use = "the hook is unregistered when the guard drops"]
pub struct Hook(u64);

impl Drop for Hook {
    fn drop(&mut self) {
        HOOKS.lock().unwrap_or_else(|e| e.into_inner()).retain(|(id, _)| *id != self.0);
    }
}

pub fn on_interrupt(hook: fn()) -> Hook {
    let id = next_id();
    HOOKS.lock().unwrap_or_else(|e| e.into_inner()).push((id, hook));
    Hook(id)
}

/// Removes every registered path and runs every hook (what an interrupt does, minus the exit).
pub fn clean_up() {
    let hooks: Vec<fn()> = HOOKS.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|h| h.1).collect();
    for hook in hooks {
        hook();
    }
    let paths: Vec<PathBuf> =
        PATHS.lock().unwrap_or_else(|e| e.into_inner()).drain(..).map(|p| p.1).collect();
    for path in paths.iter().rev() {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => {
                let _ = std::fs::remove_dir_all(path);
            }
            Ok(_) => {
                let _ = std::fs::remove_file(path);
            }
            Err(_) => {}
        }
    }
}

/// Installs the handler (once, from `main`). Exit status 130, as a shell reports Ctrl-C.
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        clean_up();
        // `_exit`, not `exit`: the other threads are still computing, and running libtorch's
        // static destructors under them corrupts the heap (seen as "malloc_consolidate():
        // unaligned fastbin chunk" and an abort). Everything worth keeping is on disk already.
        // SAFETY: `_exit` ends the process at once; it touches no Rust state.
        unsafe { libc::_exit(130) }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_paths_are_removed_and_released_guards_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let kept = dir.path().join("kept");
        let staged = dir.path().join("staged");
        std::fs::create_dir(&staged).unwrap();
        std::fs::write(staged.join("f"), "x").unwrap();
        std::fs::write(&kept, "x").unwrap();
        let guard = remove_on_interrupt(&staged);
        drop(remove_on_interrupt(&kept));
        clean_up();
        assert!(!staged.exists());
        assert!(kept.exists());
        drop(guard);
    }
}
