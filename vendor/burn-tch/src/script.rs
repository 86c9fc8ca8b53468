//! memscope: a TorchScript module run on the same libtorch as the backend, bound by hand in
//! `src/ffi/script.cpp` (tch's `CModule` lists parameters only, not buffers such as
//! BatchNorm's running statistics). See README.md.

#[cfg(libtorch_script)]
use std::ffi::{CStr, CString, c_char, c_void};
#[cfg(libtorch_script)]
use torch_sys::C_tensor;

#[cfg(libtorch_script)]
unsafe extern "C" {
    fn burn_tch_script_load(path: *const c_char, cuda: i64, out: *mut *mut c_void) -> *mut c_char;
    fn burn_tch_script_free(module: *mut c_void);
    fn burn_tch_script_tensors(
        module: *mut c_void,
        data: *mut c_void,
        f: extern "C" fn(*mut c_void, *const c_char, bool, *mut C_tensor),
    ) -> *mut c_char;
    fn burn_tch_script_forward(
        module: *mut c_void,
        input: *const C_tensor,
        grad: bool,
        out: *mut *mut C_tensor,
    ) -> *mut c_char;
}

#[cfg(not(libtorch_script))]
const NOT_BUILT: &str = "burn-tch was built without libtorch's headers (src/ffi/script.cpp)";

/// One of a module's tensors, by its state-dict name.
pub struct NamedTensor {
    /// `layer1.0.conv1.weight`, `bn1.running_mean`, …
    pub name: String,
    /// A buffer (running statistics, …) rather than a parameter.
    pub buffer: bool,
    /// A handle on the module's own tensor: `set_data` on it changes the module.
    pub tensor: tch::Tensor,
}

/// A loaded TorchScript module, in eval mode.
pub struct ScriptModule {
    #[cfg(libtorch_script)]
    handle: *mut c_void,
}

// SAFETY: the module is only reached through `&mut self` or `&self` methods that libtorch
// allows from any thread; it is never shared without the caller's own lock (not `Sync`).
unsafe impl Send for ScriptModule {}

/// The binding's error message, if any.
///
/// # Safety
///
/// `error` is null or a string the binding allocated with malloc.
#[cfg(libtorch_script)]
unsafe fn message(error: *mut c_char) -> Result<(), String> {
    if error.is_null() {
        return Ok(());
    }
    // SAFETY: a NUL-terminated string from strdup, freed once here.
    let text = unsafe { CStr::from_ptr(error) }.to_string_lossy().into_owned();
    unsafe { libc::free(error.cast()) };
    Err(text)
}

#[cfg(libtorch_script)]
extern "C" fn collect(data: *mut c_void, name: *const c_char, buffer: bool, tensor: *mut C_tensor) {
    // SAFETY: `data` is the `Vec` passed by `tensors`, `name` a live C string, `tensor` a new
    // handle the callee owns.
    let out = unsafe { &mut *data.cast::<Vec<NamedTensor>>() };
    let name = unsafe { CStr::from_ptr(name) }.to_string_lossy().into_owned();
    out.push(NamedTensor { name, buffer, tensor: unsafe { tch::Tensor::from_ptr(tensor) } });
}

impl ScriptModule {
    /// Loads the module saved at `path` (`torch.jit.save`) onto the CPU (`cuda: None`) or a
    /// CUDA device, in eval mode.
    pub fn load(path: &std::path::Path, cuda: Option<usize>) -> Result<ScriptModule, String> {
        #[cfg(libtorch_script)]
        {
            let path = CString::new(path.to_string_lossy().as_bytes()).map_err(|e| e.to_string())?;
            let cuda = cuda.map_or(-1, |i| i as i64);
            let mut handle = std::ptr::null_mut();
            // SAFETY: a live C string and an out pointer; a malloc'd message or null back.
            unsafe { message(burn_tch_script_load(path.as_ptr(), cuda, &mut handle))? };
            Ok(ScriptModule { handle })
        }
        #[cfg(not(libtorch_script))]
        {
            let _ = (path, cuda);
            Err(NOT_BUILT.into())
        }
    }

    /// Every parameter, then every buffer, with its state-dict name.
    pub fn tensors(&self) -> Result<Vec<NamedTensor>, String> {
        #[cfg(libtorch_script)]
        {
            let mut out: Vec<NamedTensor> = Vec::new();
            // SAFETY: a live module, a `Vec` the callback fills during the call.
            unsafe {
                message(burn_tch_script_tensors(
                    self.handle,
                    (&mut out as *mut Vec<NamedTensor>).cast(),
                    collect,
                ))?
            };
            Ok(out)
        }
        #[cfg(not(libtorch_script))]
        Err(NOT_BUILT.into())
    }

    /// `forward(input)`, recording gradients through the module's parameters when `grad` is
    /// set. Fails when the forward pass does, or returns anything but one tensor.
    pub fn forward(&self, input: &tch::Tensor, grad: bool) -> Result<tch::Tensor, String> {
        #[cfg(libtorch_script)]
        {
            let mut out = std::ptr::null_mut();
            // SAFETY: a live module and tensor; a new tensor handle or a message back.
            unsafe {
                message(burn_tch_script_forward(self.handle, input.as_ptr(), grad, &mut out))?;
                Ok(tch::Tensor::from_ptr(out))
            }
        }
        #[cfg(not(libtorch_script))]
        {
            let _ = (input, grad);
            Err(NOT_BUILT.into())
        }
    }
}

impl Drop for ScriptModule {
    fn drop(&mut self) {
        // SAFETY: the handle came from `load` and is freed once.
        #[cfg(libtorch_script)]
        unsafe {
            burn_tch_script_free(self.handle)
        }
    }
}
