//! The boundary-shift control of an intervention: could one constant added to the logits
//! (two classes: to the logit margin) have changed the same predictions?
//!
//! An intervention that removes what memorised a few examples should change *those*
//! predictions; one that only moves the class boundary changes the predictions of whatever
//! examples sit nearest it, whichever group they belong to. So for each run we look for the
//! constant vector `b` (class 0's entry fixed at 0) whose shifted predictions
//! `argmax(before + b)` agree with the intervention's predictions on the most examples, and
//! count how many of the intervention's changed predictions (its *flips*) it reproduces.
//!
//! Two classes: exact. Example i predicts class 1 once `b₁ > z₀ − z₁`, so sorting those
//! thresholds and sweeping them visits every distinct outcome. More classes: coordinate
//! ascent, each class's constant in turn set to its exact best by the same sweep (the other
//! constants held), until a whole round improves nothing; every step raises the agreement,
//! so it ends, at a shift no single constant can better (not always the global best).
//! Among equally good shifts, the one nearest the current one (first 0) is kept, so a
//! shift that explains nothing is 0 and says so.

use serde::{Deserialize, Serialize};

use crate::eval::predictions;

/// Rounds of coordinate ascent before stopping (each round sweeps every class once; the demo
/// and every case tried need at most 3).
const MAX_ROUNDS: usize = 50;

/// The boundary-shift control of every run of an intervention.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BoundaryShift {
    /// "exact sweep" (two classes) or "coordinate ascent" (more).
    pub method: String,
    /// One fit per run, in run order.
    pub runs: Vec<ShiftFit>,
    /// Means over runs of each run's counts.
    pub mean_flips: f64,
    pub mean_explained: f64,
    pub mean_extra: f64,
    /// Per group, the mean over runs of its flips and of those explained.
    pub mean_group_flips: Vec<f64>,
    pub mean_group_explained: Vec<f64>,
}

/// The best constant shift for one run and what it reproduces.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShiftFit {
    /// The constant added to each class's logit (class 0's is 0); with two classes
    /// `shift[1]` is the constant added to the margin `z₁ − z₀`.
    pub shift: Vec<f64>,
    /// Examples whose predicted class the intervention changed.
    pub flips: usize,
    /// Flips the shift alone reproduces (same new class).
    pub explained: usize,
    /// Examples the intervention left alone whose prediction the shift changes.
    pub extra: usize,
    /// Per group: flips, and flips explained.
    pub group_flips: Vec<usize>,
    pub group_explained: Vec<usize>,
}

impl BoundaryShift {
    /// The control made of each run's [`fit`] on a model of `classes` classes.
    pub fn of(runs: Vec<ShiftFit>, classes: usize, group_count: usize) -> Self {
        let n = runs.len().max(1) as f64;
        let mean = |f: &dyn Fn(&ShiftFit) -> usize| runs.iter().map(|r| f(r) as f64).sum::<f64>() / n;
        let per_group = |f: &dyn Fn(&ShiftFit, usize) -> usize| -> Vec<f64> {
            (0..group_count).map(|g| mean(&|r| f(r, g))).collect()
        };
        BoundaryShift {
            method: if classes <= 2 { "exact sweep" } else { "coordinate ascent" }.into(),
            mean_flips: mean(&|r| r.flips),
            mean_explained: mean(&|r| r.explained),
            mean_extra: mean(&|r| r.extra),
            mean_group_flips: per_group(&|r, g| r.group_flips[g]),
            mean_group_explained: per_group(&|r, g| r.group_explained[g]),
            runs,
        }
    }

    /// The class the mean shift favours (its largest entry; class 0's is 0), `None` when the
    /// shift is 0: with two classes, 1 when the margin moved towards class 1.
    pub fn towards(&self) -> Option<usize> {
        let classes = self.runs.first()?.shift.len();
        let n = self.runs.len() as f64;
        let mean: Vec<f64> =
            (0..classes).map(|k| self.runs.iter().map(|r| r.shift[k]).sum::<f64>() / n).collect();
        let (best, value) =
            mean.iter().copied().enumerate().fold((0, 0.0), |b, (k, v)| if v > b.1 { (k, v) } else { b });
        let lowest = mean.iter().copied().fold(0.0, f64::min);
        (value > lowest).then_some(best).filter(|_| mean.iter().any(|&v| v != 0.0))
    }

    /// "a boundary shift explains 40 of 46 flips", "no constant shift explains these flips",
    /// or "no prediction changed" (with several runs, means to one decimal).
    pub fn sentence(&self) -> String {
        if self.mean_flips == 0.0 {
            "no prediction changed".into()
        } else if self.mean_explained == 0.0 {
            "no constant shift explains these flips".into()
        } else {
            format!(
                "a boundary shift explains {} of {} flips",
                count(self.mean_explained),
                count(self.mean_flips)
            )
        }
    }
}

/// A count, or a mean of counts to one decimal.
pub fn count(value: f64) -> String {
    if value.fract() == 0.0 { format!("{value:.0}") } else { format!("{value:.1}") }
}

/// The best constant shift of `before`'s logits towards `after`'s predictions (see the
/// module's words), and its counts.
pub fn fit(before: &[f32], after: &[f32], classes: usize, groups: &[usize], group_count: usize) -> ShiftFit {
    let classes = classes.max(1);
    let z: Vec<f64> = before.iter().map(|&v| f64::from(v)).collect();
    let was = predictions(before, classes);
    let now = predictions(after, classes);
    let mut b = vec![0.0; classes];
    for _ in 0..MAX_ROUNDS {
        let mut moved = false;
        for k in 1..classes {
            moved |= best_along(&z, &now, classes, k, &mut b);
        }
        if !moved {
            break;
        }
    }
    let shifted: Vec<usize> = z.chunks(classes).map(|row| argmax_shifted(row, &b)).collect();
    let mut out = ShiftFit {
        shift: b,
        flips: 0,
        explained: 0,
        extra: 0,
        group_flips: vec![0; group_count],
        group_explained: vec![0; group_count],
    };
    for i in 0..was.len().min(now.len()) {
        let g = groups.get(i).copied().filter(|&g| g < group_count);
        if was[i] != now[i] {
            out.flips += 1;
            let explained = shifted[i] == now[i];
            out.explained += usize::from(explained);
            if let Some(g) = g {
                out.group_flips[g] += 1;
                out.group_explained[g] += usize::from(explained);
            }
        } else if shifted[i] != was[i] {
            out.extra += 1;
        }
    }
    out
}

/// The arg-max of `row + b` (ties go to the lower class, as [`predictions`]).
fn argmax_shifted(row: &[f64], b: &[f64]) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (j, (&v, &s)) in row.iter().zip(b).enumerate() {
        if v + s > best.1 {
            best = (j, v + s);
        }
    }
    best.0
}

/// Examples whose `argmax(row + b)` is `target`'s class.
fn agreement(z: &[f64], target: &[usize], classes: usize, b: &[f64]) -> usize {
    z.chunks(classes).zip(target).filter(|(row, t)| argmax_shifted(row, b) == **t).count()
}

/// Sets `b[k]` to its exact best with the other constants held: sweeps the thresholds where
/// an example starts to predict `k`. Moves only when that strictly beats the current value;
/// among equally good intervals takes the one nearest it. Whether it moved.
fn best_along(z: &[f64], target: &[usize], classes: usize, k: usize, b: &mut [f64]) -> bool {
    // Per example: the value of b[k] above which it predicts k, and whether it agrees with
    // its target below and above it.
    let mut points: Vec<(f64, i64)> = Vec::with_capacity(target.len());
    let mut below_total = 0i64;
    for (row, &t) in z.chunks(classes).zip(target) {
        let (other, best_other) = (0..classes)
            .filter(|&j| j != k)
            .map(|j| (j, row[j] + b[j]))
            .fold((0, f64::NEG_INFINITY), |best, (j, v)| if v > best.1 { (j, v) } else { best });
        let below = i64::from(other == t);
        let above = i64::from(k == t);
        below_total += below;
        points.push((best_other - row[k], above - below));
    }
    points.sort_by(|a, c| a.0.total_cmp(&c.0));
    let current = agreement(z, target, classes, b) as i64;
    // Intervals between distinct thresholds: (lower end, upper end, agreement inside).
    let mut best: Option<(f64, i64)> = None;
    let mut score = below_total;
    let mut lower = f64::NEG_INFINITY;
    let mut i = 0;
    loop {
        let upper = points.get(i).map_or(f64::INFINITY, |p| p.0);
        if upper > lower {
            let value = representative(lower, upper, b[k]);
            let nearer = |old: f64| (value - b[k]).abs() < (old - b[k]).abs();
            if best.is_none_or(|(v, s)| score > s || (score == s && nearer(v))) {
                best = Some((value, score));
            }
        }
        let Some(&(t, _)) = points.get(i) else { break };
        while points.get(i).is_some_and(|p| p.0 == t) {
            score += points[i].1;
            i += 1;
        }
        lower = t;
    }
    match best {
        Some((value, score)) if score > current => {
            b[k] = value;
            true
        }
        _ => false,
    }
}

/// A value strictly inside `(lower, upper)`: the one nearest `current` when that lies inside,
/// else the midpoint, or one logit beyond the finite end of an unbounded interval.
fn representative(lower: f64, upper: f64, current: f64) -> f64 {
    if lower < current && current < upper {
        current
    } else if lower.is_finite() && upper.is_finite() {
        (lower + upper) / 2.0
    } else if lower.is_finite() {
        lower + 1.0
    } else if upper.is_finite() {
        upper - 1.0
    } else {
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two-class logits with margins `m` (z₀ = 0, z₁ = m).
    fn margins(m: &[f32]) -> Vec<f32> {
        m.iter().flat_map(|&v| [0.0, v]).collect()
    }

    #[test]
    fn a_head_bias_change_is_exactly_a_shift() {
        let before = margins(&[-3.0, -0.5, -0.2, 0.1, 0.4, 2.0]);
        let after = margins(&[-2.3, 0.2, 0.5, 0.8, 1.1, 2.7]);
        let f = fit(&before, &after, 2, &[0, 0, 1, 1, 2, 2], 3);
        assert_eq!((f.flips, f.explained, f.extra), (2, 2, 0));
        assert!(f.shift[1] > 0.5 && f.shift[1] < 3.0, "{:?}", f.shift);
        assert_eq!(BoundaryShift::of(vec![f], 2, 3).towards(), Some(1));
    }

    #[test]
    fn a_lone_flip_with_an_unflipped_example_nearer_the_boundary_is_not_a_shift() {
        let before = margins(&[-3.0, -0.1, -1.0, 0.5]);
        let after = margins(&[-3.0, -0.1, 1.0, 0.5]);
        let f = fit(&before, &after, 2, &[0, 1, 2, 3], 4);
        assert_eq!((f.flips, f.explained, f.extra), (1, 0, 0));
        assert_eq!(f.shift, vec![0.0, 0.0]);
        let none = BoundaryShift::of(vec![f], 2, 4);
        assert_eq!(
            (none.towards(), none.sentence().as_str()),
            (None, "no constant shift explains these flips")
        );
    }

    #[test]
    fn three_classes_find_a_shift_towards_one_class() {
        // Class 2 gains 1.0 everywhere.
        let before: Vec<f32> = vec![1.0, 0.0, 0.5, 0.0, 1.0, 0.2, 0.3, 0.2, 0.0, 2.0, 0.0, 1.5];
        let after: Vec<f32> =
            before.iter().enumerate().map(|(i, &v)| if i % 3 == 2 { v + 1.0 } else { v }).collect();
        let f = fit(&before, &after, 3, &[0, 0, 0, 0], 1);
        assert_eq!((f.flips, f.explained, f.extra), (4, 4, 0));
    }

    #[test]
    fn the_mean_is_over_runs() {
        let before = margins(&[-0.5, 0.5]);
        let runs = [margins(&[0.5, 0.5]), margins(&[-0.5, 0.5])];
        let fits = runs.iter().map(|a| fit(&before, a, 2, &[0, 1], 2)).collect();
        let s = BoundaryShift::of(fits, 2, 2);
        assert_eq!((s.mean_flips, s.mean_explained), (0.5, 0.5));
        assert_eq!(s.mean_group_flips, vec![0.5, 0.0]);
        assert_eq!(s.sentence(), "a boundary shift explains 0.5 of 0.5 flips");
    }
}
