//! memscope's bundled spurious digits as a burn data set and batcher.

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::{Dataset, InMemDataset};
use burn::prelude::*;
use memscope_core::data::{GroupedDataset, Split, batch};

/// One image `[c, h, w]` and its class.
#[derive(Clone, Debug)]
pub struct DigitItem {
    pub pixels: Vec<f32>,
    pub label: usize,
}

#[derive(Clone, Debug)]
pub struct DigitBatch {
    pub images: Tensor<4>,
    pub labels: Tensor<1, Int>,
}

/// The examples of `split`, pixels decoded once (the digits are small).
pub fn items(dataset: &GroupedDataset, split: Split) -> anyhow::Result<InMemDataset<DigitItem>> {
    let data = dataset.split(split);
    let indices: Vec<usize> = (0..data.len()).collect();
    let pixels = dataset.images(split, &indices)?;
    let per = pixels.len() / indices.len().max(1);
    let items = pixels.chunks_exact(per.max(1)).zip(&data.labels);
    Ok(InMemDataset::new(items.map(|(p, &label)| DigitItem { pixels: p.to_vec(), label }).collect()))
}

/// Stacks items into a batch with memscope's own pixel layout.
#[derive(Clone, Debug)]
pub struct DigitBatcher {
    pub shape: [usize; 3],
}

impl Batcher<DigitItem, DigitBatch> for DigitBatcher {
    fn batch(&self, items: Vec<DigitItem>, device: &Device) -> DigitBatch {
        let pixels: Vec<f32> = items.iter().flat_map(|i| i.pixels.iter().copied()).collect();
        DigitBatch {
            images: batch::from_chw(&pixels, items.len(), self.shape, device),
            labels: batch::labels(items.iter().map(|i| i.label), device),
        }
    }
}

/// Per-group correct counts of `predict` over `split`, batch by batch.
pub fn correct_per_group(
    dataset: &GroupedDataset,
    split: Split,
    device: &Device,
    predict: impl Fn(Tensor<4>) -> Tensor<2>,
) -> anyhow::Result<Vec<usize>> {
    let data = dataset.split(split);
    let items = items(dataset, split)?;
    let batcher = DigitBatcher { shape: dataset.image_shape };
    let mut correct = vec![0; dataset.group_names.len()];
    let indices: Vec<usize> = (0..items.len()).collect();
    for chunk in indices.chunks(256) {
        let batch = batcher.batch(chunk.iter().filter_map(|&i| items.get(i).ok()).collect(), device);
        let predicted = predict(batch.images).argmax(1).flatten::<1>(0, 1);
        let predicted: Vec<i64> = predicted
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        for (&i, &p) in chunk.iter().zip(&predicted) {
            if p as usize == data.labels[i] {
                correct[data.groups[i]] += 1;
            }
        }
    }
    Ok(correct)
}
