//! `memscope figure diagnostics` against the runs' own records: the figure's numbers are the
//! experiment.ron diagnostics and val accuracies, read here with `ron` and serde alone (not
//! the engine's loader), averaged over seeds by hand; the SVG names every panel and the run
//! that records no diagnostics; the log panels are log scales; a set of runs of which none
//! records diagnostics is refused in one line.

mod common;

use std::path::{Path, PathBuf};

use common::{fails, succeeds};
use memscope_core::figure::{self, Figure};
use regex::Regex;
use serde::Deserialize;

/// What this test reads of an experiment.ron: its checkpoints, and nothing of the engine's.
#[derive(Deserialize)]
struct Record {
    checkpoints: Vec<Checkpoint>,
}

#[derive(Deserialize)]
struct Checkpoint {
    epoch: usize,
    val_accuracy: Vec<Option<f64>>,
    #[serde(default)]
    diagnostics: Option<Terms>,
}

#[derive(Deserialize)]
struct Terms {
    ntxent: f64,
    ce: f64,
    grad_norm: f64,
    distance: f64,
}

fn record(dir: &Path) -> (Record, String) {
    let text = std::fs::read_to_string(dir.join("experiment.ron")).unwrap();
    (ron::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", dir.display())), text)
}

/// (epoch, value) of every epoch that records `name` ("ntxent", "ce", "grad_norm",
/// "distance", or "worst" for the lowest val accuracy).
fn values(record: &Record, name: &str) -> Vec<(usize, f64)> {
    record
        .checkpoints
        .iter()
        .filter_map(|c| {
            let value = match (name, &c.diagnostics) {
                ("worst", _) => c.val_accuracy.iter().flatten().copied().reduce(f64::min),
                (_, None) => None,
                ("ntxent", Some(d)) => Some(d.ntxent),
                ("ce", Some(d)) => Some(d.ce),
                ("grad_norm", Some(d)) => Some(d.grad_norm),
                ("distance", Some(d)) => Some(d.distance),
                _ => panic!("{name}"),
            };
            value.map(|v| (c.epoch, v))
        })
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

fn s(path: &Path) -> String {
    path.display().to_string()
}

/// Two tiny runs: the release's mitigation over seeds 0 and 1 (one line, their mean), and
/// continued ERM (records no diagnostics).
fn tiny_runs(dir: &Path) -> (PathBuf, PathBuf) {
    let (sm, erm) = (dir.join("sm"), dir.join("erm"));
    let tiny = ["--epochs", "2", "--max-per-group", "20", "--no-eval-train"];
    succeeds(&[&["mitigate", "--out", &s(&sm), "--seeds", "0,1"][..], &tiny].concat());
    succeeds(&[&["mitigate", "--method", "erm", "--out", &s(&erm)][..], &tiny].concat());
    (sm, erm)
}

#[test]
fn the_figure_is_the_runs_records_and_names_what_it_leaves_out() {
    let dir = tempfile::tempdir().unwrap();
    let (sm, erm) = tiny_runs(dir.path());
    let (svg, json, png) = (dir.path().join("d.svg"), dir.path().join("d.json"), dir.path().join("d.png"));
    succeeds(&["figure", "diagnostics", &s(&sm), &s(&erm), "--out", &s(&svg), "--json", &s(&json)]);
    let figure: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let runs = figure["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "one line per folder given");

    // The mitigation: each quantity at each epoch is the mean, lowest and highest of its seeds.
    let seeds: Vec<(Record, String)> = ["seed-0", "seed-1"].iter().map(|n| record(&sm.join(n))).collect();
    assert!(seeds.iter().all(|(_, text)| text.contains("ce_on: softmax")));
    let series = |run: &serde_json::Value, quantity: &str| -> Option<Vec<serde_json::Value>> {
        let all = run["series"].as_array().unwrap();
        all.iter().find(|s| s["quantity"] == quantity).map(|s| s["points"].as_array().unwrap().clone())
    };
    let quantities =
        [("ntxent", "ntxent"), ("supervised", "ce"), ("grad-norm", "grad_norm"), ("distance", "distance")];
    for (quantity, field) in quantities.into_iter().chain([("worst-group-val", "worst")]) {
        let points = series(&runs[0], quantity).unwrap_or_else(|| panic!("no {quantity}"));
        let (a, b) = (values(&seeds[0].0, field), values(&seeds[1].0, field));
        let epochs: Vec<usize> = a.iter().map(|p| p.0).collect();
        assert_eq!(epochs, if field == "worst" { vec![0, 1, 2] } else { vec![1, 2] }, "{quantity}");
        assert_eq!(points.len(), a.len(), "{quantity}");
        for ((p, &(epoch, x)), &(_, y)) in points.iter().zip(&a).zip(&b) {
            assert_eq!(p["epoch"], epoch);
            assert_eq!(p["seeds"], 2);
            let got = |k: &str| p[k].as_f64().unwrap();
            assert!(close(got("mean"), (x + y) / 2.0), "{quantity} epoch {epoch}: {p} vs {x}, {y}");
            assert!(close(got("min"), x.min(y)) && close(got("max"), x.max(y)), "{quantity} epoch {epoch}");
        }
    }
    assert_eq!(runs[0]["supervised"], "cross-entropy on the softmax output");
    assert_eq!(runs[0]["label"], "silent-majority (code, probs), augment crop 0.7-1, seeds 0,1");

    // Continued ERM records no diagnostics: only its val accuracy, as recorded.
    let (erm_record, _) = record(&erm);
    for (quantity, _) in quantities {
        assert!(series(&runs[1], quantity).is_none(), "erm has {quantity}");
    }
    let worst = series(&runs[1], "worst-group-val").unwrap();
    let want = values(&erm_record, "worst");
    assert_eq!(worst.len(), want.len());
    for (p, (epoch, v)) in worst.iter().zip(want) {
        assert_eq!(p["epoch"], epoch);
        assert!(close(p["mean"].as_f64().unwrap(), v) && p["seeds"] == 1);
    }

    // The SVG names every panel, the supervised term as the runs recorded it, and the run
    // left out of the diagnostic panels.
    let text = std::fs::read_to_string(&svg).unwrap();
    for panel in [
        "NT-Xent, both terms (nats)",
        "supervised term before λ: cross-entropy on the softmax output",
        "gradient norm (L2, every parameter; log scale)",
        "dense-vs-masked distance (L2 of softmax outputs; log scale)",
        "worst-group val accuracy (%)",
    ] {
        assert!(text.contains(panel), "no panel {panel}");
    }
    assert!(
        text.contains("panels (not recorded): erm seed 0, augment crop 0.7-1."),
        "the caption does not name erm"
    );
    assert!(text.contains("min-max, not a standard deviation"));

    // The JSON draws the same figure; PNG too.
    let again = dir.path().join("again.svg");
    succeeds(&["figure", "diagnostics", "--from", &s(&json), "--out", &s(&again)]);
    assert_eq!(std::fs::read(&again).unwrap(), text.as_bytes());
    succeeds(&["figure", "diagnostics", &s(&sm), "--out", &s(&png)]);
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));

    // A folder whose seeds ran different methods is not one run: refused.
    let mixed = dir.path().join("mixed");
    for (from, to) in [(sm.join("seed-0"), mixed.join("seed-0")), (erm.clone(), mixed.join("seed-1"))] {
        std::fs::create_dir_all(&to).unwrap();
        for entry in std::fs::read_dir(&from).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
    let err = fails(&["figure", "diagnostics", &s(&mixed), "--out", &s(&dir.path().join("x.svg"))]);
    assert!(err.contains("holds runs of silent-majority (code, probs) and of erm"), "{err}");

    // Runs of which none records diagnostics: refused, naming them.
    let err = fails(&["figure", "diagnostics", &s(&erm), "--out", &s(&dir.path().join("x.svg"))]);
    assert!(err.contains("none of these runs records per-epoch diagnostics: erm seed 0"), "{err}");
    assert!(!dir.path().join("x.svg").exists());
}

/// The points of every polyline with `stroke` and width 2 (the runs' mean lines).
fn polylines(svg: &str, stroke: &str) -> Vec<Vec<(f64, f64)>> {
    let re = Regex::new(&format!(
        r#"<polyline fill="none" opacity="1" stroke="{stroke}" stroke-width="2" points="([^"]*)""#
    ))
    .unwrap();
    let point = |p: &str| {
        let (x, y) = p.split_once(',').unwrap();
        (x.parse().unwrap(), y.parse().unwrap())
    };
    re.captures_iter(svg).map(|c| c[1].split_whitespace().map(point).collect()).collect()
}

/// On the fixture (the release's mitigation, the paper variant and continued ERM, three seeds
/// each, 21 epochs): the distance line's heights are the log of the JSON's means and the
/// worst-group line's are linear in them, each read back with two of its points.
#[test]
fn the_log_panels_are_log_scales_and_the_accuracy_panel_is_linear() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/figures/diagnostics.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let fig = Figure::from_json("diagnostics", &text, &path).unwrap();
    let svg = figure::svg(&fig, None).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let run = &json["runs"][0];
    let means = |quantity: &str| -> Vec<f64> {
        let series = run["series"].as_array().unwrap().iter().find(|s| s["quantity"] == quantity).unwrap();
        series["points"].as_array().unwrap().iter().map(|p| p["mean"].as_f64().unwrap()).collect()
    };
    // Run 0 is black; its lines (the legend's swatch aside), top panel first: NT-Xent,
    // supervised, gradient norm, distance (21 points each), worst group (22, with epoch 0).
    let mut lines = polylines(&svg, &figure::style::hex(figure::style::series_rgb(0)));
    lines.retain(|l| l.len() > 2);
    assert_eq!(lines.iter().map(Vec::len).collect::<Vec<_>>(), [21, 21, 21, 21, 22]);
    for (line, values) in [
        (&lines[3], means("distance").iter().map(|v| v.log10()).collect::<Vec<_>>()),
        (&lines[4], means("worst-group-val")),
    ] {
        let (lo, hi) = (0..values.len()).fold((0, 0), |(lo, hi), i| {
            (if values[i] < values[lo] { i } else { lo }, if values[i] > values[hi] { i } else { hi })
        });
        let per_unit = (line[lo].1 - line[hi].1) / (values[hi] - values[lo]);
        assert!(per_unit > 0.0);
        for (i, v) in values.iter().enumerate() {
            let read = values[lo] + (line[lo].1 - line[i].1) / per_unit;
            assert!((read - v).abs() <= 1.0 / per_unit, "point {i}: read {read}, JSON {v}");
        }
    }
}
