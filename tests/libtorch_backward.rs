//! The vendored burn-tch's convolution gradients, training-mode batch norm and relu gradient
//! (libtorch's `convolution_backward`, `native_batch_norm_backward`, `threshold_backward`; see
//! vendor/burn-tch/README.md) against a direct computation: the definitions' loops in f64 on
//! small random tensors. For
//! the convolution, the shapes ResNets use (3x3 stride 1 and 2, the 1x1 stride-2 shortcut,
//! the 7x7 stride-2 stem) and the options they can take (dilation, groups, depthwise, bias,
//! asymmetric padding, channels-last input).

use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::module::{batch_norm_train, conv2d};
use burn::tensor::ops::ConvOptions;
use memscope_core::device::DeviceSpec;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Copy, Debug)]
struct Case {
    name: &'static str,
    batch: usize,
    c_in: usize,
    c_out: usize,
    size: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    /// (begin, end) per spatial axis.
    padding: [(usize, usize); 2],
    dilation: [usize; 2],
    groups: usize,
    bias: bool,
    channels_last: bool,
}

const BASE: Case = Case {
    name: "3x3 stride 1 pad 1",
    batch: 2,
    c_in: 4,
    c_out: 6,
    size: [7, 6],
    kernel: [3, 3],
    stride: [1, 1],
    padding: [(1, 1), (1, 1)],
    dilation: [1, 1],
    groups: 1,
    bias: false,
    channels_last: false,
};

fn cases() -> Vec<Case> {
    vec![
        BASE,
        Case { name: "3x3 stride 1, channels-last", channels_last: true, ..BASE },
        Case { name: "3x3 stride 2 pad 1", stride: [2, 2], size: [8, 7], ..BASE },
        Case {
            name: "1x1 stride 2 (shortcut)",
            kernel: [1, 1],
            stride: [2, 2],
            padding: [(0, 0); 2],
            ..BASE
        },
        Case {
            name: "7x7 stride 2 pad 3 (stem), bias, channels-last",
            c_in: 3,
            size: [12, 11],
            kernel: [7, 7],
            stride: [2, 2],
            padding: [(3, 3); 2],
            bias: true,
            channels_last: true,
            ..BASE
        },
        Case { name: "3x3 dilation 2 pad 2", dilation: [2, 2], padding: [(2, 2); 2], ..BASE },
        Case { name: "3x3 groups 2 stride 2, bias", groups: 2, stride: [2, 2], bias: true, ..BASE },
        Case { name: "3x3 depthwise", c_out: 4, groups: 4, ..BASE },
        Case {
            name: "3x2 kernel, stride (2, 1), asymmetric padding",
            kernel: [3, 2],
            stride: [2, 1],
            padding: [(1, 0), (0, 1)],
            ..BASE
        },
    ]
}

fn random(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn output_size(c: &Case, axis: usize) -> usize {
    let (begin, end) = c.padding[axis];
    (c.size[axis] + begin + end - c.dilation[axis] * (c.kernel[axis] - 1) - 1) / c.stride[axis] + 1
}

struct Reference {
    x: Vec<f64>,
    weight: Vec<f64>,
    bias: Vec<f64>,
}

/// d(Σ conv(x, w, b) · g)/d(x, w, b) by the definition
/// out[n, o, i, j] = b[o] + Σ_{c, p, q} w[o, c, p, q] · x[n, g·cg + c, i·s − pad + p·d, j·s − pad + q·d].
fn reference(c: &Case, x: &[f32], w: &[f32], g: &[f32]) -> Reference {
    let [h, wd] = c.size;
    let [kh, kw] = c.kernel;
    let (ho, wo) = (output_size(c, 0), output_size(c, 1));
    let cg_in = c.c_in / c.groups;
    let cg_out = c.c_out / c.groups;
    let mut gx = vec![0.0f64; c.batch * c.c_in * h * wd];
    let mut gw = vec![0.0f64; c.c_out * cg_in * kh * kw];
    let mut gb = vec![0.0f64; c.c_out];
    for n in 0..c.batch {
        for o in 0..c.c_out {
            let group = o / cg_out;
            for i in 0..ho {
                for j in 0..wo {
                    let go = f64::from(g[((n * c.c_out + o) * ho + i) * wo + j]);
                    gb[o] += go;
                    for ci in 0..cg_in {
                        let channel = group * cg_in + ci;
                        for p in 0..kh {
                            for q in 0..kw {
                                let y =
                                    (i * c.stride[0] + p * c.dilation[0]) as isize - c.padding[0].0 as isize;
                                let z =
                                    (j * c.stride[1] + q * c.dilation[1]) as isize - c.padding[1].0 as isize;
                                if y < 0 || z < 0 || y >= h as isize || z >= wd as isize {
                                    continue;
                                }
                                let xi = ((n * c.c_in + channel) * h + y as usize) * wd + z as usize;
                                let wi = ((o * cg_in + ci) * kh + p) * kw + q;
                                gx[xi] += go * f64::from(w[wi]);
                                gw[wi] += go * f64::from(x[xi]);
                            }
                        }
                    }
                }
            }
        }
    }
    Reference { x: gx, weight: gw, bias: gb }
}

fn assert_close<const D: usize>(case: &str, what: &str, got: Tensor<D>, want: &[f64]) {
    let got: Vec<f32> = got.into_data().convert::<f32>().try_to_vec().unwrap();
    assert_eq!(got.len(), want.len(), "{case}: {what} size");
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (k, (&a, &b)) in got.iter().zip(want).enumerate() {
        assert!(
            (f64::from(a) - b).abs() <= 1e-5 * scale,
            "{case}: {what}[{k}] = {a}, by the definition {b} (scale {scale})"
        );
    }
}

#[test]
#[allow(deprecated)] // burn-tch, the backend memscope runs on (src/device.rs)
fn the_vendored_burn_tch_uses_libtorchs_backward_kernels() {
    assert!(
        burn_tch::libtorch_backward(),
        "burn-tch was built without libtorch's backward kernels (their headers were not found)"
    );
    assert!(
        burn_tch::libtorch_optim(),
        "burn-tch was built without libtorch's fused Adam (its headers were not found): memscope's Adam falls back to burn's, slower"
    );
}

#[test]
fn conv2d_input_weight_and_bias_gradients_match_the_definition() {
    let device = DeviceSpec::Cpu.device().unwrap().autodiff();
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    for c in cases() {
        let [h, w] = c.size;
        let [kh, kw] = c.kernel;
        let (ho, wo) = (output_size(&c, 0), output_size(&c, 1));
        let xs = random(&mut rng, c.batch * c.c_in * h * w);
        let ws = random(&mut rng, c.c_out * (c.c_in / c.groups) * kh * kw);
        let bs = random(&mut rng, c.c_out);
        let gs = random(&mut rng, c.batch * c.c_out * ho * wo);

        let mut x = Tensor::<4>::from_data(TensorData::new(xs.clone(), [c.batch, c.c_in, h, w]), &device);
        if c.channels_last {
            // NHWC strides, as memscope's batches (data::batch::from_chw).
            x = Tensor::<4>::from_data(x.permute([0, 2, 3, 1]).into_data(), &device).permute([0, 3, 1, 2]);
        }
        let x = x.require_grad();
        let weight = Tensor::<4>::from_data(
            TensorData::new(ws.clone(), [c.c_out, c.c_in / c.groups, kh, kw]),
            &device,
        )
        .require_grad();
        let bias =
            c.bias.then(|| Tensor::<1>::from_data(TensorData::new(bs, [c.c_out]), &device).require_grad());
        let g = Tensor::<4>::from_data(TensorData::new(gs.clone(), [c.batch, c.c_out, ho, wo]), &device);
        let options = ConvOptions::new_with_padding(c.stride, c.padding, c.dilation, c.groups);

        let out = conv2d(x.clone(), weight.clone(), bias.clone(), options);
        assert_eq!(out.dims(), [c.batch, c.c_out, ho, wo], "{}: output shape", c.name);
        let grads = (out * g).sum().backward();
        let want = reference(&c, &xs, &ws, &gs);
        assert_close(c.name, "input gradient", x.grad(&grads).unwrap(), &want.x);
        assert_close(c.name, "weight gradient", weight.grad(&grads).unwrap(), &want.weight);
        if let Some(bias) = bias {
            assert_close(c.name, "bias gradient", bias.grad(&grads).unwrap(), &want.bias);
        }
    }
}

/// Training-mode batch norm of `x` (`[n, c, rest]` flat) and the gradients of
/// Σ bn(x) · g by the definition: with x̂ = (x − μ) / √(σ² + ε), μ and σ² (biased) over all
/// but the channel axis (m values each), dβ = Σ g, dγ = Σ g x̂,
/// dx = γ / (m √(σ² + ε)) · (m g − Σ g − x̂ Σ g x̂).
struct BatchNormReference {
    output: Vec<f64>,
    mean: Vec<f64>,
    variance: Vec<f64>,
    x: Vec<f64>,
    gamma: Vec<f64>,
    beta: Vec<f64>,
}

fn batch_norm_reference(
    shape: &[usize],
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    g: &[f32],
) -> BatchNormReference {
    let (n, c) = (shape[0], shape[1]);
    let rest: usize = shape[2..].iter().product();
    let m = (n * rest) as f64;
    let at = |b: usize, ch: usize, k: usize| (b * c + ch) * rest + k;
    let eps = 1e-5;
    let mut r = BatchNormReference {
        output: vec![0.0; x.len()],
        mean: vec![0.0; c],
        variance: vec![0.0; c],
        x: vec![0.0; x.len()],
        gamma: vec![0.0; c],
        beta: vec![0.0; c],
    };
    for ch in 0..c {
        let values = || (0..n).flat_map(move |b| (0..rest).map(move |k| at(b, ch, k)));
        let mean = values().map(|i| f64::from(x[i])).sum::<f64>() / m;
        let variance = values().map(|i| (f64::from(x[i]) - mean).powi(2)).sum::<f64>() / m;
        let inv = 1.0 / (variance + eps).sqrt();
        let xhat = |i: usize| (f64::from(x[i]) - mean) * inv;
        let sum_g: f64 = values().map(|i| f64::from(g[i])).sum();
        let sum_gx: f64 = values().map(|i| f64::from(g[i]) * xhat(i)).sum();
        for i in values() {
            r.output[i] = f64::from(gamma[ch]) * xhat(i) + f64::from(beta[ch]);
            r.x[i] = f64::from(gamma[ch]) * inv / m * (m * f64::from(g[i]) - sum_g - xhat(i) * sum_gx);
        }
        r.mean[ch] = mean;
        r.variance[ch] = variance;
        r.gamma[ch] = sum_gx;
        r.beta[ch] = sum_g;
    }
    r
}

fn check_batch_norm<const D: usize>(
    name: &str,
    shape: [usize; D],
    channels_last: bool,
    rng: &mut ChaCha8Rng,
) {
    let device = DeviceSpec::Cpu.device().unwrap().autodiff();
    let c = shape[1];
    let size: usize = shape.iter().product();
    // Channel means away from 0 and unequal scales, as activations have.
    let xs: Vec<f32> = random(rng, size).iter().enumerate().map(|(i, v)| 2.0 * v + (i % 3) as f32).collect();
    let gammas: Vec<f32> = random(rng, c).iter().map(|v| 1.0 + 0.5 * v).collect();
    let betas = random(rng, c);
    let gs = random(rng, size);
    let mut x = Tensor::<D>::from_data(TensorData::new(xs.clone(), shape), &device);
    if channels_last {
        // Channels-last strides for a 4-d batch (data::batch::from_chw).
        assert_eq!(D, 4);
        let forward: [usize; D] = std::array::from_fn(|i| [0, 2, 3, 1][i]);
        let back: [usize; D] = std::array::from_fn(|i| [0, 3, 1, 2][i]);
        x = Tensor::<D>::from_data(x.permute(forward).into_data(), &device).permute(back);
    }
    let x = x.require_grad();
    let gamma = Tensor::<1>::from_data(TensorData::new(gammas.clone(), [c]), &device).require_grad();
    let beta = Tensor::<1>::from_data(TensorData::new(betas.clone(), [c]), &device).require_grad();
    let g = Tensor::<D>::from_data(TensorData::new(gs.clone(), shape), &device);

    let out = batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5);
    let want = batch_norm_reference(&shape, &xs, &gammas, &betas, &gs);
    assert_close(name, "output", out.output.clone(), &want.output);
    assert_close(name, "mean", out.mean, &want.mean);
    assert_close(name, "biased variance", out.variance, &want.variance);
    let grads = (out.output * g).sum().backward();
    assert_close(name, "input gradient", x.grad(&grads).unwrap(), &want.x);
    assert_close(name, "gamma gradient", gamma.grad(&grads).unwrap(), &want.gamma);
    assert_close(name, "beta gradient", beta.grad(&grads).unwrap(), &want.beta);
}

#[test]
fn batch_norm_train_output_statistics_and_gradients_match_the_definition() {
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    check_batch_norm("[3, 5, 4, 6]", [3, 5, 4, 6], false, &mut rng);
    check_batch_norm("[3, 5, 4, 6] channels-last", [3, 5, 4, 6], true, &mut rng);
    check_batch_norm("[8, 3]", [8, 3], false, &mut rng);
    check_batch_norm("[2, 4, 7]", [2, 4, 7], false, &mut rng);
}

#[test]
fn relu_gradient_passes_where_the_output_is_positive() {
    let device = DeviceSpec::Cpu.device().unwrap().autodiff();
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    let mut xs = random(&mut rng, 60);
    xs[0] = 0.0; // relu'(0) = 0, as PyTorch
    let gs = random(&mut rng, 60);
    let x = Tensor::<2>::from_data(TensorData::new(xs.clone(), [6, 10]), &device).require_grad();
    let g = Tensor::<2>::from_data(TensorData::new(gs.clone(), [6, 10]), &device);
    let grads = (burn::tensor::activation::relu(x.clone()) * g).sum().backward();
    let want: Vec<f64> =
        xs.iter().zip(&gs).map(|(&x, &g)| if x > 0.0 { f64::from(g) } else { 0.0 }).collect();
    assert_close("relu", "input gradient", x.grad(&grads).unwrap(), &want);
}
