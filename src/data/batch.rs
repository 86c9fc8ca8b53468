//! Moving examples onto a device as tensors.

use burn::prelude::*;
use burn::tensor::TensorData;

use super::SplitData;

/// The examples `range` of `split` as an image batch `[n, c, h, w]`.
pub fn images(
    split: &SplitData,
    shape: [usize; 3],
    range: std::ops::Range<usize>,
    device: &Device,
) -> Tensor<4> {
    let len: usize = shape.iter().product();
    let n = range.len();
    let data = split.images[range.start * len..range.end * len].to_vec();
    Tensor::from_data(TensorData::new(data, [n, shape[0], shape[1], shape[2]]), device)
}

/// Class labels `[n]` for `indices`.
pub fn labels(labels: impl IntoIterator<Item = usize>, device: &Device) -> Tensor<1, Int> {
    let data: Vec<i64> = labels.into_iter().map(|l| l as i64).collect();
    let n = data.len();
    Tensor::from_data(TensorData::new(data, [n]), device)
}
