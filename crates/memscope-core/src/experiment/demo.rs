//! Finding the bundled demo experiment from any working directory.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// The demo's folder inside the repository.
pub(crate) const DEMO_DIR: &str = "checkpoints/spurious-digits";
/// The second demo, a small ViT on the same data, beside the first.
pub(crate) const VIT_DEMO_NAME: &str = "spurious-digits-vit";

/// Where the bundled demo lives: `$MEMSCOPE_DEMO` if set; else the first
/// `checkpoints/spurious-digits` above the running executable (a `target/release` build
/// inside the repository); else the repository this binary was built from.
pub fn locate() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("MEMSCOPE_DEMO") {
        return Ok(PathBuf::from(dir));
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        candidates.extend(exe.ancestors().skip(1).map(|dir| dir.join(DEMO_DIR)));
    }
    candidates.push(repository().join(DEMO_DIR));
    match candidates.into_iter().find(|dir| dir.join(super::MANIFEST).is_file()) {
        Some(dir) => Ok(dir),
        None => bail!(
            "the bundled demo ({DEMO_DIR}) was not found next to this executable or in {}; \
             pass --experiment DIR or set MEMSCOPE_DEMO",
            repository().display()
        ),
    }
}

/// The repository this crate was built from (two folders above `crates/memscope-core`).
fn repository() -> &'static Path {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.ancestors().nth(2).unwrap_or(manifest)
}

/// The bundled demo other than `current` (the ResNet's for the ViT's, else the ViT's): the two
/// share their data, so the explorer can switch between them.
pub fn other(current: &Path) -> Result<PathBuf> {
    let cnn = locate()?;
    let vit = cnn.with_file_name(VIT_DEMO_NAME);
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    let to = if same(current, &vit) { cnn } else { vit };
    if !to.join(super::MANIFEST).is_file() {
        bail!("the bundled demo {} was not found", to.display());
    }
    Ok(to)
}
