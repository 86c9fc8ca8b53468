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
/// Held while a finished result is moved into place, and by the handler: an interrupt either
/// waits for the move to complete or stops the process before it starts, never halfway.
static PUBLISH: Mutex<()> = Mutex::new(());
static HOOKS: Registry<fn()> = Mutex::new(Vec::new());
static NEXT: Mutex<u64> = Mutex::new(0);

fn next_id() -> u64 {
    let mut next = NEXT.lock().unwrap_or_else(|e| e.into_inner());
    *next += 1;
    *next
}

/// Removes `path` (file or folder) if the process is interrupted before the guard drops.
#[must_use = "the path is unregistered when the guard drops"]
pub(crate) struct Cleanup(u64);

impl Drop for Cleanup {
    fn drop(&mut self) {
        PATHS.lock().unwrap_or_else(|e| e.into_inner()).retain(|(id, _)| *id != self.0);
    }
}

/// Holds off interrupts while finished files are renamed into place (no other locking call of
/// this module may be made while the guard lives).
pub(crate) fn publishing() -> std::sync::MutexGuard<'static, ()> {
    PUBLISH.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn remove_on_interrupt(path: &Path) -> Cleanup {
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
pub(crate) fn clean_up() {
    let hooks: Vec<fn()> = HOOKS.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|h| h.1).collect();
    for hook in hooks {
        hook();
    }
    remove_registered(|_| true);
}

/// Removes (and forgets) the registered paths `chosen` picks, the latest first.
fn remove_registered(chosen: impl Fn(&Path) -> bool) {
    let paths: Vec<PathBuf> = {
        let mut registry = PATHS.lock().unwrap_or_else(|e| e.into_inner());
        let (picked, kept): (Vec<_>, Vec<_>) =
            std::mem::take(&mut *registry).into_iter().partition(|(_, p)| chosen(p));
        *registry = kept;
        picked.into_iter().map(|(_, p)| p).collect()
    };
    for path in paths.iter().rev() {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => remove_folder(path),
            Ok(_) => {
                let _ = std::fs::remove_file(path);
            }
            Err(_) => {}
        }
    }
}

/// Removes a folder another thread may still be writing into: moved aside first (later
/// writes by path then fail), then removed, again while a file opened just before the move
/// still appears in it.
fn remove_folder(path: &Path) {
    let mut doomed = path.as_os_str().to_owned();
    doomed.push(".removing");
    let doomed = PathBuf::from(doomed);
    let target = if std::fs::rename(path, &doomed).is_ok() { doomed } else { path.to_path_buf() };
    for _ in 0..50 {
        if std::fs::remove_dir_all(&target).is_ok() || !target.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Installs the handler (once, from `main`). Exit status 130, as a shell reports Ctrl-C.
pub fn install() {
    let _ = ctrlc::set_handler(|| end(130));
}

/// Ends the process at once with status `code`, as an interrupt does (registered paths removed,
/// hooks run), after flushing standard output and error: for a front end that quits while a
/// thread of its own is still computing and must not wait for it.
pub fn exit_now(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    end(code)
}

fn end(code: i32) -> ! {
    let _publishing = publishing();
    clean_up();
    // `_exit`, not `exit`: the other threads are still computing, and running libtorch's
    // static destructors under them corrupts the heap (seen as "malloc_consolidate():
    // unaligned fastbin chunk" and an abort). Everything worth keeping is on disk already.
    // SAFETY: `_exit` ends the process at once; it touches no Rust state.
    unsafe { libc::_exit(code) }
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
        // Only this test's paths: the other tests of the process run in parallel, and their
        // scratch files are registered here too (removing them once failed a `write_atomic`).
        remove_registered(|p| p.starts_with(dir.path()));
        assert!(!staged.exists());
        assert!(kept.exists());
        drop(guard);
    }
}
