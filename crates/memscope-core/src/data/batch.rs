//! Moving examples onto a device as tensors.

use anyhow::Result;
use burn::prelude::*;
use burn::tensor::TensorData;

use super::{GroupedDataset, Split};

/// Examples per forward pass during evaluation: on the demo (3x24x24, channels-last, 2 threads)
/// 100 and 200 were fastest and 400 a quarter slower (see BENCHMARKS.md). Larger images will
/// want fewer.
pub const EVAL_BATCH: usize = 100;
/// Examples per backward pass of a gradient score; gradients of larger sets are accumulated.
pub const GRAD_BATCH: usize = 256;

/// How many examples one pass takes. Changing them changes speed and memory, not results
/// (up to float summation order in accumulated gradients).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchSizes {
    pub eval: usize,
    pub gradient: usize,
}

impl Default for BatchSizes {
    fn default() -> Self {
        BatchSizes { eval: EVAL_BATCH, gradient: GRAD_BATCH }
    }
}

/// The examples `indices` of `split` as an image batch `[n, c, h, w]`.
pub fn images(
    dataset: &GroupedDataset,
    split: Split,
    indices: &[usize],
    device: &Device,
) -> Result<Tensor<4>> {
    let values = dataset.images(split, indices)?;
    Ok(from_chw(&values, indices.len(), dataset.image_shape, device))
}

/// `n` images `[c, h, w]` back to back as a batch `[n, c, h, w]`. On the CPU it is stored
/// channels-last (NHWC strides): libtorch's CPU convolutions then skip a layout conversion
/// before and after every layer, and every later activation keeps the layout (about 2x faster
/// on the demo). On CUDA it keeps PyTorch's default layout (contiguous NCHW, so cuDNN chooses
/// the algorithms it chooses for PyTorch) and is uploaded from page-locked memory without the
/// host waiting for the copy.
pub fn from_chw(chw: &[f32], n: usize, shape: [usize; 3], device: &Device) -> Tensor<4> {
    let [c, h, w] = shape;
    if let Some(batch) = crate::device::upload_floats(chw, [n, c, h, w], device) {
        return batch;
    }
    let len = c * h * w;
    let mut hwc = vec![0.0f32; chw.len()];
    for (image, out) in chw.chunks_exact(len).zip(hwc.chunks_exact_mut(len)) {
        for (channel, plane) in image.chunks_exact(h * w).enumerate() {
            for (pixel, &v) in plane.iter().enumerate() {
                out[pixel * c + channel] = v;
            }
        }
    }
    Tensor::<4>::from_data(TensorData::new(hwc, [n, h, w, c]), device).permute([0, 3, 1, 2])
}

/// Class labels `[n]`.
pub fn labels(labels: impl IntoIterator<Item = usize>, device: &Device) -> Tensor<1, Int> {
    let data: Vec<i64> = labels.into_iter().map(|l| l as i64).collect();
    if let Some(labels) = crate::device::upload_ints(&data, device) {
        return labels;
    }
    let n = data.len();
    Tensor::from_data(TensorData::new(data, [n]), device)
}

/// The labels of examples `indices` of `split` as a tensor `[n]`.
pub fn labels_of(
    dataset: &GroupedDataset,
    split: Split,
    indices: &[usize],
    device: &Device,
) -> Tensor<1, Int> {
    let data = dataset.split(split);
    labels(indices.iter().map(|&i| data.labels[i]), device)
}

/// Pixels of `chunks` of `split`, read (and changed by `prepare`, e.g. augmented) on a
/// second thread one chunk ahead of `consume`, which gets each chunk's indices and pixels in
/// order: decoding the next batch overlaps the model's work on this one, and at most three
/// batches of pixels are in memory, their buffers passed back to the reader and reused. An
/// error from either side stops both and is returned.
pub(crate) fn prefetched<'a>(
    dataset: &GroupedDataset,
    split: Split,
    chunks: impl Iterator<Item = &'a [usize]> + Send,
    mut prepare: impl FnMut(&[usize], &mut [f32]) + Send,
    mut consume: impl FnMut(&'a [usize], &[f32]) -> Result<()>,
) -> Result<()> {
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Result<(&'a [usize], Vec<f32>)>>(1);
    let (give_back, returned) = std::sync::mpsc::channel::<Vec<f32>>();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for chunk in chunks {
                let mut pixels = returned.try_recv().unwrap_or_default();
                let item = dataset.images_into(split, chunk, &mut pixels).map(|()| {
                    prepare(chunk, &mut pixels);
                    (chunk, pixels)
                });
                let failed = item.is_err();
                // The receiver is gone when the consumer stopped: stop too.
                if sender.send(item).is_err() || failed {
                    break;
                }
            }
        });
        // Dropping the receiver on an early return ends the reader's loop.
        for item in receiver {
            let (chunk, pixels) = item?;
            consume(chunk, &pixels)?;
            // The reader may have finished: then the buffer is simply dropped.
            let _ = give_back.send(pixels);
        }
        Ok(())
    })
}
