//! Pixels held in memory: the spurious digits (small enough to generate whole).

use anyhow::{Result, bail, ensure};

use super::{PixelSource, Split};

/// Every image of every split, `[n, c, h, w]` flat per split.
#[derive(Debug)]
pub struct MemoryPixels {
    image_len: usize,
    /// Train, val, test.
    splits: [Vec<f32>; 3],
}

impl MemoryPixels {
    /// `splits` holds the train, val and test images of shape `shape` back to back.
    pub fn new(shape: [usize; 3], splits: [Vec<f32>; 3]) -> Result<MemoryPixels> {
        let image_len: usize = shape.iter().product();
        ensure!(image_len > 0, "image shape {shape:?} has no pixels");
        for (split, values) in Split::ALL.iter().zip(&splits) {
            ensure!(
                values.len() % image_len == 0,
                "{split} pixels: {} values are not a whole number of {shape:?} images",
                values.len()
            );
        }
        Ok(MemoryPixels { image_len, splits })
    }

    /// Number of images held for `split`.
    pub fn len(&self, split: Split) -> usize {
        self.splits[split as usize].len() / self.image_len
    }
}

impl PixelSource for MemoryPixels {
    fn images(&self, split: Split, indices: &[usize]) -> Result<Vec<f32>> {
        let all = &self.splits[split as usize];
        let n = all.len() / self.image_len;
        let mut out = Vec::with_capacity(indices.len() * self.image_len);
        for &i in indices {
            if i >= n {
                bail!("example {i} is not in the {split} split ({n} examples)");
            }
            out.extend_from_slice(&all[i * self.image_len..(i + 1) * self.image_len]);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_gathered_in_the_order_asked_and_bad_indices_refused() {
        let shape = [1, 1, 2];
        let pixels = MemoryPixels::new(shape, [vec![0.0, 1.0, 2.0, 3.0], vec![5.0, 6.0], vec![]]).unwrap();
        assert_eq!(pixels.len(Split::Train), 2);
        assert_eq!(pixels.images(Split::Train, &[1, 0, 1]).unwrap(), vec![2.0, 3.0, 0.0, 1.0, 2.0, 3.0]);
        assert_eq!(pixels.images(Split::Val, &[0]).unwrap(), vec![5.0, 6.0]);
        let error = pixels.images(Split::Test, &[0]).unwrap_err().to_string();
        assert_eq!(error, "example 0 is not in the test split (0 examples)");
        assert!(MemoryPixels::new(shape, [vec![0.0; 3], vec![], vec![]]).is_err());
    }
}
