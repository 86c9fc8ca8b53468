//! Choosing neurons from scores: top-k, top fraction, and the random control.

use std::fmt;
use std::str::FromStr;

use anyhow::{Result, anyhow, bail, ensure};
use rand::seq::index::sample;
use serde::{Deserialize, Serialize};

use crate::util::rng::seeded;

/// Which neurons of a ranked set to take.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Selection {
    /// The k highest-scoring.
    TopK(usize),
    /// The highest-scoring fraction q of the candidates (at least one neuron), q in (0, 1].
    TopFraction(f64),
    /// The control: `count` neurons drawn at random from outside the top fraction
    /// `outside_top` (seeded by the request's seed).
    Random { count: usize, outside_top: f64 },
}

impl Default for Selection {
    fn default() -> Self {
        Selection::TopK(3)
    }
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selection::TopK(k) => write!(f, "top-{k}"),
            Selection::TopFraction(q) => write!(f, "top {}%", 100.0 * q),
            Selection::Random { count, outside_top } => {
                write!(f, "{count} random outside the top {}%", 100.0 * outside_top)
            }
        }
    }
}

impl FromStr for Selection {
    type Err = anyhow::Error;

    /// `k:N`, `q:F` or `random:N:F`.
    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split(':').collect();
        let count =
            |p: &str| p.parse::<usize>().map_err(|_| anyhow!("'{p}' in selection '{s}' is not a count"));
        let fraction =
            |p: &str| p.parse::<f64>().map_err(|_| anyhow!("'{p}' in selection '{s}' is not a number"));
        match parts.as_slice() {
            ["k", n] => Ok(Selection::TopK(count(n)?)),
            ["q", q] => Ok(Selection::TopFraction(fraction(q)?)),
            ["random", n, q] => Ok(Selection::Random { count: count(n)?, outside_top: fraction(q)? }),
            _ => bail!("unknown selection '{s}' (valid: k:N, q:FRACTION, random:N:FRACTION)"),
        }
    }
}

fn check_fraction(q: f64) -> Result<()> {
    ensure!(q.is_finite() && q > 0.0 && q <= 1.0, "fraction q = {q} is outside (0, 1]");
    Ok(())
}

/// Number of neurons in the top fraction `q` of `n`.
pub fn top_count(q: f64, n: usize) -> Result<usize> {
    check_fraction(q)?;
    // The epsilon keeps k/n * n from rounding up to k + 1.
    Ok((((q * n as f64) - 1e-9).ceil() as usize).clamp(1, n))
}

/// Positions of `scores` in descending order (ties: lower position first).
pub fn descending(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order
}

/// The positions in `scores` that `selection` takes, highest score first (random: in draw
/// order).
pub fn select(scores: &[f32], selection: Selection, seed: u64) -> Result<Vec<usize>> {
    let n = scores.len();
    let order = descending(scores);
    match selection {
        Selection::TopK(k) => {
            ensure!(k <= n, "k = {k} is larger than the {n} candidate neurons");
            Ok(order[..k].to_vec())
        }
        Selection::TopFraction(q) => Ok(order[..top_count(q, n)?].to_vec()),
        Selection::Random { count, outside_top } => {
            let excluded = top_count(outside_top, n)?;
            let rest = &order[excluded..];
            ensure!(
                count <= rest.len(),
                "cannot draw {count} control neurons: only {} lie outside the top {}%",
                rest.len(),
                100.0 * outside_top
            );
            let mut rng = seeded(seed, 4);
            Ok(sample(&mut rng, rest.len(), count).into_iter().map(|i| rest[i]).collect())
        }
    }
}

/// Where neurons are ranked: over all candidate layers, or within one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Unstructured: one ranking over every candidate layer (the paper's global top-k).
    #[default]
    Global,
    /// Structured tracing: the ranking within one layer.
    Layer(String),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Global => f.write_str("global"),
            Scope::Layer(name) => write!(f, "layer {name}"),
        }
    }
}

/// The neurons of `scope` (global numbers) and their scores, each divided by its layer's
/// mean score when `normalize` is set (global ranking otherwise favours large layers).
pub fn scoped(
    scores: &[f32],
    space: &super::NeuronSpace,
    scope: &Scope,
    normalize: bool,
) -> Result<(Vec<usize>, Vec<f32>)> {
    let layers: Vec<usize> = match scope {
        Scope::Global => (0..space.layers.len()).collect(),
        Scope::Layer(name) => vec![space.layer_index(name)?],
    };
    let mut members = Vec::new();
    let mut values = Vec::new();
    for l in layers {
        let range = space.range(l);
        let layer_scores = &scores[range.clone()];
        let mean = layer_scores.iter().map(|&v| f64::from(v)).sum::<f64>() / layer_scores.len().max(1) as f64;
        let divisor = if normalize && mean > 0.0 { mean as f32 } else { 1.0 };
        members.extend(range);
        values.extend(layer_scores.iter().map(|v| v / divisor));
    }
    Ok((members, values))
}
