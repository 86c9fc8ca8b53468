//! The one place where the compute backend and device are chosen.
//!
//! memscope runs on burn's libtorch backend (burn-tch). It is deprecated upstream, so
//! everything backend-specific lives here: moving to another backend changes this file.

use std::fmt;
use std::str::FromStr;

use anyhow::{Result, bail};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

pub mod describe;
pub(crate) mod fused;
mod memory;
mod numerics;
mod transfer;

pub use memory::{OutOfMemory, Pass, is_out_of_memory, quiet_out_of_memory_panics, uncaught_out_of_memory};
pub(crate) use memory::{SCRIPTED_FAILED, guard};
pub use numerics::{Numerics, in_force as numerics_in_force};
pub use transfer::{assert_module_on, assert_on, assert_same};
pub(crate) use transfer::{cuda_index, torch_device, upload_floats, upload_ints};

/// The libtorch this build links and runs on: its version and "CPU only" or "CUDA X", as the
/// build found it (scripts/fetch-libtorch chooses it; build.rs reads it).
pub const LIBTORCH: &str = env!("MEMSCOPE_LIBTORCH");

/// A device as the user names it: `cpu` or `cuda:N`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceSpec {
    #[default]
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceSpec {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        if s == "cpu" {
            return Ok(DeviceSpec::Cpu);
        }
        if s == "cuda" {
            return Ok(DeviceSpec::Cuda(0));
        }
        if let Some(index) = s.strip_prefix("cuda:")
            && let Ok(index) = index.parse()
        {
            return Ok(DeviceSpec::Cuda(index));
        }
        bail!("unknown device '{s}' (valid: cpu, cuda, cuda:N)")
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl DeviceSpec {
    /// The burn device for inference (no gradient tape), a CUDA one with the default
    /// [`Numerics`]. Fails with a clear message when the requested CUDA device does not exist
    /// or this libtorch was built without CUDA.
    pub fn device(self) -> Result<Device> {
        self.open(Numerics::default())
    }

    /// As [`DeviceSpec::device`]; a CUDA device computes with `numerics` (for the whole
    /// process: libtorch keeps them globally).
    #[allow(deprecated)] // burn-tch is deprecated upstream; see the module comment.
    pub fn open(self, numerics: Numerics) -> Result<Device> {
        let device = self.open_with(numerics)?;
        describe::record(self);
        Ok(device)
    }

    #[allow(deprecated)] // burn-tch is deprecated upstream; see the module comment.
    fn open_with(self, numerics: Numerics) -> Result<Device> {
        match self {
            DeviceSpec::Cpu => Ok(Device::libtorch()),
            DeviceSpec::Cuda(index) => {
                if !tch::Cuda::is_available() {
                    bail!(
                        "device cuda:{index} is not available: this build's libtorch has no CUDA or no GPU is visible \
                         (use --device cpu, or rebuild after scripts/fetch-libtorch --cuda on a GPU machine)"
                    );
                }
                let count = tch::Cuda::device_count() as usize;
                if index >= count {
                    bail!(
                        "device cuda:{index} does not exist (this machine has {count} CUDA device(s): cuda:0..cuda:{})",
                        count.saturating_sub(1)
                    );
                }
                numerics::apply(numerics)?;
                Ok(Device::libtorch_cuda(index))
            }
        }
    }
}

/// Sets libtorch's intra-op thread count (0 keeps libtorch's default: one per core).
pub fn set_threads(threads: usize) {
    if threads > 0 {
        tch::set_num_threads(threads as i32);
    }
}

/// Heap memory released to the system only above this much free space at the top (glibc).
pub(crate) const TRIM_THRESHOLD: usize = 256 << 20;
/// Blocks up to this size come from the reusable heap rather than fresh `mmap`s (glibc's
/// largest allowed value).
pub(crate) const MMAP_THRESHOLD: usize = 32 << 20;

/// Keeps freed tensor memory in the process for the next tensor (glibc only; elsewhere a
/// no-op). glibc's defaults hand each multi-megabyte activation back to the kernel when it is
/// freed, so the next forward pass takes a page fault per 4 KB it writes: on this project's VM
/// that was about 7,500 faults and a third of the time of one evaluation of the demo's val
/// split (25 -> 17 ms with this). One arena for all threads: the explorer's worker thread
/// would otherwise get a per-thread arena of 64 MB heaps that are still trimmed and refilled
/// (Enter -> result through the worker: 27 -> 15 ms). Costs up to `TRIM_THRESHOLD` of idle
/// heap after a peak. Call before anything allocates much: `main` does, and so do the
/// examples.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before any other thread
    // of ours exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Seeds the backend's random generator (weight initialisation draws from it).
pub fn seed(device: &Device, seed: u64) {
    device.seed(seed);
}
