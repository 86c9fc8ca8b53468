//! The paper's Stage 1 claims, each checked against one experiment's numbers: a verdict and
//! a sentence with the numbers behind it.

use serde::Serialize;

use super::ReportData;
use crate::edit::Intervention;
use crate::studies::GroupChange;
use crate::studies::control::ControlRow;
use crate::studies::ranks::BINS;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Holds,
    DoesNotHold,
    /// The experiment lacks what the claim needs (no minority group, no result).
    CannotSay,
}

impl Verdict {
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::DoesNotHold => "does not hold",
            Verdict::CannotSay => "cannot say",
        }
    }

    fn of(holds: bool) -> Verdict {
        if holds { Verdict::Holds } else { Verdict::DoesNotHold }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Claim {
    /// The claim as the paper or slides make it.
    pub claim: &'static str,
    pub verdict: Verdict,
    /// What this experiment shows, with numbers.
    pub evidence: String,
    /// The settings the evidence was measured with.
    pub settings: String,
}

pub use crate::data::minority;

fn names(flags: &[bool], want: bool) -> String {
    let list: Vec<String> =
        flags.iter().enumerate().filter(|(_, m)| **m == want).map(|(g, _)| format!("G{g}")).collect();
    list.join(", ")
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let v: Vec<f64> = values.collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn pp(f: f64) -> String {
    format!("{:.1}", 100.0 * f)
}

/// A claim checked, before its settings are said.
struct Check {
    claim: &'static str,
    verdict: Verdict,
    evidence: String,
}

/// Every claim, in the order of the slides.
pub fn assess(d: &ReportData) -> Vec<Claim> {
    let minority = minority(&d.train_counts);
    let has_both = minority.iter().any(|&m| m) && minority.iter().any(|&m| !m);
    let (bars, rewinds) = (bars_settings(d), rewind_settings(d));
    let at = format!("epoch {}, {}", d.provenance.epoch, d.erm.split);
    [
        (erm(d), at),
        (minority_moves_more(d, &minority, has_both), bars.clone()),
        (noise(d), bars.clone()),
        (reinit(d), bars),
        (ranks(d), rank_settings(d)),
        (sensitive(d, &minority, has_both), rewinds.clone()),
        (deeper(d), rewinds),
        (control(d), control_settings(d)),
    ]
    .into_iter()
    .map(|(c, settings)| Claim { claim: c.claim, verdict: c.verdict, evidence: c.evidence, settings })
    .collect()
}

/// How the interventions chose and counted their neurons.
fn bars_settings(d: &ReportData) -> String {
    let Some(r) = d.bars.results.first() else { return "no intervention ran".into() };
    let q = &r.spec.query;
    let ks: Vec<String> = d.bars.ks.iter().map(usize::to_string).collect();
    format!(
        "top k = {} {} neurons by {}, ranking {}{}, of {} candidates; {} runs of each random change",
        ks.join(", "),
        q.granularity,
        q.criterion,
        q.scope,
        if q.normalize_layers { ", score ÷ layer mean" } else { ", raw scores" },
        r.candidates,
        r.spec.repeats
    )
}

fn rank_settings(d: &ReportData) -> String {
    let s = &d.ranks.spec;
    format!(
        "top {}% of {} {} neurons, ranked globally = {} per score and group",
        100.0 * s.fraction,
        d.ranks.candidates,
        s.granularity,
        d.ranks.selected
    )
}

fn rewind_settings(d: &ReportData) -> String {
    let s = &d.sensitivity.spec;
    let n: Vec<String> = s.epochs_back.iter().map(usize::to_string).collect();
    format!(
        "each layer rewound alone n = {} epochs back; sensitive: |Δ| ≥ {} points",
        n.join(", "),
        pp(s.threshold)
    )
}

fn control_settings(d: &ReportData) -> String {
    let c = &d.control;
    let rows: Vec<String> = c.rows.iter().map(|r| format!("{}% = {}", 100.0 * r.fraction, r.count)).collect();
    format!(
        "zeroing the top fraction of {} {} neurons by {}, ranked globally ({}); {} random draws",
        c.candidates,
        c.spec.granularity,
        c.spec.criterion,
        rows.join(", "),
        c.spec.repeats
    )
}

fn erm(d: &ReportData) -> Check {
    let claim = "ERM reaches high average accuracy and poor minority-group accuracy.";
    match (d.erm.worst_group_accuracy, d.erm.mean_accuracy_train_weighted, d.erm.worst_group) {
        (Some(w), Some(m), Some(g)) => Check {
            claim,
            verdict: Verdict::of(m - w >= 0.10),
            evidence: format!(
                "At epoch {} on {}, the train-weighted mean accuracy is {}% and the worst group (G{g}) {}%, {} points lower.",
                d.provenance.epoch,
                d.erm.split,
                pp(m),
                pp(w),
                pp(m - w)
            ),
        },
        _ => Check { claim, verdict: Verdict::CannotSay, evidence: "No group accuracy was measured.".into() },
    }
}

fn minority_moves_more(d: &ReportData, minority: &[bool], has_both: bool) -> Check {
    let claim =
        "Disturbing the critical neurons changes minority-group accuracy more than majority-group accuracy.";
    if !has_both {
        return Check {
            claim,
            verdict: Verdict::CannotSay,
            evidence: "Every group has a similar share of the training data.".into(),
        };
    }
    let (mut more, mut total) = (0, 0);
    let (mut min_all, mut maj_all) = (Vec::new(), Vec::new());
    for r in &d.bars.results {
        let side = |want: bool| {
            mean(
                r.groups.iter().filter(|g| minority.get(g.group) == Some(&want)).filter_map(|g| g.abs_change),
            )
        };
        if let (Some(a), Some(b)) = (side(true), side(false)) {
            total += 1;
            more += usize::from(a > b);
            min_all.push(a);
            maj_all.push(b);
        }
    }
    let (a, b) = (mean(min_all.into_iter()).unwrap_or(0.0), mean(maj_all.into_iter()).unwrap_or(0.0));
    Check {
        claim,
        verdict: if total == 0 { Verdict::CannotSay } else { Verdict::of(2 * more > total) },
        evidence: format!(
            "Minority groups ({}) move more than majority groups ({}) in {more} of {total} interventions \
             (mean |Δ| {} vs {} points over all of them).",
            names(minority, true),
            names(minority, false),
            pp(a),
            pp(b)
        ),
    }
}

/// Mean |Δ| over every group and k of the interventions `matches` picks.
fn mean_abs(d: &ReportData, matches: fn(&Intervention) -> bool) -> Option<f64> {
    mean(
        d.bars
            .results
            .iter()
            .filter(|r| matches(&r.spec.intervention))
            .flat_map(|r| r.groups.iter().filter_map(|g| g.abs_change)),
    )
}

fn noise(d: &ReportData) -> Check {
    let claim = "Random noise moves accuracy far less than zero-out or re-initialisation.";
    let n = mean_abs(d, |i| matches!(i, Intervention::Noise { .. }));
    let z = mean_abs(d, |i| matches!(i, Intervention::ZeroOut));
    let r = mean_abs(d, |i| matches!(i, Intervention::Reinit { .. }));
    match (n, z, r) {
        (Some(n), Some(z), Some(r)) => Check {
            claim,
            verdict: Verdict::of(n < 0.5 * z.min(r)),
            evidence: format!(
                "Mean |Δ| over groups and k: noise {}, zero-out {}, re-init {} points.",
                pp(n),
                pp(z),
                pp(r)
            ),
        },
        _ => Check {
            claim,
            verdict: Verdict::CannotSay,
            evidence: "The report ran without noise, zero-out or re-init.".into(),
        },
    }
}

fn reinit(d: &ReportData) -> Check {
    let claim = "Re-initialising the critical neurons looks like zeroing them.";
    let z = mean_abs(d, |i| matches!(i, Intervention::ZeroOut));
    let r = mean_abs(d, |i| matches!(i, Intervention::Reinit { .. }));
    match (z, r) {
        (Some(z), Some(r)) => Check {
            claim,
            verdict: Verdict::of(z.max(r) <= 2.0 * z.min(r) || (z - r).abs() < 0.01),
            evidence: format!(
                "Mean |Δ| over groups and k: re-init {} and zero-out {} points (within a factor of two counts as alike).",
                pp(r),
                pp(z)
            ),
        },
        _ => Check {
            claim,
            verdict: Verdict::CannotSay,
            evidence: "The report ran without zero-out or re-init.".into(),
        },
    }
}

fn ranks(d: &ReportData) -> Check {
    let claim =
        "The top neurons by gradient sit in the top 5% by magnitude, and the reverse (the 95-100% bin).";
    let top = |pick: fn(&crate::studies::ranks::GroupRanks) -> &Vec<usize>| {
        let all: usize = d.ranks.groups.iter().map(|g| pick(g).iter().sum::<usize>()).sum();
        let last: usize = d.ranks.groups.iter().map(|g| pick(g).get(BINS - 1).copied().unwrap_or(0)).sum();
        (last, all)
    };
    let (a, an) = top(|g| &g.magnitude_rank_of_top_gradient);
    let (b, bn) = top(|g| &g.gradient_rank_of_top_magnitude);
    Check {
        claim,
        verdict: if an + bn == 0 { Verdict::CannotSay } else { Verdict::of(2 * (a + b) >= an + bn) },
        evidence: format!(
            "Over all groups, {a} of {an} top-gradient neurons are in the top 5% by magnitude and {b} of {bn} \
             top-magnitude neurons in the top 5% by a group's gradient ({} granularity, top {}%).",
            d.ranks.spec.granularity,
            100.0 * d.ranks.spec.fraction
        ),
    }
}

fn sensitive(d: &ReportData, minority: &[bool], has_both: bool) -> Check {
    let claim = "Minority groups have more sensitive layers than majority groups.";
    if !has_both {
        return Check {
            claim,
            verdict: Verdict::CannotSay,
            evidence: "Every group has a similar share of the training data.".into(),
        };
    }
    let s = &d.sensitivity;
    let mut more = 0;
    let mut parts = Vec::new();
    for (i, n) in s.spec.epochs_back.iter().enumerate() {
        let counts = &s.counts[i];
        let side = |want: bool| {
            mean(
                counts
                    .iter()
                    .enumerate()
                    .filter(|(g, _)| minority.get(*g) == Some(&want))
                    .map(|(_, &c)| c as f64),
            )
            .unwrap_or(0.0)
        };
        let (a, b) = (side(true), side(false));
        more += usize::from(a > b);
        parts.push(format!("n = {n}: {a:.1} vs {b:.1}"));
    }
    let total = s.spec.epochs_back.len();
    Check {
        claim,
        verdict: Verdict::of(2 * more > total),
        evidence: format!(
            "Minority groups have more sensitive layers (mean per group) than majority groups at {more} of {total} \
             rewinding distances ({}).",
            parts.join("; ")
        ),
    }
}

fn deeper(d: &ReportData) -> Check {
    let claim = "Rewinding further back makes more layers sensitive.";
    let s = &d.sensitivity;
    let totals: Vec<usize> = s.counts.iter().map(|c| c.iter().sum()).collect();
    let rising = totals.windows(2).filter(|w| w[1] >= w[0]).count();
    let (first, last) = (totals.first().copied().unwrap_or(0), totals.last().copied().unwrap_or(0));
    let listed: Vec<String> =
        s.spec.epochs_back.iter().zip(&totals).map(|(n, t)| format!("{t} at n = {n}")).collect();
    Check {
        claim,
        verdict: if totals.len() < 2 { Verdict::CannotSay } else { Verdict::of(last > first) },
        evidence: format!(
            "Sensitive (layer, group) pairs: {}; the count does not fall in {rising} of {} steps.",
            listed.join(", "),
            totals.len().saturating_sub(1)
        ),
    }
}

/// The change of largest size among the control table's `pick` rows, as the table shows it:
/// (signed change, group, row label).
fn largest_change(
    d: &ReportData,
    pick: fn(&ControlRow) -> &Vec<GroupChange>,
) -> Option<(f64, usize, String)> {
    d.control
        .rows
        .iter()
        .flat_map(|r| pick(r).iter().filter_map(move |g| g.change.map(|c| (c, g.group, row_label(r)))))
        .fold(None, |best, x| match best {
            Some(b) if b.0.abs() >= x.0.abs() => Some(b),
            _ => Some(x),
        })
}

/// A control row's label as the page's table writes it: "1 neuron (0.01%)".
pub(crate) fn row_label(r: &ControlRow) -> String {
    format!("{} ({}%)", crate::figure::count(r.count, "neuron"), 100.0 * r.fraction)
}

/// When several fractions select the same number of neurons, the rows repeat one
/// experiment: said in words.
pub(crate) fn repeated_rows(d: &ReportData) -> Option<String> {
    let rows = &d.control.rows;
    let repeated = rows.windows(2).any(|w| w[0].count == w[1].count);
    repeated.then(|| {
        let shares: Vec<String> = rows.iter().map(|r| format!("{}%", 100.0 * r.fraction)).collect();
        let counts: Vec<String> = rows.iter().map(|r| r.count.to_string()).collect();
        format!(
            "{} of {} {} neurons select {} neurons: rows with the same count zero the same critical \
             neurons, so they repeat one experiment (a finer granularity, kernel or weight, counts more).",
            shares.join(", "),
            d.control.candidates,
            d.control.spec.granularity,
            counts.join(", ")
        )
    })
}

fn control(d: &ReportData) -> Check {
    let claim = "Zeroing as many random non-critical neurons leaves every group's accuracy almost unchanged.";
    let threshold = d.sensitivity.spec.threshold;
    let (Some(random), Some(critical)) =
        (largest_change(d, |r| &r.control), largest_change(d, |r| &r.critical))
    else {
        return Check { claim, verdict: Verdict::CannotSay, evidence: "The control table is empty.".into() };
    };
    let said = |(c, g, row): &(f64, usize, String)| format!("{:+.1} points (G{g}, {row})", 100.0 * c);
    let mut evidence = format!(
        "The table's largest change is {} in a random row and {} in a critical row (\"almost unchanged\": \
         under {} points in size, the sensitivity threshold).",
        said(&random),
        said(&critical),
        pp(threshold)
    );
    if let Some(note) = repeated_rows(d) {
        evidence = format!("{evidence} {note}");
    }
    Check { claim, verdict: Verdict::of(random.0.abs() < threshold), evidence }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minorities_hold_less_than_a_tenth_of_train() {
        // Waterbirds' training groups (METHOD.md) and the demo's.
        assert_eq!(minority(&[3498, 184, 56, 1057]), [false, true, true, false]);
        assert_eq!(minority(&[1460, 80, 20, 440]), [false, true, true, false]);
        assert_eq!(minority(&[100, 100]), [false, false]);
        // CelebA's blond men: 1% of train.
        assert_eq!(minority(&[71629, 66874, 22880, 1387]), [false, false, false, true]);
        assert_eq!(names(&[false, true, true, false], true), "G1, G2");
    }
}
