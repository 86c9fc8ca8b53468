//! Choosing neurons from scores: top-k, top fraction, and the random control.

use std::fmt;
use std::str::FromStr;

use anyhow::{Result, anyhow, bail, ensure};
use rand::seq::index::sample;
use serde::{Deserialize, Serialize};

use super::NeuronId;
use crate::util::rng::seeded;

/// Which neurons of a ranked set to take.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Selection {
    /// The k highest-scoring.
    TopK(usize),
    /// The highest-scoring fraction q of the candidates (at least one neuron), q in (0, 1].
    TopFraction(f64),
    /// The control: `count` neurons drawn at random from outside the top fraction
    /// `outside_top` (seeded by the request's seed).
    Random { count: usize, outside_top: f64 },
    /// Neurons chosen by hand, in the order named (`--neurons`); the ranking only scores
    /// them.
    ByHand(Vec<NeuronId>),
}

/// Neurons taken when a request names no count (the slides' top-3).
pub const DEFAULT_K: usize = 3;

impl Default for Selection {
    fn default() -> Self {
        Selection::TopK(DEFAULT_K)
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
            Selection::ByHand(ids) => write!(f, "chosen by hand ({})", list(ids)),
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

/// `a, b, c`.
pub fn list(ids: &[NeuronId]) -> String {
    ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

impl Selection {
    /// The first `k` neurons it takes: the top k of a ranking, the first k named by hand.
    pub fn first(&self, k: usize) -> Result<Selection> {
        match self {
            Selection::ByHand(ids) => {
                ensure!(k <= ids.len(), "k = {k} but only {} neurons are named", ids.len());
                Ok(Selection::ByHand(ids[..k].to_vec()))
            }
            _ => Ok(Selection::TopK(k)),
        }
    }

    pub fn by_hand(&self) -> bool {
        matches!(self, Selection::ByHand(_))
    }
}

fn check_fraction(q: f64) -> Result<()> {
    ensure!(q.is_finite() && q > 0.0 && q <= 1.0, "fraction q = {q} is outside (0, 1]");
    Ok(())
}

/// Number of neurons in the top fraction `q` of `n` (at least one, when there is one).
pub fn top_count(q: f64, n: usize) -> Result<usize> {
    check_fraction(q)?;
    // The epsilon keeps k/n * n from rounding up to k + 1.
    Ok((((q * n as f64) - 1e-9).ceil() as usize).max(1).min(n))
}

/// The random control of a top selection among `in_scope` neurons: as many neurons as the
/// top holds, drawn from outside it. The top is the fraction q itself, or k of `in_scope`.
pub fn random_control(top: Selection, in_scope: usize) -> Result<Selection> {
    Ok(match top {
        Selection::ByHand(_) => {
            bail!("the random control is drawn outside a ranking's top; neurons chosen by hand have none")
        }
        Selection::TopK(k) => {
            Selection::Random { count: k, outside_top: (k.max(1) as f64 / in_scope.max(1) as f64).min(1.0) }
        }
        Selection::TopFraction(q) => Selection::Random { count: top_count(q, in_scope)?, outside_top: q },
        random @ Selection::Random { .. } => random,
    })
}

/// Neurons a ranking in `scope` draws from: every candidate, or one layer's.
pub(crate) fn in_scope(space: &super::NeuronSpace, scope: &Scope) -> Result<usize> {
    Ok(match scope {
        Scope::Global => space.total(),
        Scope::Layer(name) => space.scope_range(name)?.1.len(),
    })
}

/// Positions of `scores` in descending order (ties: lower position first).
pub(crate) fn descending(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order
}

/// The positions in `members` (ascending global numbers in `space`) of the neurons chosen by
/// hand, in the order named.
pub(crate) fn positions(
    space: &super::NeuronSpace,
    members: &[usize],
    scope: &Scope,
    ids: &[NeuronId],
) -> Result<Vec<usize>> {
    ids.iter()
        .map(|id| {
            let flat = space.number(id)?;
            members.binary_search(&flat).map_err(|_| anyhow!("neuron '{id}' lies outside scope {scope}"))
        })
        .collect()
}

/// The positions in `scores` that `selection` takes, highest score first (random: in draw
/// order). Neurons chosen by hand are found by [`positions`] instead.
pub fn select(scores: &[f32], selection: Selection, seed: u64) -> Result<Vec<usize>> {
    let n = scores.len();
    let order = descending(scores);
    match selection {
        Selection::ByHand(_) => bail!("neurons chosen by hand are found by their ids, not by a score"),
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
    /// Structured tracing: the ranking within one layer, or within one of q, k, v of a fused
    /// attention qkv layer (`blocks.3.attn.qkv:k`) or one head of it (`blocks.3.attn.qkv:k:h2`).
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
pub(crate) fn scoped(
    scores: &[f32],
    space: &super::NeuronSpace,
    scope: &Scope,
    normalize: bool,
) -> Result<(Vec<usize>, Vec<f32>)> {
    let ranges: Vec<std::ops::Range<usize>> = match scope {
        Scope::Global => (0..space.layers.len()).map(|l| space.range(l)).collect(),
        Scope::Layer(name) => vec![space.scope_range(name)?.1],
    };
    let mut members = Vec::new();
    let mut values = Vec::new();
    for range in ranges {
        let layer_scores = &scores[range.clone()];
        let mean = layer_scores.iter().map(|&v| f64::from(v)).sum::<f64>() / layer_scores.len().max(1) as f64;
        let divisor = if normalize && mean > 0.0 { mean as f32 } else { 1.0 };
        members.extend(range);
        values.extend(layer_scores.iter().map(|v| v / divisor));
    }
    Ok((members, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_fraction_takes_at_least_one_and_never_rounds_k_over_n_up() {
        assert_eq!(top_count(0.0001, 338).unwrap(), 1);
        assert_eq!(top_count(3.0 / 338.0, 338).unwrap(), 3);
        assert_eq!(top_count(1.0, 338).unwrap(), 338);
        assert_eq!(top_count(0.5, 0).unwrap(), 0);
        assert!(top_count(0.0, 10).is_err());
        assert!(top_count(1.5, 10).is_err());
    }

    #[test]
    fn the_random_control_excludes_the_top_it_stands_beside() {
        let control = random_control(Selection::TopK(4), 338).unwrap();
        assert_eq!(control, Selection::Random { count: 4, outside_top: 4.0 / 338.0 });
        let control = random_control(Selection::TopFraction(0.05), 338).unwrap();
        assert_eq!(control, Selection::Random { count: 17, outside_top: 0.05 });
        let scores = [5.0, 4.0, 3.0, 2.0, 1.0, 0.0];
        let drawn = select(&scores, random_control(Selection::TopK(2), 6).unwrap(), 0).unwrap();
        assert_eq!(drawn.len(), 2);
        assert!(drawn.iter().all(|&p| p >= 2), "{drawn:?} overlaps the top 2");
    }

    #[test]
    fn selections_are_taken_highest_first_with_ties_by_position() {
        let scores = [1.0, 3.0, 3.0, 2.0];
        assert_eq!(descending(&scores), vec![1, 2, 3, 0]);
        assert_eq!(select(&scores, Selection::TopK(2), 0).unwrap(), vec![1, 2]);
        assert_eq!(select(&scores, Selection::TopFraction(0.75), 0).unwrap(), vec![1, 2, 3]);
        assert!(select(&scores, Selection::TopK(5), 0).is_err());
    }

    #[test]
    fn percentile_ranks_put_the_largest_at_100_and_ties_together() {
        let ranks = crate::neurons::scores::percentile_ranks(&[0.5, 2.0, 0.5, 1.0, 3.0]);
        assert_eq!(ranks, vec![0.0, 75.0, 0.0, 50.0, 100.0]);
        assert_eq!(crate::neurons::scores::percentile_ranks(&[7.0]), vec![100.0]);
    }

    #[test]
    fn in_scope_counts_every_candidate_or_one_layers() {
        use crate::model::{LayerInfo, LayerKind};
        let layer = |name: &str, out| LayerInfo {
            name: name.into(),
            kind: LayerKind::Conv,
            shape: vec![out, 3, 3, 3],
            neurons: out,
            shortcut: false,
            head: false,
            stage: None,
            heads: None,
        };
        let layers = [layer("a", 16), layer("b", 32)];
        let space =
            super::super::NeuronSpace::new(&layers, &Default::default(), super::super::Granularity::Unit)
                .unwrap();
        assert_eq!(in_scope(&space, &Scope::Global).unwrap(), 48);
        assert_eq!(in_scope(&space, &Scope::Layer("b".into())).unwrap(), 32);
        assert!(in_scope(&space, &Scope::Layer("c".into())).is_err());
    }

    #[test]
    fn selections_print_and_parse() {
        assert_eq!("k:3".parse::<Selection>().unwrap(), Selection::TopK(3));
        assert_eq!(Selection::TopFraction(0.05).to_string(), "top 5%");
        assert!("k".parse::<Selection>().is_err());
    }
}
