//! memscope: libtorch's process-wide CUDA numerics settings and an upload through page-locked
//! host memory, bound by hand in `src/ffi/device.cpp` (tch binds neither). See README.md.

use crate::TchTensor;
#[cfg(libtorch_device)]
use std::ffi::{CStr, c_char};
#[cfg(libtorch_device)]
use torch_sys::C_tensor;

#[cfg(libtorch_device)]
unsafe extern "C" {
    fn burn_tch_set_cuda_numerics(
        deterministic: bool,
        benchmark: bool,
        tf32_cudnn: bool,
        tf32_cublas: bool,
    ) -> *mut c_char;

    fn burn_tch_cuda_numerics(
        deterministic: *mut bool,
        benchmark: *mut bool,
        tf32_cudnn: *mut bool,
        tf32_cublas: *mut bool,
    ) -> *mut c_char;

    fn burn_tch_upload_pinned(
        values: *const std::ffi::c_void,
        integers: bool,
        shape: *const i64,
        dims: usize,
        index: i64,
        out: *mut *mut C_tensor,
    ) -> *mut c_char;
}

#[cfg(not(libtorch_device))]
const NOT_BUILT: &str = "burn-tch was built without libtorch's headers (src/ffi/device.cpp)";

/// libtorch's process-wide settings for float32 arithmetic on CUDA, as PyTorch names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CudaNumerics {
    /// `torch.backends.cudnn.deterministic`: cuDNN picks deterministic algorithms only.
    pub cudnn_deterministic: bool,
    /// `torch.backends.cudnn.benchmark`: cuDNN times its algorithms and keeps the fastest.
    pub cudnn_benchmark: bool,
    /// `torch.backends.cudnn.allow_tf32`: convolutions may round inputs to TF32.
    pub cudnn_tf32: bool,
    /// `torch.backends.cuda.matmul.allow_tf32`: matrix products may round inputs to TF32.
    pub matmul_tf32: bool,
}

/// The binding's error message, if any.
///
/// # Safety
///
/// `error` is null or a string the binding allocated with malloc.
#[cfg(libtorch_device)]
unsafe fn message(error: *mut c_char) -> Option<String> {
    if error.is_null() {
        return None;
    }
    // SAFETY: a NUL-terminated string from strdup, freed once here.
    let text = unsafe { CStr::from_ptr(error) }
        .to_string_lossy()
        .into_owned();
    unsafe { libc::free(error.cast()) };
    Some(text)
}

/// Sets libtorch's CUDA numerics for the whole process (it keeps them in one global context).
pub fn set_cuda_numerics(numerics: CudaNumerics) -> Result<(), String> {
    #[cfg(libtorch_device)]
    {
        // SAFETY: plain values in, a malloc'd message or null out.
        match unsafe {
            message(burn_tch_set_cuda_numerics(
                numerics.cudnn_deterministic,
                numerics.cudnn_benchmark,
                numerics.cudnn_tf32,
                numerics.matmul_tf32,
            ))
        } {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }
    #[cfg(not(libtorch_device))]
    {
        let _ = numerics;
        Err(NOT_BUILT.into())
    }
}

/// libtorch's CUDA numerics as they are now, read back from its global context.
pub fn cuda_numerics() -> Result<CudaNumerics, String> {
    #[cfg(libtorch_device)]
    {
        let mut n = CudaNumerics {
            cudnn_deterministic: false,
            cudnn_benchmark: false,
            cudnn_tf32: false,
            matmul_tf32: false,
        };
        // SAFETY: four live bools to write; a malloc'd message or null out.
        let error = unsafe {
            message(burn_tch_cuda_numerics(
                &mut n.cudnn_deterministic,
                &mut n.cudnn_benchmark,
                &mut n.cudnn_tf32,
                &mut n.matmul_tf32,
            ))
        };
        match error {
            None => Ok(n),
            Some(e) => Err(e),
        }
    }
    #[cfg(not(libtorch_device))]
    Err(NOT_BUILT.into())
}

/// `values` (row-major, of `shape`) as a float tensor on CUDA device `index`, copied through
/// page-locked host memory without the host waiting for the copy (PyTorch's `pin_memory()` then
/// `to(device, non_blocking=True)`): the copy is queued on the current stream behind the
/// kernels already there. Panics with libtorch's message on failure (burn-tch panics on
/// libtorch errors), and when `values` does not have `shape`'s size.
pub fn upload_pinned(values: &[f32], shape: &[usize], index: usize) -> TchTensor {
    upload(values, false, shape, index)
}

/// As [`upload_pinned`], for int64 values.
pub fn upload_pinned_ints(values: &[i64], shape: &[usize], index: usize) -> TchTensor {
    upload(values, true, shape, index)
}

/// `T` is f32 when `integers` is false, i64 when it is true.
fn upload<T>(values: &[T], integers: bool, shape: &[usize], index: usize) -> TchTensor {
    assert_eq!(
        values.len(),
        shape.iter().product::<usize>(),
        "upload_pinned: {} values for shape {shape:?}",
        values.len()
    );
    #[cfg(libtorch_device)]
    {
        let shape: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let mut out: *mut C_tensor = std::ptr::null_mut();
        // SAFETY: `values` holds the product of `shape` elements of the type `integers` names
        // (checked above; the callers pass f32 or i64), read during the call only; the binding
        // writes one new tensor to `out` or returns a malloc'd message.
        let error = unsafe {
            message(burn_tch_upload_pinned(
                values.as_ptr().cast(),
                integers,
                shape.as_ptr(),
                shape.len(),
                index as i64,
                &mut out,
            ))
        };
        if let Some(e) = error {
            panic!("libtorch upload to cuda:{index} failed: {e}");
        }
        assert!(!out.is_null(), "libtorch upload returned no tensor");
        // SAFETY: a new tensor owned by nobody else; tch frees it on drop.
        TchTensor::new(unsafe { tch::Tensor::from_ptr(out) })
    }
    #[cfg(not(libtorch_device))]
    {
        let _ = (integers, index);
        panic!("{NOT_BUILT}")
    }
}

/// True when the bindings above were built (libtorch's headers were found).
pub fn libtorch_device() -> bool {
    cfg!(libtorch_device)
}
