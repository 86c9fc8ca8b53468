//! Helpers shared by the integration tests (each test file uses some of them).
#![allow(dead_code)]

use std::path::PathBuf;

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

/// A Python with torch and safetensors: `MEMSCOPE_TORCH_PYTHON`, else bench/run's
/// `bench/.venv` (the pinned torch 2.9.0).
pub fn torch_python() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("MEMSCOPE_TORCH_PYTHON").map(PathBuf::from),
        Some(PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/bench/.venv/bin/python"))),
    ];
    candidates.into_iter().flatten().find(|p| {
        std::process::Command::new(p)
            .args(["-c", "import torch, safetensors"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// `~/.cache/memscope/fixtures/NAME` (or under `$XDG_CACHE_HOME`): fixtures made by a script
/// once and kept between runs.
pub fn fixture_cache(name: &str) -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(cache.join("memscope/fixtures").join(name))
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
