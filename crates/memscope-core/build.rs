// Gives the binaries and test executables an rpath to the libtorch they were linked against,
// so they run without LD_LIBRARY_PATH (torch-sys itself does not set one), and tells the
// code which libtorch that is (`MEMSCOPE_LIBTORCH`, e.g. "2.9.0+cpu, CPU only"), for
// `memscope --version` and every result's provenance. The memscope package's build.rs
// includes this file. scripts/fetch-libtorch cleans this crate's build when it links another
// libtorch, so that both are found again. `MEMSCOPE_PACK=1` (scripts/pack) leaves the rpath
// out: a pack's binary runs on the torch/lib its launcher finds on the box, never on a folder
// of the machine that built it.
fn main() {
    let mut said = String::from("unknown");
    let pack = std::env::var_os("MEMSCOPE_PACK").is_some_and(|v| v == "1");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        let lib = std::fs::canonicalize(&lib).unwrap_or_else(|_| lib.into());
        if !pack {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
        }
        if let Some(root) = lib.parent() {
            said = libtorch_version(root);
        }
    }
    println!("cargo:rustc-env=MEMSCOPE_LIBTORCH={said}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=MEMSCOPE_PACK");
}

/// "VERSION, CPU only" or "VERSION, CUDA X" of the libtorch folder `root`: from the
/// `version.txt` scripts/libtorch-from-wheels writes, a libtorch download's `build-version`,
/// or a PyTorch package's `version.py`; CUDA when `lib/libtorch_cuda.so` is there.
fn libtorch_version(root: &std::path::Path) -> String {
    let read = |name: &str| std::fs::read_to_string(root.join(name)).ok();
    let quoted = |text: &str, key: &str| {
        let line = text.lines().find(|l| l.starts_with(key))?;
        line.split('\'').nth(1).map(str::to_string)
    };
    let py = read("version.py");
    let version = read("version.txt")
        .and_then(|t| t.split_whitespace().next().map(str::to_string))
        .or_else(|| read("build-version").map(|t| t.trim().to_string()))
        .or_else(|| py.as_deref().and_then(|t| quoted(t, "__version__")))
        .unwrap_or_else(|| "unknown version".into());
    let cuda = py.as_deref().and_then(|t| quoted(t, "cuda"));
    if root.join("lib/libtorch_cuda.so").exists() {
        format!("{version}, CUDA {}", cuda.as_deref().unwrap_or("(version unknown)"))
    } else {
        format!("{version}, CPU only")
    }
}
