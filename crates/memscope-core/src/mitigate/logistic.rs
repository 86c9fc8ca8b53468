//! L1-regularised logistic regression as liblinear defines it (scikit-learn's
//! `LogisticRegression(penalty="l1", solver="liblinear")`): minimise
//! ‖w‖₁ + |b| + C·Σᵢ log(1 + exp(−yᵢ(w·xᵢ + b))), the intercept being a feature of value 1
//! that is penalised like the others (`intercept_scaling = 1`). Solved to optimality by
//! accelerated proximal gradient (FISTA with backtracking and adaptive restart).

use anyhow::{Result, ensure};

/// A fitted binary classifier: the score w·x + b is positive for the positive class.
#[derive(Clone, Debug, PartialEq)]
pub struct Binary {
    pub weights: Vec<f64>,
    pub intercept: f64,
    /// Iterations the solver took.
    pub iterations: usize,
}

/// log(1 + exp(z)) without overflow.
fn softplus(z: f64) -> f64 {
    if z > 0.0 { z + (-z).exp().ln_1p() } else { z.exp().ln_1p() }
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 { 1.0 / (1.0 + (-z).exp()) } else { z.exp() / (1.0 + z.exp()) }
}

/// The smooth part f(θ) = C·Σ log(1 + exp(−yᵢ θ·x̃ᵢ)) and its gradient, θ = [w, b].
struct Problem<'a> {
    x: &'a [f64],
    y: &'a [f64],
    n: usize,
    d: usize,
    c: f64,
}

impl Problem<'_> {
    fn margins(&self, theta: &[f64]) -> Vec<f64> {
        (0..self.n)
            .map(|i| {
                let row = &self.x[i * self.d..(i + 1) * self.d];
                self.y[i] * (row.iter().zip(theta).map(|(a, b)| a * b).sum::<f64>() + theta[self.d])
            })
            .collect()
    }

    fn value(&self, theta: &[f64]) -> f64 {
        self.c * self.margins(theta).iter().map(|&m| softplus(-m)).sum::<f64>()
    }

    fn gradient(&self, theta: &[f64]) -> Vec<f64> {
        let mut g = vec![0.0; self.d + 1];
        for (i, m) in self.margins(theta).into_iter().enumerate() {
            let coefficient = -self.c * self.y[i] * sigmoid(-m);
            let row = &self.x[i * self.d..(i + 1) * self.d];
            for (gj, xj) in g.iter_mut().zip(row) {
                *gj += coefficient * xj;
            }
            g[self.d] += coefficient;
        }
        g
    }
}

/// How far θ is from optimality: the largest violation of the subgradient condition
/// (∇ⱼf + sign θⱼ = 0 where θⱼ ≠ 0, |∇ⱼf| ≤ 1 where θⱼ = 0).
pub fn kkt_violation(gradient: &[f64], theta: &[f64]) -> f64 {
    gradient
        .iter()
        .zip(theta)
        .map(|(&g, &t)| if t != 0.0 { (g + t.signum()).abs() } else { (g.abs() - 1.0).max(0.0) })
        .fold(0.0, f64::max)
}

/// The gradient of the smooth part at `[weights, intercept]` (for checking a solution).
pub fn smooth_gradient(x: &[f64], labels: &[bool], c: f64, weights: &[f64], intercept: f64) -> Vec<f64> {
    let y: Vec<f64> = labels.iter().map(|&l| if l { 1.0 } else { -1.0 }).collect();
    let problem = Problem { x, y: &y, n: labels.len(), d: weights.len(), c };
    let mut theta = weights.to_vec();
    theta.push(intercept);
    problem.gradient(&theta)
}

/// Fits the classifier on `n` rows of `d` features (row-major `x`) and labels (true =
/// positive class), to a largest KKT violation of `tolerance` (or 100,000 iterations).
pub fn fit_l1(x: &[f64], labels: &[bool], d: usize, c: f64, tolerance: f64) -> Result<Binary> {
    let n = labels.len();
    ensure!(n > 0 && x.len() == n * d, "logistic regression: {} values for {n} rows of {d}", x.len());
    ensure!(c > 0.0 && c.is_finite(), "C = {c} must be a positive number");
    let y: Vec<f64> = labels.iter().map(|&l| if l { 1.0 } else { -1.0 }).collect();
    let problem = Problem { x, y: &y, n, d, c };
    let objective = |theta: &[f64]| problem.value(theta) + theta.iter().map(|t| t.abs()).sum::<f64>();
    let prox = |v: &[f64], step: f64| -> Vec<f64> {
        v.iter().map(|&t| t.signum() * (t.abs() - step).max(0.0)).collect()
    };
    let mut theta = vec![0.0; d + 1];
    let mut momentum_point = theta.clone();
    let mut t = 1.0f64;
    let mut lipschitz = 1e-3 * c * n as f64;
    let mut iterations = 0;
    let mut previous = objective(&theta);
    while iterations < 100_000 {
        iterations += 1;
        let g = problem.gradient(&momentum_point);
        let f_at = problem.value(&momentum_point);
        // Backtracking: the quadratic upper bound must hold at the step.
        let next = loop {
            let step: Vec<f64> = momentum_point.iter().zip(&g).map(|(p, gi)| p - gi / lipschitz).collect();
            let candidate = prox(&step, 1.0 / lipschitz);
            let diff: Vec<f64> = candidate.iter().zip(&momentum_point).map(|(a, b)| a - b).collect();
            let bound = f_at
                + diff.iter().zip(&g).map(|(a, b)| a * b).sum::<f64>()
                + 0.5 * lipschitz * diff.iter().map(|v| v * v).sum::<f64>();
            if problem.value(&candidate) <= bound + 1e-12 * bound.abs().max(1.0) {
                break candidate;
            }
            lipschitz *= 2.0;
        };
        let value = objective(&next);
        let t_next = (1.0 + (1.0 + 4.0 * t * t).sqrt()) / 2.0;
        if value > previous {
            // Adaptive restart: drop the momentum when the objective goes up.
            momentum_point = theta.clone();
            t = 1.0;
            continue;
        }
        momentum_point = next.iter().zip(&theta).map(|(a, b)| a + (t - 1.0) / t_next * (a - b)).collect();
        theta = next;
        t = t_next;
        previous = value;
        if kkt_violation(&problem.gradient(&theta), &theta) <= tolerance {
            break;
        }
    }
    let intercept = theta[d];
    theta.truncate(d);
    Ok(Binary { weights: theta, intercept, iterations })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_strong_penalty_gives_all_zeros() {
        // With C tiny, |∇f(0)| = C·|Σ yᵢxᵢ| < 1 for every feature: θ = 0 is optimal.
        let x = vec![1.0, 2.0, -1.0, 0.5, 3.0, -2.0];
        let fit = fit_l1(&x, &[true, false, true], 2, 0.01, 1e-9).unwrap();
        assert_eq!(fit.weights, vec![0.0, 0.0]);
        assert_eq!(fit.intercept, 0.0);
    }
}
