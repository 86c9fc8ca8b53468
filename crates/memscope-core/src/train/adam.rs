//! Adam as burn's [`AdamConfig`] defines it (β₁ 0.9, β₂ 0.999, ε added to the
//! bias-corrected √v, weight decay as an L2 term added to the gradient, not decoupled), run
//! as one libtorch fused kernel per parameter (`torch.optim.Adam(fused=True)`'s) instead of
//! burn's dozen element-wise operations: the same numbers to float rounding, the same state
//! ([`AdamState`], so records and burn's Adam read each other's).

use burn::optim::decay::WeightDecayConfig;
use burn::optim::{Adam, AdamConfig, AdamState, AdaptiveMomentumState, LearningRate, Optimizer};
use burn::prelude::*;

use crate::device::fused::{self, AdamStep};

/// burn's and PyTorch's default moment decays.
const BETAS: (f64, f64) = (0.9, 0.999);

/// A drop-in for burn's Adam (`AdamConfig::new().with_epsilon(ε).with_weight_decay(..)`),
/// through libtorch's fused Adam; burn's own where burn-tch was built without it.
#[derive(Clone)]
pub struct FusedAdam {
    epsilon: f64,
    weight_decay: f64,
    /// burn's Adam with the same settings, for a build without the fused kernel.
    fallback: Adam,
}

impl FusedAdam {
    /// Adam with `epsilon` and an L2 penalty `weight_decay` (0: none).
    pub fn new(epsilon: f64, weight_decay: f64) -> FusedAdam {
        let decay = (weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay as f32));
        let fallback = AdamConfig::new()
            .with_beta_1(BETAS.0 as f32)
            .with_beta_2(BETAS.1 as f32)
            .with_epsilon(epsilon as f32)
            .with_weight_decay(decay)
            .build();
        FusedAdam { epsilon, weight_decay: weight_decay.max(0.0), fallback }
    }
}

impl Optimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<AdamState<D>>,
    ) -> (Tensor<D>, Option<AdamState<D>>) {
        if !fused::fused_adam() {
            return self.fallback.step(lr, tensor, grad, state);
        }
        let (time, moments) = match state {
            Some(AdamState { momentum: m }) => (m.time + 1, Some((m.moment_1, m.moment_2))),
            None => (1, None),
        };
        let settings = AdamStep {
            lr,
            beta_1: BETAS.0,
            beta_2: BETAS.1,
            epsilon: self.epsilon,
            weight_decay: self.weight_decay,
            step: time,
        };
        let (tensor, moment_1, moment_2) = fused::adam_step(tensor, grad, moments, &settings);
        (tensor, Some(AdamState::new(AdaptiveMomentumState::new(time, moment_1, moment_2))))
    }

    fn to_device<const D: usize>(state: AdamState<D>, device: &Device) -> AdamState<D> {
        <Adam as Optimizer>::to_device(state, device)
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::TensorData;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    const STEPS: usize = 5;
    const LR: f64 = 1e-2;

    fn device() -> Device {
        crate::device::DeviceSpec::Cpu.device().unwrap()
    }

    /// Values of mixed signs and magnitudes (1e-4 to 1), so that ε matters for some.
    fn values(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.random_range(-1.0f32..1.0) * 10f32.powi(-rng.random_range(0..5))).collect()
    }

    fn host<const D: usize>(t: &Tensor<D>) -> Vec<f32> {
        t.to_data().try_to_vec::<f32>().unwrap()
    }

    /// PyTorch's single-tensor Adam (torch/optim/adam.py, L2 weight decay) in f64.
    fn reference(p0: &[f32], grads: &[Vec<f32>], eps: f64, decay: f64) -> Vec<f64> {
        let (b1, b2) = BETAS;
        let mut p: Vec<f64> = p0.iter().map(|&x| f64::from(x)).collect();
        let (mut m, mut v) = (vec![0.0; p.len()], vec![0.0; p.len()]);
        for (t, g) in grads.iter().enumerate() {
            let t = (t + 1) as i32;
            let (bc1, bc2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
            for i in 0..p.len() {
                let g = f64::from(g[i]) + decay * p[i];
                m[i] = b1 * m[i] + (1.0 - b1) * g;
                v[i] = b2 * v[i] + (1.0 - b2) * g * g;
                p[i] -= LR / bc1 * m[i] / (v[i].sqrt() / bc2.sqrt() + eps);
            }
        }
        p
    }

    /// ‖a − p0 − (b − p0)‖ / ‖b − p0‖: the parameters' changes compared, as Adam's step is
    /// close to lr·sign(g) and single weights barely move.
    fn change_error(a: &[f32], b: &[f64], p0: &[f32]) -> f64 {
        let (mut diff, mut norm) = (0.0, 0.0);
        for i in 0..p0.len() {
            let (da, db) = (f64::from(a[i]) - f64::from(p0[i]), b[i] - f64::from(p0[i]));
            diff += (da - db) * (da - db);
            norm += db * db;
        }
        (diff / norm).sqrt()
    }

    /// Runs `optim` for [`STEPS`] steps from `p0` with `grads`; a gradient is laid out
    /// transposed (not as the parameter) when `transposed`. Checks that the parameter and
    /// moments a caller still holds are left unchanged.
    fn moments(state: &Option<AdamState<2>>) -> Option<(Vec<f32>, Vec<f32>)> {
        state.as_ref().map(|s| (host(&s.momentum.moment_1), host(&s.momentum.moment_2)))
    }

    fn run<O: Optimizer<State<2> = AdamState<2>>>(
        optim: &O,
        p0: &Tensor<2>,
        grads: &[Vec<f32>],
        transposed: bool,
    ) -> Vec<f32> {
        let [rows, cols] = p0.dims();
        let before = host(p0);
        let (mut p, mut state) = (p0.clone(), None::<O::State<2>>);
        for g in grads {
            let grad = match transposed {
                false => Tensor::<2>::from_data(TensorData::new(g.clone(), [rows, cols]), &p0.device()),
                true => {
                    let t: Vec<f32> = (0..rows * cols).map(|i| g[(i % rows) * cols + i / rows]).collect();
                    Tensor::<2>::from_data(TensorData::new(t, [cols, rows]), &p0.device()).swap_dims(0, 1)
                }
            };
            // The previous model's parameter and a copy of the optimizer's moments, still held.
            let (held, kept) = (p.clone(), state.clone());
            let (held_values, kept_values) = (host(&held), moments(&kept));
            (p, state) = optim.step(LR, p, grad, state);
            assert_eq!(host(&held), held_values, "a parameter still held elsewhere was changed");
            assert_eq!(moments(&kept), kept_values, "moments still held elsewhere were changed");
        }
        assert_eq!(host(p0), before);
        host(&p)
    }

    /// The fused Adam takes the steps burn's Adam takes (same ε, same L2 decay) and PyTorch's
    /// Adam computed in f64, to float rounding, with and without weight decay, with ε 1e-8
    /// (the release's) and 1e-5 (burn's default), with the gradient laid out as the
    /// parameter or transposed (copied into the parameter's layout first).
    #[test]
    fn fused_adam_takes_burns_and_pytorchs_steps() {
        let device = device();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (rows, cols) = (6, 9);
        let p0 = values(&mut rng, rows * cols);
        let grads: Vec<Vec<f32>> = (0..STEPS).map(|_| values(&mut rng, rows * cols)).collect();
        let param = Tensor::<2>::from_data(TensorData::new(p0.clone(), [rows, cols]), &device);
        for eps in [1e-8, 1e-5] {
            for decay in [0.0, 0.1] {
                let want = reference(&p0, &grads, eps, decay);
                let burn = AdamConfig::new()
                    .with_epsilon(eps as f32)
                    .with_weight_decay((decay > 0.0).then(|| WeightDecayConfig::new(decay as f32)))
                    .build();
                let theirs = run(&burn, &param, &grads, false);
                let theirs: Vec<f64> = theirs.iter().map(|&x| f64::from(x)).collect();
                assert!(change_error(&run(&burn, &param, &grads, false), &want, &p0) < 1e-5);
                for transposed in [false, true] {
                    let ours = run(&FusedAdam::new(eps, decay), &param, &grads, transposed);
                    let (to_burn, to_torch) =
                        (change_error(&ours, &theirs, &p0), change_error(&ours, &want, &p0));
                    let case = format!("eps {eps}, decay {decay}, transposed {transposed}");
                    assert!(to_burn < 1e-5, "{case}: {to_burn:e} from burn's Adam");
                    assert!(to_torch < 1e-5, "{case}: {to_torch:e} from PyTorch's in f64");
                }
            }
        }
    }
}
