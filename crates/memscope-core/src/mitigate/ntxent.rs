//! NT-Xent, the contrastive loss of SimCLR, exactly as the authors' `utils.nt_xent`: the
//! rows of `a` and `b` are two views of the same examples; each of the 2B rows is an anchor
//! whose positive is its other view and whose negatives are the 2B − 2 rows of the other
//! examples; the denominator holds the positive and the negatives.

use burn::prelude::*;

/// `x / max(‖x‖₂, 1e-12)` per row (`F.normalize(x, dim=-1)`).
pub(crate) fn normalize_rows(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powf_scalar(2.0).sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}

/// 1 where row i and column j are different examples, 0 on the diagonal and at the other
/// view of the same example (`get_negative_mask`), `[2n, 2n]`, made on `device` (a mask
/// uploaded from the host would make every batch wait on CUDA).
fn negative_mask(n: usize, device: &Device) -> Tensor<2> {
    let m = 2 * n;
    let rows = Tensor::<1, Int>::arange(0..m as i64, device).reshape([m, 1]).expand([m, m]);
    let columns = Tensor::<1, Int>::arange(0..m as i64, device).reshape([1, m]).expand([m, m]);
    let other_view = rows.clone().add_scalar(n as i64).remainder_scalar(m as i64);
    // The two are never the same column (n ≥ 1), so each 1 is subtracted at most once.
    let itself = rows.equal(columns.clone()).float();
    let pair = other_view.equal(columns).float();
    itself.ones_like() - itself - pair
}

/// The mean NT-Xent over the 2B anchors of views `a` and `b` (`[B, d]` each) at temperature
/// `tau`: mean of −log(pos / (pos + Σ neg)) with pos = exp(cos(a_i, b_i)/τ) and each neg
/// exp(cos/τ) of a different example. Gradients flow into both views; detach one to stop
/// them on that side.
pub fn nt_xent(a: Tensor<2>, b: Tensor<2>, tau: f64) -> Tensor<1> {
    let [n, _] = a.dims();
    let device = a.device();
    let z1 = normalize_rows(a);
    let z2 = normalize_rows(b);
    let z = Tensor::cat(vec![z1.clone(), z2.clone()], 0); // [2n, d]
    let similarity = z.clone().matmul(z.transpose()).div_scalar(tau).exp(); // [2n, 2n]
    let negatives = (similarity * negative_mask(n, &device)).sum_dim(1).reshape([2 * n]);
    let positive = (z1 * z2).sum_dim(1).reshape([n]).div_scalar(tau).exp();
    let positive = Tensor::cat(vec![positive.clone(), positive], 0); // [2n]
    let ratio = positive.clone() / (positive + negatives);
    ratio.log().neg().mean()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_negative_mask_leaves_out_each_row_itself_and_its_other_view() {
        let device = crate::device::DeviceSpec::Cpu.device().unwrap();
        for n in [1, 2, 3] {
            let got = negative_mask(n, &device).into_data().try_to_vec::<f32>().unwrap();
            let mut want = vec![1.0f32; 4 * n * n];
            for i in 0..2 * n {
                want[i * 2 * n + i] = 0.0;
                want[i * 2 * n + (i + n) % (2 * n)] = 0.0;
            }
            assert_eq!(got, want, "n = {n}");
        }
    }
}
