//! Helpers shared by the integration tests (each test file uses some of them).
#![allow(dead_code)]

use std::path::PathBuf;

pub mod tmux;

/// The bundled demo experiment in this checkout.
pub const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/checkpoints/spurious-digits");

/// A private copy of the demo experiment to break: (the temporary folder that owns it, the copy).
pub fn demo_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let exp = dir.path().join("exp");
    std::fs::create_dir(&exp).unwrap();
    for entry in std::fs::read_dir(DEMO).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), exp.join(entry.file_name())).unwrap();
    }
    (dir, exp)
}

/// What the reference stack must import: PyTorch, torchvision, Pillow, numpy, safetensors.
const REFERENCE_IMPORTS: &str = "import torch, torchvision, PIL, numpy, safetensors";

/// The Python of the reference stack the comparisons run against: `MEMSCOPE_TORCH_PYTHON` when
/// set (only it: `MEMSCOPE_TORCH_PYTHON=/nonexistent` makes the stack unavailable), else the
/// pinned venv scripts/fetch-reference links as `.reference` (`make test` runs it first).
/// `None` only when the person running the tests set `MEMSCOPE_ALLOW_SKIP=1`: otherwise a
/// missing stack fails the test, naming what is missing.
pub fn torch_python() -> Option<PathBuf> {
    reference_python("PyTorch")
}

/// The reference stack's Python for a check that needs `what` of it (PyTorch, Pillow), as
/// [`torch_python`].
pub fn reference_python(what: &str) -> Option<PathBuf> {
    static FOUND: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    requires(what, FOUND.get_or_init(find_reference).clone())
}

fn find_reference() -> Result<PathBuf, String> {
    let (python, named) = match std::env::var_os("MEMSCOPE_TORCH_PYTHON") {
        Some(p) => (PathBuf::from(&p), format!("MEMSCOPE_TORCH_PYTHON={}", p.to_string_lossy())),
        None => (
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.reference/bin/python")),
            "the reference stack (.reference, made by scripts/fetch-reference; `make test` runs it)".into(),
        ),
    };
    let out = std::process::Command::new(&python).args(["-c", REFERENCE_IMPORTS]).output();
    match out {
        Ok(o) if o.status.success() => Ok(python),
        Ok(o) => {
            let why = String::from_utf8_lossy(&o.stderr);
            let last = why.trim_end().lines().last().unwrap_or("").to_string();
            Err(format!("{named} cannot import torch, torchvision, PIL, numpy and safetensors: {last}"))
        }
        Err(e) => Err(format!("{named} does not run: {e}")),
    }
}

/// A check that needs something outside memscope (`what`: PyTorch, Pillow, root): the thing
/// when `found` has it, recorded as run; else a failure naming what is missing, or, when
/// `MEMSCOPE_ALLOW_SKIP=1`, `None`, recorded as skipped so that `make test` counts it.
pub fn requires<T>(what: &str, found: Result<T, String>) -> Option<T> {
    let name = check_name();
    match found {
        Ok(thing) => {
            record("ran", &name, what);
            Some(thing)
        }
        Err(why) if std::env::var("MEMSCOPE_ALLOW_SKIP").is_ok_and(|v| v == "1") => {
            record("skipped", &name, what);
            eprintln!("SKIPPED (MEMSCOPE_ALLOW_SKIP=1): {name} needs {what}: {why}");
            None
        }
        Err(why) => panic!(
            "{name} needs {what}: {why}. A check that cannot run fails; set MEMSCOPE_ALLOW_SKIP=1 to skip it on purpose"
        ),
    }
}

/// `BINARY::TEST` of the running test (libtest names each test's thread after it).
fn check_name() -> String {
    let exe = std::env::current_exe().ok();
    let stem = exe.as_deref().and_then(|p| p.file_stem()).and_then(|s| s.to_str()).unwrap_or("test");
    let binary = stem.rsplit_once('-').map_or(stem, |(b, _)| b);
    let thread = std::thread::current();
    format!("{binary}::{}", thread.name().unwrap_or("main"))
}

/// `target/tmp/checks/{ran,skipped}/NAME`, read by scripts/check-summary after the tests
/// (`MEMSCOPE_CHECK_MARKS` moves them: the test of this rule runs a check in a child).
fn record(outcome: &str, name: &str, what: &str) {
    let root = std::env::var_os("MEMSCOPE_CHECK_MARKS")
        .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("checks"), PathBuf::from);
    let file = name.replace("::", "--");
    let other = if outcome == "ran" { "skipped" } else { "ran" };
    let _ = std::fs::remove_file(root.join(other).join(&file));
    let _ = std::fs::create_dir_all(root.join(outcome));
    let _ = std::fs::write(root.join(outcome).join(file), format!("{name} (needs {what})\n"));
}

/// `partial-PID-N`: a staging name no other test, in this process or another, is using (two
/// tests of one binary that need the same fixture make it side by side; the first rename wins).
pub fn staging_suffix() -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    format!("partial-{}-{}", std::process::id(), NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// `~/.cache/memscope/fixtures/NAME-HASH` (or under `$XDG_CACHE_HOME`): fixtures made once by
/// `scripts` and kept between runs, found again by a hash of the scripts' contents (a changed
/// script makes new fixtures).
pub fn fixture_cache(name: &str, scripts: &[&str]) -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let mut bytes = name.as_bytes().to_vec();
    for script in scripts {
        let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts")).join(script);
        bytes.extend(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())));
    }
    let hash = memscope_core::experiment::checkpoint::sha256_hex(&bytes);
    Some(cache.join("memscope/fixtures").join(format!("{name}-{}", &hash[..12])))
}

/// The real `memscope` binary, blind to the environment variables that would redirect it.
pub fn memscope() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("memscope").unwrap();
    cmd.env_remove("MEMSCOPE_DEMO").env_remove("MEMSCOPE_DATA_ROOT");
    cmd
}

/// Runs memscope expecting success; returns its standard output.
pub fn succeeds(args: &[&str]) -> String {
    let out = memscope().args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Runs memscope expecting failure; returns its one-line error.
pub fn fails(args: &[&str]) -> String {
    let out = memscope().args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} succeeded");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "not one line: {stderr}");
    assert!(stderr.starts_with("memscope: error: "), "{stderr}");
    stderr
}

/// Column `nth` of every group row of `memscope intervene ARGS --format csv` (3 before, 4
/// after, 6 change), as fractions.
pub fn intervene_column(args: &[&str], nth: usize) -> Vec<f64> {
    let out = memscope().arg("intervene").args(args).args(["--format", "csv"]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .skip(1)
        .map(|l| l.split(',').nth(nth).unwrap().parse::<f64>().unwrap())
        .collect()
}

/// The signed changes in points with one decimal, as the explorer shows them, of `memscope
/// intervene ARGS`.
pub fn cli_changes(args: &[&str]) -> Vec<String> {
    intervene_column(args, 6).iter().map(|c| format!("{:+.1}", 100.0 * c)).collect()
}

/// Every .rs file under `dir`, sorted (for the tests that read the source).
pub fn rust_sources(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The code of a file without its comments and its `#[cfg(test)]` module (tests may reach
/// anywhere; a doc comment may name any module).
pub fn rust_code(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => &text,
    };
    let without_comment = |line: &str| match line.find("//") {
        Some(at) if line[..at].trim().is_empty() || line[..at].ends_with(' ') => line[..at].to_string(),
        _ => line.to_string(),
    };
    text.lines().map(without_comment).collect::<Vec<_>>().join("\n")
}

/// Per-group correct counts after a one-run intervention, from its JSON (`after` is correct /
/// examples).
pub fn correct_after(json: &serde_json::Value) -> Vec<usize> {
    let groups = json["groups"].as_array().unwrap();
    groups
        .iter()
        .map(|g| (g["after"].as_f64().unwrap() * g["examples"].as_f64().unwrap()).round() as usize)
        .collect()
}
