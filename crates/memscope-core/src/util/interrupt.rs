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
    free_memory_later();
    // `_exit`, not `exit`: the other threads are still computing, and running libtorch's
    // static destructors under them corrupts the heap (seen as "malloc_consolidate():
    // unaligned fastbin chunk" and an abort). Everything worth keeping is on disk already.
    // SAFETY: `_exit` ends the process at once; it touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// Leaves the freeing of this process's memory to a child that shares it (`CLONE_VM`). The
/// kernel tears an address space down in the last process that drops it, before the shell
/// sees that process end: about 150 ms per GB here (half a second for a ResNet-50 on the
/// digits at 224 px). With the child holding it, this process ends at once and the child
/// frees the memory once it is gone. Should the child not start, nothing changes.
#[cfg(target_os = "linux")]
fn free_memory_later() {
    const STACK: usize = 64 << 10;
    static mut CHILD_STACK: [u128; STACK / 16] = [0; STACK / 16];
    let parent = std::process::id() as usize;
    // SAFETY: the child runs `linger` on a stack nothing else uses (`end` runs once, under
    // the publishing lock) and makes only raw system calls.
    unsafe {
        let top = (&raw mut CHILD_STACK).cast::<u8>().add(STACK);
        libc::clone(linger, top.cast(), libc::CLONE_VM | libc::SIGCHLD, parent as *mut libc::c_void);
    }
}

#[cfg(not(target_os = "linux"))]
fn free_memory_later() {}

/// The child of [`free_memory_later`]. It shares the exiting process's memory and thread
/// storage, so it takes no lock and calls nothing but the kernel: it blocks signals, closes
/// its copies of the files (the terminal is the shell's again), waits until its parent is gone
/// (it is then another's child) and exits, freeing the memory.
#[cfg(target_os = "linux")]
extern "C" fn linger(parent: *mut libc::c_void) -> libc::c_int {
    let all_signals: u64 = !0;
    let nap = libc::timespec { tv_sec: 0, tv_nsec: 1_000_000 };
    // SAFETY: system calls with pointers to this function's own stack.
    unsafe {
        let none = std::ptr::null_mut::<u64>();
        libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_BLOCK, &all_signals, none, 8usize);
        libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
        while libc::syscall(libc::SYS_getppid) as usize == parent as usize {
            libc::syscall(libc::SYS_nanosleep, &nap, std::ptr::null_mut::<libc::timespec>());
        }
        libc::syscall(libc::SYS_exit, 0);
    }
    0
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
