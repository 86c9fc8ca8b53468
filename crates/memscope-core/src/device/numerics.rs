//! How CUDA computes float32: libtorch keeps cuDNN's and cuBLAS's settings in one process-wide
//! context, set here when a CUDA device is opened and read back for every result's provenance.

// burn-tch is deprecated upstream; everything backend-specific stays under `device`.
#![allow(deprecated)]

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, anyhow};
use burn_tch::CudaNumerics;

/// The float32 settings a CUDA device is opened with. cuDNN is always deterministic and never
/// benchmarks (the same inputs give the same algorithms and the same numbers, run after run);
/// TF32 is off unless asked for. With the defaults, memscope on CUDA computes as PyTorch does
/// with `torch.backends.cudnn.deterministic = True`, `torch.backends.cudnn.benchmark = False`,
/// `torch.backends.cudnn.allow_tf32 = False` and `torch.backends.cuda.matmul.allow_tf32 = False`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Numerics {
    /// Let convolutions (cuDNN) and matrix products (cuBLAS) round their inputs to TF32: faster
    /// on Ampere and later GPUs, further from the CPU's float32 (`--tf32`).
    pub tf32: bool,
}

impl Numerics {
    fn cuda(self) -> CudaNumerics {
        CudaNumerics {
            cudnn_deterministic: true,
            cudnn_benchmark: false,
            cudnn_tf32: self.tf32,
            matmul_tf32: self.tf32,
        }
    }
}

/// Whether this process opened a CUDA device (then libtorch's CUDA settings are in force).
static CUDA_OPENED: AtomicBool = AtomicBool::new(false);

/// Puts `numerics` in force for every CUDA device of this process.
pub(super) fn apply(numerics: Numerics) -> Result<()> {
    burn_tch::set_cuda_numerics(numerics.cuda())
        .map_err(|e| anyhow!("cannot set libtorch's CUDA numerics: {e}"))?;
    CUDA_OPENED.store(true, Ordering::Relaxed);
    Ok(())
}

/// The numerics in force, as provenance records them: "cpu" until a CUDA device is opened,
/// then what libtorch reports back (not what was asked), e.g. "cuDNN deterministic, TF32 off".
pub fn in_force() -> String {
    if !CUDA_OPENED.load(Ordering::Relaxed) {
        return "cpu".into();
    }
    match burn_tch::cuda_numerics() {
        Ok(n) => describe(n),
        Err(e) => format!("unknown ({e})"),
    }
}

/// "cuDNN deterministic, TF32 off"; "cuDNN nondeterministic + benchmark, TF32 on", "TF32 for
/// convolutions only", ...
pub(crate) fn describe(n: CudaNumerics) -> String {
    let cudnn = if n.cudnn_deterministic { "deterministic" } else { "nondeterministic" };
    let benchmark = if n.cudnn_benchmark { " + benchmark" } else { "" };
    let tf32 = match (n.cudnn_tf32, n.matmul_tf32) {
        (false, false) => "TF32 off",
        (true, true) => "TF32 on",
        (true, false) => "TF32 for convolutions only",
        (false, true) => "TF32 for matmuls only",
    };
    format!("cuDNN {cudnn}{benchmark}, {tf32}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libtorch keeps the four settings even without CUDA, so the round trip through its
    /// context is checked here on the CPU (the process is a test binary: nothing computes on
    /// CUDA, and the CPU's kernels read none of them). One test, as the context is global.
    #[test]
    fn libtorch_reads_back_what_was_set() {
        assert!(burn_tch::libtorch_device(), "burn-tch was built without src/ffi/device.cpp");
        for tf32 in [true, false] {
            let want = Numerics { tf32 }.cuda();
            burn_tch::set_cuda_numerics(want).unwrap();
            assert_eq!(burn_tch::cuda_numerics().unwrap(), want);
        }
        let odd = CudaNumerics {
            cudnn_deterministic: false,
            cudnn_benchmark: true,
            cudnn_tf32: true,
            matmul_tf32: false,
        };
        burn_tch::set_cuda_numerics(odd).unwrap();
        assert_eq!(burn_tch::cuda_numerics().unwrap(), odd);
        assert_eq!(describe(odd), "cuDNN nondeterministic + benchmark, TF32 for convolutions only");
        apply(Numerics::default()).unwrap();
        assert_eq!(in_force(), "cuDNN deterministic, TF32 off");
        apply(Numerics { tf32: true }).unwrap();
        assert_eq!(in_force(), "cuDNN deterministic, TF32 on");
        apply(Numerics::default()).unwrap();
    }
}
