//! The guided tour in a real terminal at 80x24, step by step: every number and panel its
//! words name is read back from what is drawn (and, where the command line gives the same
//! number, from `memscope intervene`). The claims checked, per step:
//!
//! 1. "Epoch panel, last row: val mean M, worst W: group G": the Epoch panel's last row (epoch
//!    40) shows W in its `worst` column and M in its `mean` column; M is the Groups panel's
//!    accuracies weighted by its training counts ("weighted by training shares"); G is the
//!    group with the lowest accuracy in the Groups panel, at W.
//! 2. "Zero the 3 filters of L with the largest gradient of G1's loss": the result's header
//!    says zero-out, top 3, within L, by G1's gradient; L is selected in the Layers panel and is
//!    a conv layer (a 4-d shape: its units are filters); the Δs are the CLI's. "G1 against the
//!    majority (caption)": the caption's minority groups are those under 10% of the Groups
//!    panel's training counts, G1 among them, each with its bar's Δ. "G2 rises as G1 falls: one
//!    shift of every margin explains N of the M flips": N and M are the caption's boundary-shift
//!    line, and G2's Δ is positive. "p pins it".
//! 3. "noise (σ 0.01, 10 runs) on the same 3 filters: G1's Δ against the pin Δ column (the
//!    zero-out)": header noise N(0, 0.01²), top 3, within L, 10 runs; the Δs are the CLI's; a
//!    `pin Δ` column whose values are step 2's Δs, its line naming the zero-out.
//! 4. "Re-initialise the same 3 filters (σ 0.02, 10 runs) … G1 moves as under the zero-out":
//!    header re-init N(0, 0.02²), top 3, within L, 10 runs; G1's Δ has the pinned zero-out's
//!    sign.
//! 5. "Zero 3 filters drawn at random outside the top, 10 draws: the signed mean Δ stays small":
//!    header "3 random of the N−3 units outside the top 3" with N the layer's filters (its
//!    shape's first number), 10 runs; every group's mean Δ is smaller in size than the
//!    zero-out's pinned Δ for G1.
//! 6. "Each histogram bins them by the other score's percentile; "top 5%" counts those in its
//!    top 5%": both histograms are labelled so, each with a "top 5%: a/n" line whose n is the
//!    title's top count.
//! 7. "* marks a group moved by ≥1 point … ←→ changes the distance; the count row sums the
//!    sensitive layers": every value shown with `*` is at least 1 in size and every other is
//!    under 1; the count row equals the `*` per column; → changes the title's distance.
//! 8. "The step-2 zero-out at every epoch, ranked afresh": header "each epoch", zero-out top 3
//!    within L by G1; its epoch-40 row equals step 2's Δs.
//! 9. "✗ right before, wrong after; ✓ wrong before, right after": the header's counts before
//!    and after are step 2's G1 accuracies times 100 examples, before − ✗ + ✓ = after, and the
//!    first image is labelled ✗.
//!
//! On the ViT demo (`d`, then `t`): the words call the units of its (linear) layer "units",
//! never "filters", and say that the model memorized nothing exactly when every Δ drawn is 0.

mod common;

use common::tmux::Tmux;

const BIN: &str = env!("CARGO_BIN_EXE_memscope");

/// The left-hand panels' width at 80 columns: the right-hand ones start after it.
const LEFT: usize = 32;

/// The story's layer on the demo, and its group.
const LAYER: &str = "stage2.block0.conv2";

/// Each line's columns from `from` on (`..LEFT`: the left-hand panels, `LEFT..` the right).
fn columns(screen: &str, range: std::ops::Range<usize>) -> Vec<String> {
    screen.lines().map(|l| l.chars().skip(range.start).take(range.len()).collect()).collect()
}

/// The text of the panel whose top border begins with `title` (in the columns `range`): its
/// title and rows without borders, joined by single spaces, so that wrapped words read on.
/// Empty when no such panel is drawn.
fn panel(screen: &str, range: std::ops::Range<usize>, title: &str) -> String {
    let rows = columns(screen, range);
    let Some(top) = rows.iter().position(|r| r.starts_with(&format!("┌ {title}"))) else {
        return String::new();
    };
    let title = rows[top].trim_start_matches('┌').trim_end().trim_end_matches(['─', '┐']);
    let inner = rows[top + 1..]
        .iter()
        .take_while(|r| !r.starts_with('└'))
        .map(|r| r.trim_start_matches('│').trim_end().trim_end_matches('│'));
    std::iter::once(title)
        .chain(inner)
        .collect::<Vec<_>>()
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn right(screen: &str, title: &str) -> String {
    panel(screen, LEFT..200, title)
}

fn tour(screen: &str) -> String {
    right(screen, "Tour")
}

fn number(word: &str) -> f64 {
    word.trim_end_matches(['%', '*', '│']).parse().unwrap_or_else(|_| panic!("not a number: {word}"))
}

/// The Groups panel: (group, training count, accuracy in %) per row with an accuracy.
fn groups(screen: &str) -> Vec<(usize, f64, f64)> {
    let rows = columns(screen, 0..LEFT);
    let top = rows.iter().position(|r| r.starts_with("┌ Groups")).expect("a Groups panel");
    rows[top + 1..]
        .iter()
        .take_while(|r| !r.starts_with('└'))
        .filter_map(|r| {
            let words: Vec<&str> = r.trim_matches('│').split_whitespace().collect();
            let group = words.first()?.strip_prefix('G')?.parse().ok()?;
            let value = |w: &str| w.trim_end_matches('%').parse::<f64>().ok();
            Some((group, value(words[words.len() - 2])?, value(words[words.len() - 1])?))
        })
        .collect()
}

/// A group's row of bars: accuracy before and after, Δ, and the pinned Δ where drawn.
#[derive(Debug)]
struct BarRow {
    before: f64,
    delta: f64,
    pin: Option<f64>,
}

/// The Bars view's rows, by group.
fn bars(screen: &str) -> Vec<(usize, BarRow)> {
    columns(screen, LEFT..200)
        .iter()
        .filter_map(|r| {
            let r = r.trim_start_matches('│');
            let group: usize = r.strip_prefix('G')?.split_whitespace().next()?.parse().ok()?;
            let words: Vec<&str> = r.split_whitespace().collect();
            let (before, _) = words.get(1)?.split_once('→')?;
            let signed: Vec<f64> = words
                .iter()
                .filter(|w| w.starts_with(['+', '-']) && w.len() > 1)
                .map(|w| number(w))
                .collect();
            Some((group, BarRow { before: number(before), delta: signed[0], pin: signed.get(1).copied() }))
        })
        .collect()
}

fn delta(rows: &[(usize, BarRow)], group: usize) -> &BarRow {
    &rows.iter().find(|(g, _)| *g == group).unwrap_or_else(|| panic!("no row for G{group}: {rows:?}")).1
}

/// Waits for the Bars view's result whose header says every one of `settings` (not stale)
/// and for a bar row per group.
fn wait_for_bars(t: &Tmux, settings: &[&str]) -> String {
    t.wait_until(&format!("bars of {settings:?}"), |s| {
        let header = right(s, "Δ acc");
        !header.contains("stale") && settings.iter().all(|x| header.contains(x)) && bars(s).len() == 4
    })
}

#[test]
fn the_tour_at_80x24_says_nothing_the_screen_contradicts() {
    let t = Tmux::start_sized("memscope-tour", 80, 24);
    t.line(BIN);
    t.wait_for(&["No intervention yet", "24.0%"]);
    let groups = step_1(&t);
    let zero = steps_2_and_3(&t, &groups);
    steps_4_and_5(&t, &zero);
    steps_6_and_7(&t);
    steps_8_and_9(&t, &zero);
    t.keys(&["t", "q"]);
    t.assert_shell_usable();
}

/// Step 1; returns the Groups panel's rows.
fn step_1(t: &Tmux) -> Vec<(usize, f64, f64)> {
    // Step 1: the Epoch panel's last row and the Groups panel.
    t.keys(&["t"]);
    let screen = t.wait_until("step 1 and the Groups panel's accuracies", |s| {
        s.contains("Tour 1/9") && groups(s).len() == 4
    });
    let text = tour(&screen);
    let last = columns(&screen, 0..LEFT)
        .into_iter()
        .find(|r| r.trim_start_matches('│').trim_start().starts_with("40 "))
        .unwrap_or_else(|| panic!("no row of epoch 40:\n{screen}"));
    assert!(screen.contains("┌ Epoch 41/41 · val worst mean"), "{screen}");
    let words: Vec<&str> = last.trim_matches('│').split_whitespace().collect();
    let (worst, mean) = (words[1], words[2]);
    assert!(text.contains(&format!("val mean {mean}")), "{text}\n{screen}");
    assert!(text.contains(&format!("worst {worst}")), "{text}\n{screen}");
    let groups = groups(&screen);
    let total: f64 = groups.iter().map(|g| g.1).sum();
    let weighted: f64 = groups.iter().map(|g| g.1 * g.2).sum::<f64>() / total;
    assert!((weighted - number(mean)).abs() <= 0.05, "{weighted} vs {mean}:\n{screen}");
    let lowest = groups.iter().min_by(|a, b| a.2.total_cmp(&b.2)).unwrap();
    assert_eq!(lowest.2, number(worst), "{screen}");
    assert!(text.contains(&format!("group G{} in the Groups panel", lowest.0)), "{text}");
    assert!(text.contains("under 10% of training are the minority"), "{text}");

    groups
}

/// Steps 2 and 3 (`p` pins step 2's result); returns step 2's bars.
fn steps_2_and_3(t: &Tmux, groups: &[(usize, f64, f64)]) -> Vec<(usize, BarRow)> {
    let story = ["--within", LAYER, "--group", "G1"];
    let zero_cli = common::cli_changes(&story);
    let noise_cli = common::cli_changes(&[&story[..], &["--kind", "noise"]].concat());
    let total: f64 = groups.iter().map(|g| g.1).sum();
    // Step 2: the zero-out of the story's layer, by G1's gradient.
    t.keys(&["n"]);
    let screen = wait_for_bars(t, &["zero-out top-3 units", &format!("within {LAYER}"), "by grad G1"]);
    let text = tour(&screen);
    assert!(text.contains("Tour 2/9") || screen.contains("Tour 2/9"), "{screen}");
    assert!(
        text.contains(&format!("Zero the 3 filters of {LAYER} with the largest gradient of G1's loss")),
        "{text}"
    );
    let layers = panel(&screen, 0..LEFT, "Layers");
    assert!(layers.contains(&format!("{LAYER} 32x32x3x3")), "a conv layer of 32 filters: {layers}");
    let zero = bars(&screen);
    let shown: Vec<String> = (0..4).map(|g| format!("{:+.1}", delta(&zero, g).delta)).collect();
    assert_eq!(shown, zero_cli, "{screen}");
    let caption = right(&screen, "Δ acc");
    let minority: Vec<String> = groups
        .iter()
        .filter(|g| g.1 < 0.1 * total)
        .map(|g| format!("G{} {:+.0}", g.0, delta(&zero, g.0).delta))
        .collect();
    assert!(minority.contains(&format!("G1 {:+.0}", delta(&zero, 1).delta)), "G1 is a minority group");
    assert!(
        caption.contains(&format!("Minority (<10% of train) {} · majority", minority.join(" "))),
        "{caption}"
    );
    // "G2 rises as G1 falls: one shift of every margin explains N of the M flips": N and M
    // are the caption's boundary-shift line; G2 did rise.
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let line = caption.split_whitespace().collect::<Vec<_>>().join(" ");
    let at = line.find("A boundary shift explains ").expect("the caption's boundary-shift line");
    let said: Vec<&str> = line[at..].split(' ').skip(4).take(3).collect();
    let (n, m) = (said[0], said[2]);
    assert!(words.contains(&format!("explains {n} of the {m} flips")), "{words}\n{line}");
    assert!(words.contains("G2 rises as G1 falls") && delta(&zero, 2).delta > 0.0, "{words}");
    assert!(text.contains("p pins it for step 3"), "{text}");
    t.keys(&["p"]);

    // Step 3: noise on the same filters, the zero-out pinned beside it.
    t.keys(&["n"]);
    let screen = wait_for_bars(t, &["noise N(0, 0.01²) top-3 units", &format!("within {LAYER}"), "10 runs"]);
    let text = tour(&screen);
    assert!(text.contains("Small noise (σ 0.01, 10 runs) on the same 3 filters"), "{text}");
    assert!(text.contains("G1's Δ against the pin Δ column (the zero-out)"), "{text}");
    let noise = bars(&screen);
    let shown: Vec<String> = (0..4).map(|g| format!("{:+.1}", delta(&noise, g).delta)).collect();
    assert_eq!(shown, noise_cli, "{screen}");
    for g in 0..4 {
        assert_eq!(delta(&noise, g).pin, Some(delta(&zero, g).delta), "G{g}'s pin Δ:\n{screen}");
    }
    // The pinned run's settings, at the end of the panel.
    t.keys(&["End"]);
    let screen = t.wait_until("the end of the bars", |s| s.contains("↓0 more"));
    t.keys(&["Home"]);
    assert!(
        right(&screen, "Δ acc").contains("pin Δ (p unpins): epoch 40 · zero-out top-3 units"),
        "{screen}"
    );

    zero
}

/// Steps 4 and 5, against step 2's bars (`zero`).
fn steps_4_and_5(t: &Tmux, zero: &[(usize, BarRow)]) {
    // Step 4: re-initialising the same filters moves G1 the zero-out's way.
    t.keys(&["n"]);
    let screen =
        wait_for_bars(t, &["re-init N(0, 0.02²) top-3 units", &format!("within {LAYER}"), "10 runs"]);
    let text = tour(&screen);
    assert!(text.contains("Re-initialise the same 3 filters (σ 0.02, 10 runs)"), "{text}");
    assert!(text.contains("G1 moves as under the zero-out"), "{text}");
    let reinit = bars(&screen);
    let (now, then) = (delta(&reinit, 1).delta, delta(zero, 1).delta);
    assert!(now.signum() == then.signum() && now != 0.0, "G1: re-init {now}, zero-out {then}:\n{screen}");

    // Step 5: the random control, drawn outside the layer's top 3.
    t.keys(&["n"]);
    let screen = wait_for_bars(
        t,
        &["zero-out 3 random of the 29 units outside the top 3", &format!("within {LAYER}"), "10 runs"],
    );
    let text = tour(&screen);
    assert!(text.contains("Zero 3 filters drawn at random outside the top, 10 draws"), "{text}");
    assert!(text.contains("the signed mean Δ stays small"), "{text}");
    let control = bars(&screen);
    for (g, row) in &control {
        assert!(row.delta.abs() < then.abs(), "G{g}: control {} vs the zero-out's G1 {then}", row.delta);
    }
}

fn steps_6_and_7(t: &Tmux) {
    // Step 6: the rank histograms.
    t.keys(&["n"]);
    let screen = t.wait_until("the rank histograms", |s| right(s, "Ranks").contains("top 5%:"));
    let text = tour(&screen);
    assert!(text.contains("Each histogram bins them by the other score's percentile"), "{text}");
    assert!(text.contains("\"top 5%\" counts those in its top 5%"), "{text}");
    let ranks = right(&screen, "Ranks");
    let top: usize = ranks
        .split("· top ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no top count in the title:\n{screen}"));
    assert!(ranks.contains("|w| percentile of the top by gradient:"), "{ranks}");
    assert!(ranks.contains("gradient percentile of the top by |w|:"), "{ranks}");
    for line in ranks.split("top 5%: ").skip(1) {
        let n: usize = line.split(['/', ' ']).nth(1).unwrap().parse().unwrap();
        assert_eq!(n, top, "{ranks}");
    }

    // Step 7: sensitive layers under rewinding.
    t.keys(&["n"]);
    let screen = t.wait_until("the sensitive layers", |s| right(s, "Rewind").contains("sensitive layers"));
    let text = tour(&screen);
    assert!(text.contains("* marks a group moved by ≥1 point"), "{text}");
    assert!(text.contains("←→ in this panel changes the distance"), "{text}");
    assert_sensitivity_marks(&screen);
    assert!(screen.contains("┌ Rewind 5 epochs back"), "{screen}");
    t.keys(&["Right"]);
    let screen = t.wait_for(&["┌ Rewind 10 epochs back"]);
    assert_sensitivity_marks(&screen);
}

/// Steps 8 and 9, against step 2's bars (`zero`).
fn steps_8_and_9(t: &Tmux, zero: &[(usize, BarRow)]) {
    // Step 8: the zero-out at every epoch; its epoch-40 row is step 2's.
    t.keys(&["n"]);
    let screen = t.wait_until("the epochs", |s| {
        let p = right(s, "Epochs");
        p.contains("each epoch · zero-out top-3 units") && p.contains("by grad G1") && !p.contains("stale")
    });
    assert!(right(&screen, "Epochs").contains(&format!("within {LAYER}")), "{screen}");
    let text = tour(&screen);
    assert!(text.contains(&format!("3 filters of {LAYER} carry G1")), "{text}");
    t.keys(&["End"]);
    let screen = t.wait_until("the epoch-40 row", |s| epoch_row(s, 40).is_some());
    let row = epoch_row(&screen, 40).unwrap();
    let expected: Vec<f64> = (0..4).map(|g| delta(zero, g).delta).collect();
    assert_eq!(row, expected, "{screen}");

    // Step 9: G1's images; the counts are step 2's accuracies.
    t.keys(&["n"]);
    let screen = t.wait_until("the images", |s| right(s, "Images").contains("right of 100 before"));
    let text = tour(&screen);
    assert!(text.contains("✗ right before, wrong after; ✓ wrong before, right after"), "{text}");
    let images = right(&screen, "Images");
    let counts: Vec<f64> = images
        .split("on val ")
        .nth(1)
        .unwrap()
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .take(5)
        .map(|w| w.parse().unwrap())
        .collect();
    // "46 right of 100 before, 4 after · ✗ 42 broken · ✓ 0 fixed"
    let [before, of, after, broken, fixed] = counts[..] else { panic!("{images}") };
    assert_eq!((before, of), (delta(zero, 1).before, 100.0), "{images}");
    assert_eq!(after, before + delta(zero, 1).delta, "{images}");
    assert_eq!(before - broken + fixed, after, "{images}");
    if broken > 0.0 {
        assert!(images.contains("✗ #"), "{images}");
    }
}

/// The Sensitivity view's rows shown: `*` exactly where |Δ| ≥ 1, and the count row (when
/// every layer's row is drawn) the number of `*` per group.
fn assert_sensitivity_marks(screen: &str) {
    let text = right(screen, "Rewind");
    // A layer's row: four signed numbers (the header and the count row have none).
    let signed = |r: &str| -> Vec<String> {
        r.split_whitespace().filter(|w| w.starts_with(['+', '-'])).map(str::to_string).collect()
    };
    let rows: Vec<Vec<String>> = columns(screen, LEFT..200)
        .iter()
        .map(|r| signed(r.trim_matches('│')))
        .filter(|r| r.len() == 4)
        .collect();
    assert!(!rows.is_empty(), "{screen}");
    let mut stars = [0usize; 4];
    for row in &rows {
        for (g, value) in row.iter().enumerate() {
            let marked = value.ends_with('*');
            assert_eq!(marked, number(value).abs() >= 1.0, "{value}:\n{screen}");
            stars[g] += marked as usize;
        }
    }
    let counts: Vec<usize> = text
        .split("sensitive layers ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .take(4)
        .map(|w| w.parse().unwrap())
        .collect();
    if rows.len() == 10 {
        assert_eq!(counts, stars, "{screen}");
    }
}

/// The Epochs view's row of `epoch`, as drawn.
fn epoch_row(screen: &str, epoch: usize) -> Option<Vec<f64>> {
    columns(screen, LEFT..200).iter().find_map(|r| {
        let words: Vec<&str> = r.trim_matches('│').split_whitespace().collect();
        (words.first() == Some(&epoch.to_string().as_str()) && words.len() >= 5)
            .then(|| words[1..5].iter().map(|w| number(w)).collect())
    })
}

#[test]
fn the_tour_on_the_vit_demo_names_units_and_says_when_nothing_moved() {
    let t = Tmux::start_sized("memscope-tour-vit", 80, 24);
    t.line(BIN);
    t.wait_for(&["No intervention yet", "24.0%"]);
    t.keys(&["d"]);
    t.wait_for(&["spurious-digits-vit · epoch"]);
    t.keys(&["t", "n"]);
    let screen = t.wait_until("step 2's bars", |s| {
        let header = right(s, "Δ acc");
        s.contains("Tour 2/9")
            && header.contains("zero-out top-3 units")
            && !header.contains("stale")
            && bars(s).len() == 4
    });
    let text = tour(&screen);
    assert!(text.contains("Zero the 3 units of"), "{text}");
    assert!(!text.contains("filter"), "{text}");
    // The story's layer is a linear one: a shape of two numbers.
    let layers = columns(&screen, 0..LEFT);
    let layer = text.split("units of ").nth(1).unwrap().split(' ').next().unwrap();
    let row = layers.iter().find(|r| r.contains(layer)).unwrap_or_else(|| panic!("{layer}:\n{screen}"));
    let shape = row.trim_matches('│').split_whitespace().nth(1);
    assert!(shape.is_none_or(|s| s.split('x').count() == 2), "{row}");
    let still = bars(&screen).iter().all(|(_, r)| r.delta == 0.0);
    let said = text.contains("Every Δ is 0: the model memorized nothing in these units.");
    assert_eq!(said, still, "{text}\n{screen}");
    t.keys(&["t", "q"]);
    t.assert_shell_usable();
}
