//! What the device in use is, in words: `info`, the explorer's header and every JSON
//! provenance name it (GPU model and memory, or the processor and libtorch's threads) with
//! the libtorch memscope runs on.
//!
//! A GPU's name and memory come from the CUDA driver (`libcuda.so.1`, which every machine
//! with an NVIDIA driver has: the same library libtorch's CUDA runtime talks to), asked
//! through its stable C API (`cuDeviceGetName`, `cuDeviceTotalMem_v2`), so that memscope needs
//! no CUDA headers to build.

use std::ffi::{CStr, c_char, c_int, c_uint, c_void};
use std::fmt;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::{DeviceSpec, LIBTORCH};

/// A device as `info`, the explorer and provenance describe it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// `cpu` or `cuda:N`, as the user names it.
    pub device: String,
    /// The GPU's model (e.g. "NVIDIA H100 80GB HBM3") or the processor's ("AMD EPYC 7B13");
    /// empty where the system does not say.
    pub name: String,
    /// The GPU's memory in bytes (none for the CPU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// libtorch's intra-op threads (CPU only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    /// The libtorch memscope runs on ([`LIBTORCH`]).
    pub libtorch: String,
}

impl DeviceInfo {
    /// The device's name and what it has, without the libtorch: "cuda:0 (NVIDIA H200,
    /// 139.8 GiB)" or "cpu (AMD EPYC 7B13, 2 threads)".
    pub fn short(&self) -> String {
        let what = match (self.memory_bytes, self.threads) {
            (Some(bytes), _) => Some(format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))),
            (None, Some(1)) => Some("1 thread".to_string()),
            (None, Some(threads)) => Some(format!("{threads} threads")),
            (None, None) => None,
        };
        let parts: Vec<String> =
            [Some(self.name.clone()).filter(|n| !n.is_empty()), what].into_iter().flatten().collect();
        if parts.is_empty() { self.device.clone() } else { format!("{} ({})", self.device, parts.join(", ")) }
    }
}

impl fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} · libtorch {}", self.short(), self.libtorch)
    }
}

/// Describes `spec` as it is on this machine now (the CPU's model from /proc/cpuinfo and
/// libtorch's thread count; a GPU's model and memory from the CUDA driver).
pub fn describe(spec: DeviceSpec) -> DeviceInfo {
    let mut info =
        DeviceInfo { device: spec.to_string(), libtorch: LIBTORCH.to_string(), ..Default::default() };
    match spec {
        DeviceSpec::Cpu => {
            info.name = cpu_model().unwrap_or_default();
            info.threads = usize::try_from(tch::get_num_threads()).ok();
        }
        DeviceSpec::Cuda(index) => {
            if let Some((name, bytes)) = cuda_device(index) {
                info.name = name;
                info.memory_bytes = Some(bytes);
            }
        }
    }
    info
}

/// The device this process opened last ([`DeviceSpec::device`] records it), described as
/// [`describe`] does; `None` before any was opened.
pub fn current() -> Option<DeviceInfo> {
    let opened = *OPENED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    opened.map(describe)
}

/// The device in use: the one opened last, or the CPU where none was opened through
/// [`DeviceSpec`] (an engine user on `Device::libtorch()`, burn's CPU device).
pub fn in_use() -> DeviceInfo {
    current().unwrap_or_else(|| describe(DeviceSpec::Cpu))
}

static OPENED: Mutex<Option<DeviceSpec>> = Mutex::new(None);

/// Remembers that `spec` was opened (for [`current`]).
pub(super) fn record(spec: DeviceSpec) {
    *OPENED.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(spec);
}

/// The first "model name" in /proc/cpuinfo (Linux on x86 and most ARM servers).
fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_string())
    })
}

type CuInit = unsafe extern "C" fn(c_uint) -> c_int;
type CuDeviceGet = unsafe extern "C" fn(*mut c_int, c_int) -> c_int;
type CuDeviceGetName = unsafe extern "C" fn(*mut c_char, c_int, c_int) -> c_int;
type CuDeviceTotalMem = unsafe extern "C" fn(*mut usize, c_int) -> c_int;

/// The name and memory of CUDA device `index` (as `CUDA_VISIBLE_DEVICES` numbers them, the
/// same numbering libtorch's `cuda:N` uses), or `None` without a driver or such a device.
fn cuda_device(index: usize) -> Option<(String, u64)> {
    let ordinal = c_int::try_from(index).ok()?;
    // SAFETY: dlopen/dlsym with NUL-terminated names; each symbol is cast to the signature
    // the CUDA driver API documents for it (stable since CUDA 3.2) and called with valid
    // pointers to locals; the library stays loaded (libtorch's CUDA runtime holds it anyway).
    unsafe {
        let lib = libc::dlopen(c"libcuda.so.1".as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL);
        if lib.is_null() {
            return None;
        }
        let symbol = |name: &CStr| -> Option<*mut c_void> {
            let f = libc::dlsym(lib, name.as_ptr());
            (!f.is_null()).then_some(f)
        };
        let init: CuInit = std::mem::transmute(symbol(c"cuInit")?);
        let get: CuDeviceGet = std::mem::transmute(symbol(c"cuDeviceGet")?);
        let get_name: CuDeviceGetName = std::mem::transmute(symbol(c"cuDeviceGetName")?);
        let total_mem: CuDeviceTotalMem = std::mem::transmute(symbol(c"cuDeviceTotalMem_v2")?);
        if init(0) != 0 {
            return None;
        }
        let mut device: c_int = 0;
        if get(&mut device, ordinal) != 0 {
            return None;
        }
        let mut name = [0 as c_char; 256];
        if get_name(name.as_mut_ptr(), name.len() as c_int, device) != 0 {
            return None;
        }
        let mut bytes: usize = 0;
        if total_mem(&mut bytes, device) != 0 {
            return None;
        }
        let name = CStr::from_ptr(name.as_ptr()).to_string_lossy().trim().to_string();
        Some((name, bytes as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_what_the_device_has() {
        let gpu = DeviceInfo {
            device: "cuda:0".into(),
            name: "NVIDIA H200".into(),
            memory_bytes: Some(150_110_011_392),
            threads: None,
            libtorch: "2.11.0+cu130, CUDA 13.0".into(),
        };
        assert_eq!(gpu.short(), "cuda:0 (NVIDIA H200, 139.8 GiB)");
        assert_eq!(gpu.to_string(), "cuda:0 (NVIDIA H200, 139.8 GiB) · libtorch 2.11.0+cu130, CUDA 13.0");
        let cpu = DeviceInfo { device: "cpu".into(), threads: Some(2), ..Default::default() };
        assert_eq!(cpu.short(), "cpu (2 threads)");
    }

    #[test]
    fn a_missing_gpu_is_described_by_its_name_alone() {
        // This machine has no NVIDIA driver, or no device 99.
        let info = describe(DeviceSpec::Cuda(99));
        assert_eq!((info.device.as_str(), info.memory_bytes), ("cuda:99", None));
    }
}
