//! Where a tensor lives: which CUDA device a burn device names, uploads to CUDA that do not
//! make the host wait, and the check that two things meeting in one operation share a device.

// burn-tch is deprecated upstream; everything backend-specific stays under `device`.
#![allow(deprecated)]

use burn::module::Module;
use burn::prelude::*;
use burn_tch::LibTorch;

/// The CUDA device `device` computes on (its index), or `None` for the CPU.
pub(crate) fn cuda_index(device: &Device) -> Option<usize> {
    let plain = device.clone().without_autodiff();
    if plain == Device::libtorch() {
        return None;
    }
    (0..tch::Cuda::device_count().max(0) as usize).find(|&i| plain == Device::libtorch_cuda(i))
}

/// The libtorch device of a burn device (its CUDA index, or the CPU): where a TorchScript
/// module and its tensors live.
pub(crate) fn torch_device(device: &Device) -> tch::Device {
    match cuda_index(device) {
        Some(i) => tch::Device::Cuda(i),
        None => tch::Device::Cpu,
    }
}

/// A tensor made from a libtorch one, with `device`'s autodiff (as `from_data` on it would).
fn on<const D: usize, K>(tensor: Tensor<D, K>, device: &Device) -> Tensor<D, K>
where
    K: burn::tensor::kind::Autodiff,
{
    if device.is_autodiff() { tensor.autodiff() } else { tensor }
}

/// `values` (row-major `shape`) as a float tensor on `device` when it is a CUDA device, copied
/// through page-locked memory without the host waiting (the copy runs on the GPU behind the
/// work already queued, while the host prepares the next batch); `None` on the CPU, where the
/// caller builds its tensor as before.
pub(crate) fn upload_floats<const D: usize>(
    values: &[f32],
    shape: [usize; D],
    device: &Device,
) -> Option<Tensor<D>> {
    let index = cuda_index(device)?;
    let tensor = burn_tch::upload_pinned(values, &shape, index);
    Some(on(Tensor::from_primitive::<LibTorch>(tensor), device))
}

/// As [`upload_floats`], for integers (labels, group numbers).
pub(crate) fn upload_ints(values: &[i64], device: &Device) -> Option<Tensor<1, Int>> {
    let index = cuda_index(device)?;
    let tensor = burn_tch::upload_pinned_ints(values, &[values.len()], index);
    Some(on(Tensor::from_primitive::<LibTorch>(tensor), device))
}

/// Panics when `tensor` is not on `device` (autodiff or not): called where tensors from
/// different sources meet (weights and masks, cached activations and a changed network), so
/// that a tensor left on the wrong device fails there with both names, not as a slow run on
/// the CPU or a libtorch error deep in a kernel. Costs one device query.
pub fn assert_on<const D: usize, K>(tensor: &Tensor<D, K>, device: &Device, what: &str)
where
    K: burn::tensor::kind::Basic,
{
    assert_same(&tensor.device(), device, what);
}

/// As [`assert_on`], for every parameter and buffer of `module`.
pub fn assert_module_on<M: Module>(module: &M, device: &Device, what: &str) {
    for actual in module.devices() {
        assert_same(&actual, device, what);
    }
}

/// Panics, naming `what`, when `actual` and `expected` are different devices (autodiff or not).
pub fn assert_same(actual: &Device, expected: &Device, what: &str) {
    let actual = actual.clone().without_autodiff();
    let expected = expected.clone().without_autodiff();
    assert!(actual == expected, "{what} is on {actual:?}, not on the session's device {expected:?}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn the_cpu_has_no_cuda_index_autodiff_or_not() {
        assert_eq!(cuda_index(&Device::libtorch()), None);
        assert_eq!(cuda_index(&Device::libtorch().autodiff()), None);
        assert!(upload_floats(&[1.0, 2.0], [2], &Device::libtorch()).is_none());
        assert!(upload_ints(&[1, 2], &Device::libtorch().autodiff()).is_none());
    }

    #[test]
    fn a_tensor_on_another_device_is_caught() {
        let cpu = Device::libtorch();
        let x = Tensor::<1>::from_data(TensorData::new(vec![1.0f32, 2.0], [2]), &cpu);
        assert_on(&x, &cpu, "x");
        assert_on(&x, &cpu.clone().autodiff(), "x");
        // Naming a CUDA device needs no GPU; the tensor is on the CPU.
        let cuda = Device::libtorch_cuda(0);
        let caught = std::panic::catch_unwind(|| assert_on(&x, &cuda, "the mask"));
        let message = caught.unwrap_err().downcast::<String>().unwrap();
        assert!(message.starts_with("the mask is on"), "{message}");
    }
}
