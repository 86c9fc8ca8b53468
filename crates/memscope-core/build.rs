// Gives the binaries and test executables an rpath to the libtorch they were linked against,
// so they run without LD_LIBRARY_PATH (torch-sys itself does not set one). The memscope
// package's build.rs includes this file.
fn main() {
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        let lib = std::fs::canonicalize(&lib).unwrap_or_else(|_| lib.into());
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    }
    println!("cargo:rerun-if-changed=build.rs");
}
