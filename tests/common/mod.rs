//! Helpers shared by the integration tests.

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
