//! memscope: one Adam step on one parameter through libtorch's fused kernel
//! (`at::_fused_adam_`, what `torch.optim.Adam(fused=True)` runs), bound by hand in
//! `src/ffi/optim.cpp`: tch binds no optimizer kernel, and burn's Adam takes about a dozen
//! element-wise operations per parameter, most of them allocating. See README.md.

use crate::TchTensor;

/// Adam's settings for one step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    /// The learning rate.
    pub lr: f64,
    /// The first moment's decay.
    pub beta_1: f64,
    /// The second moment's decay.
    pub beta_2: f64,
    /// Added to the bias-corrected √(second moment) (PyTorch's placement).
    pub epsilon: f64,
    /// L2 penalty: `weight_decay × parameter` added to the gradient (not decoupled).
    pub weight_decay: f64,
    /// The step's number, 1 for the first.
    pub step: usize,
}

/// True when [`adam_step`] is available (libtorch's headers were found at build time).
pub fn libtorch_optim() -> bool {
    cfg!(libtorch_optim)
}

/// `param` after one Adam step with gradient `grad`, and the updated first and second moments
/// (`None`: zeros, the first step), as PyTorch's Adam computes them. A tensor whose storage
/// nothing else holds is updated in place; a shared one (the previous model's parameter, a
/// cloned optimizer's moments) is copied first. `None` when burn-tch was built without the
/// binding ([`libtorch_optim`]); panics with libtorch's message on a libtorch error, as every
/// burn-tch operation does.
pub fn adam_step(
    param: TchTensor,
    grad: TchTensor,
    moments: Option<(TchTensor, TchTensor)>,
    settings: &AdamStep,
) -> Option<(TchTensor, TchTensor, TchTensor)> {
    #[cfg(libtorch_optim)]
    {
        let mut param = writable(param);
        let mut grad = writable(grad);
        let (mut m, mut v) = match moments {
            Some((m, v)) => (writable(m), writable(v)),
            None => (param.zeros_like(), param.zeros_like()),
        };
        // SAFETY: four live tensors; the binding updates the three it is given as mutable in
        // place and returns null or a malloc'd message.
        let error = unsafe {
            burn_tch_adam_step(
                param.as_mut_ptr(),
                grad.as_mut_ptr(),
                m.as_mut_ptr(),
                v.as_mut_ptr(),
                settings.step as i64,
                settings.lr,
                settings.beta_1,
                settings.beta_2,
                settings.weight_decay,
                settings.epsilon,
            )
        };
        if !error.is_null() {
            // SAFETY: a NUL-terminated string from strdup, freed once here.
            let message = unsafe { std::ffi::CStr::from_ptr(error) }
                .to_string_lossy()
                .into_owned();
            unsafe { libc::free(error.cast()) };
            panic!("libtorch Adam step failed: {message}");
        }
        Some((TchTensor::new(param), TchTensor::new(m), TchTensor::new(v)))
    }
    #[cfg(not(libtorch_optim))]
    {
        let _ = (param, grad, moments, settings);
        None
    }
}

/// The tensor itself when its storage is this handle's alone, else a copy.
#[cfg(libtorch_optim)]
fn writable(tensor: TchTensor) -> tch::Tensor {
    match tensor.can_mut() {
        true => tensor.tensor,
        false => tensor.tensor.copy(),
    }
}

#[cfg(libtorch_optim)]
unsafe extern "C" {
    fn burn_tch_adam_step(
        param: *mut torch_sys::C_tensor,
        grad: *mut torch_sys::C_tensor,
        exp_avg: *mut torch_sys::C_tensor,
        exp_avg_sq: *mut torch_sys::C_tensor,
        step: i64,
        lr: f64,
        beta1: f64,
        beta2: f64,
        weight_decay: f64,
        eps: f64,
    ) -> *mut std::ffi::c_char;
}
