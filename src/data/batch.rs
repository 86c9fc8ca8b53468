//! Moving examples onto a device as tensors.

use burn::prelude::*;
use burn::tensor::TensorData;

use super::SplitData;

/// The examples `range` of `split` as an image batch `[n, c, h, w]`, stored channels-last
/// (NHWC strides): libtorch's CPU convolutions then skip a layout conversion before and after
/// every layer, and every later activation keeps the layout (about 2x faster on the demo).
pub fn images(
    split: &SplitData,
    shape: [usize; 3],
    range: std::ops::Range<usize>,
    device: &Device,
) -> Tensor<4> {
    let [c, h, w] = shape;
    let len = c * h * w;
    let n = range.len();
    let chw = &split.images[range.start * len..range.end * len];
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

/// Class labels `[n]` for `indices`.
pub fn labels(labels: impl IntoIterator<Item = usize>, device: &Device) -> Tensor<1, Int> {
    let data: Vec<i64> = labels.into_iter().map(|l| l as i64).collect();
    let n = data.len();
    Tensor::from_data(TensorData::new(data, [n]), device)
}
