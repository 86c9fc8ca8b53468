//! Figures and the report: every kind draws as SVG and PNG from a fixed result (the JSON in
//! `tests/figures/`, written once by `memscope figure KIND --json` on the demo); the bars and
//! bins read back from the SVG are the result's numbers; `--from` draws what the direct
//! command draws; the report has every section and nothing that reaches the network.

use std::path::{Path, PathBuf};

use memscope_core::figure::{self, Figure, style};
use memscope_core::studies::epochs::EpochSeries;
use memscope_core::studies::grid::InterventionGrid;
use memscope_core::studies::ranks::{BINS, RankStudy};
use memscope_core::studies::sensitivity::SensitivityStudy;
use memscope_core::studies::sweep::Sweep;
use memscope_core::studies::timeline::{MitigationCurves, Timeline};
use regex::Regex;

mod common;

use common::{fails, memscope};

fn fixture(kind: &str) -> (Figure, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/figures").join(format!("{kind}.json"));
    let text = std::fs::read_to_string(&path).unwrap();
    (Figure::from_json(kind, &text, &path).unwrap(), text)
}

/// (x, y, width, height, fill) of every filled rect, in document order.
fn rects(svg: &str) -> Vec<(f64, f64, f64, f64, String)> {
    let re = Regex::new(
        r#"<rect x="(-?[\d.]+)" y="(-?[\d.]+)" width="([\d.]+)" height="([\d.]+)" opacity="[\d.]+" fill="(#[0-9A-F]{6})""#,
    )
    .unwrap();
    re.captures_iter(svg)
        .map(|c| {
            (
                c[1].parse().unwrap(),
                c[2].parse().unwrap(),
                c[3].parse().unwrap(),
                c[4].parse().unwrap(),
                c[5].to_string(),
            )
        })
        .collect()
}

fn group_fill(g: usize) -> String {
    style::hex(style::group_rgb(g))
}

fn is_group_fill(fill: &str, groups: usize) -> bool {
    (0..groups).any(|g| group_fill(g) == fill)
}

#[test]
fn every_kind_draws_as_svg_and_png() {
    for kind in figure::KINDS {
        let (fig, text) = fixture(kind);
        let provenance = Figure::provenance_in(&text);
        let svg = figure::svg(&fig, provenance.as_ref()).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{kind}");
        let (title, _) = fig.title_and_caption();
        assert!(
            svg.contains(&title.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")),
            "{kind}: no title"
        );
        let png = figure::png(&fig, provenance.as_ref()).unwrap();
        let image = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(image.dimensions(), fig.size(), "{kind}");
        // Text and data are drawn: dark pixels (text) and pixels of G0's colour (or a series').
        let dark = image.pixels().filter(|p| p.0.iter().all(|&c| c < 60)).count();
        assert!(dark > 500, "{kind}: {dark} dark pixels");
        let (r, g, b) = style::group_rgb(0);
        let coloured = image.pixels().filter(|p| p.0 == [r, g, b]).count();
        // Mitigation and diagnostics colour methods and runs, the sweep colours cells by their
        // change: no group fill.
        let group_colours = !matches!(kind, "mitigation" | "diagnostics" | "sweep");
        assert!(!group_colours || coloured > 20, "{kind}: {coloured} pixels of G0's colour");
    }
}

#[test]
fn bar_heights_read_back_from_the_svg_are_the_json_changes() {
    let (fig, _) = fixture("bars");
    let Figure::Bars(grid) = &fig else { panic!("not bars") };
    let grid: &InterventionGrid = grid;
    let groups = grid.results[0].groups.len();
    let svg = figure::svg(&fig, None).unwrap();
    let bars: Vec<_> = rects(&svg).into_iter().filter(|r| is_group_fill(&r.4, groups)).collect();
    // Legend swatches are text, so every rect of a group's colour is a bar, in drawing order:
    // panel (intervention), k, group.
    let values: Vec<(usize, f64)> = grid
        .results
        .iter()
        .flat_map(|r| r.groups.iter().map(|g| (g.group, 100.0 * g.change.unwrap())))
        .collect();
    assert_eq!(bars.len(), values.len());
    let (largest, px) = values
        .iter()
        .zip(&bars)
        .map(|((_, v), r)| (v.abs(), r.3))
        .fold((0.0, 0.0), |a, b| if b.0 > a.0 { b } else { a });
    assert!(largest > 1.0, "the fixture changes something");
    let per_point = px / largest;
    for (i, ((g, v), r)) in values.iter().zip(&bars).enumerate() {
        assert_eq!(r.4, group_fill(*g), "bar {i}: colour");
        // Whole pixels: each end of this bar and of the tallest one rounds by up to half a pixel.
        let read = r.3 / per_point;
        assert!(
            (read - v.abs()).abs() <= 1.5 / per_point + 1e-9,
            "bar {i}: read {read:.2}, JSON {v:.2} points"
        );
    }
    // Sign: within a panel, positive bars end and negative bars start at the same zero line.
    let per_panel = grid.ks.len() * groups;
    for (p, chunk) in values.chunks(per_panel).zip(bars.chunks(per_panel)).enumerate() {
        let zeros: Vec<f64> = chunk
            .0
            .iter()
            .zip(chunk.1)
            .filter(|((_, v), _)| v.abs() > 1.0)
            .map(|((_, v), r)| if *v > 0.0 { r.1 + r.3 } else { r.1 })
            .collect();
        assert!(
            zeros.windows(2).all(|w| (w[0] - w[1]).abs() <= 1.0),
            "panel {p}: bars do not share a zero line: {zeros:?}"
        );
    }
}

#[test]
fn histogram_bins_read_back_from_the_svg_are_the_json_counts() {
    let (fig, _) = fixture("ranks");
    let Figure::Ranks(study) = &fig else { panic!("not ranks") };
    let study: &RankStudy = study;
    let svg = figure::svg(&fig, None).unwrap();
    let groups = study.groups.len();
    let bars: Vec<_> = rects(&svg).into_iter().filter(|r| is_group_fill(&r.4, groups)).collect();
    assert_eq!(bars.len(), groups * 2 * BINS);
    let histograms: Vec<&Vec<usize>> = study
        .groups
        .iter()
        .flat_map(|g| [&g.magnitude_rank_of_top_gradient, &g.gradient_rank_of_top_magnitude])
        .collect();
    // Count labels sit centred above their bins: (x, count).
    let texts =
        Regex::new(r#"<text x="(-?\d+)" y="-?\d+" dy="-0.5ex" text-anchor="middle"[^>]*>\s*(\d+)\s*</text>"#)
            .unwrap();
    let labels: Vec<(f64, usize)> =
        texts.captures_iter(&svg).map(|c| (c[1].parse().unwrap(), c[2].parse().unwrap())).collect();
    for (h, (counts, drawn)) in histograms.iter().zip(bars.chunks(BINS)).enumerate() {
        let g = h / 2;
        assert!(drawn.iter().all(|r| r.4 == group_fill(g)));
        let most = *counts.iter().max().unwrap();
        assert!(most > 0, "histogram {h} is empty");
        let tallest = drawn.iter().map(|r| r.3).fold(0.0, f64::max);
        for (b, (&count, r)) in counts.iter().zip(drawn).enumerate() {
            let read = (r.3 / tallest * most as f64).round() as usize;
            assert_eq!(read, count, "histogram {h}, bin {b}");
            // Bins run left to right.
            if b > 0 {
                assert!(r.0 > drawn[b - 1].0);
            }
            if count > 0 {
                let centre = r.0 + r.2 / 2.0;
                assert!(
                    labels.iter().any(|&(x, n)| n == count && (x - centre).abs() <= 1.0),
                    "histogram {h}, bin {b}: no label {count}"
                );
            }
        }
    }
}

#[test]
fn sensitivity_marks_every_sensitive_cell() {
    let (fig, _) = fixture("sensitivity");
    let Figure::Sensitivity(study) = &fig else { panic!("not sensitivity") };
    let study: &SensitivityStudy = study;
    let svg = figure::svg(&fig, None).unwrap();
    let dots = Regex::new(r#"<circle cx="[\d.-]+" cy="[\d.-]+" r="3""#).unwrap().find_iter(&svg).count();
    let sensitive: usize = study.rows.iter().map(|r| r.sensitive.iter().filter(|&&s| s).count()).sum();
    assert_eq!(dots, sensitive);
    let counted: usize = study.counts.iter().flatten().sum();
    assert_eq!(counted, sensitive, "the fixture's counts are its rows' marks");
}

/// Every `<text>` element's content, in document order.
fn texts(svg: &str) -> Vec<String> {
    Regex::new(r"<text[^>]*>\s*([^<]*?)\s*</text>")
        .unwrap()
        .captures_iter(svg)
        .map(|c| c[1].to_string())
        .collect()
}

#[test]
fn sweep_cells_read_back_from_the_svg_are_the_json_changes() {
    let (fig, _) = fixture("sweep");
    let Figure::Sweep(sweep) = &fig else { panic!("not a sweep") };
    let sweep: &Sweep = sweep;
    let svg = figure::svg(&fig, None).unwrap();
    let cell = Regex::new(r"^([+-]\d+\.\d|n/a)$").unwrap();
    let drawn: Vec<String> = texts(&svg).into_iter().filter(|t| cell.is_match(t)).collect();
    // The JSON's changes, by hand: rows in order, groups in order, one decimal of percentage points.
    let mut expected = Vec::new();
    for row in sweep.rows.iter().filter(|r| r.error.is_none()) {
        for g in &row.groups {
            expected.push(match g.change {
                Some(c) => {
                    let tenths = (c * 1000.0).round();
                    if tenths == 0.0 { "+0.0".to_string() } else { format!("{:+.1}", tenths / 10.0) }
                }
                None => "n/a".to_string(),
            });
        }
    }
    assert!(expected.len() >= 4 * 9, "the fixture sweeps the demo's 9 conv layers at least");
    assert_eq!(drawn, expected);
    // The layer the selection does not fit says why instead of a row of numbers.
    let refused: Vec<&str> =
        sweep.rows.iter().filter(|r| r.error.is_some()).map(|r| r.layer.as_str()).collect();
    assert_eq!(refused, ["head"]);
    assert!(texts(&svg).iter().any(|t| t.starts_with("not run: ")));
}

#[test]
fn a_sweep_row_is_intervene_within_that_layer_and_from_json_redraws_it() {
    let dir = temp();
    let d = dir.path();
    run(&["figure", "sweep", "-k", "2", "--out", &path(d, "direct.svg"), "--json", &path(d, "sweep.json")]);
    run(&["figure", "sweep", "--from", &path(d, "sweep.json"), "--out", &path(d, "again.svg")]);
    assert_eq!(std::fs::read(d.join("direct.svg")).unwrap(), std::fs::read(d.join("again.svg")).unwrap());
    let sweep: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("sweep.json")).unwrap()).unwrap();
    for layer in ["stage2.block0.conv2", "stem.conv"] {
        let row = sweep["rows"].as_array().unwrap().iter().find(|r| r["layer"] == layer).unwrap();
        let cli: serde_json::Value = serde_json::from_str(&common::succeeds(&[
            "intervene",
            "-k",
            "2",
            "--within",
            layer,
            "--format",
            "json",
        ]))
        .unwrap();
        let changes = |groups: &serde_json::Value| -> Vec<f64> {
            groups.as_array().unwrap().iter().map(|g| g["change"].as_f64().unwrap()).collect()
        };
        assert_eq!(changes(&row["groups"]), changes(&cli["groups"]), "{layer}");
    }
}

/// The points of every polyline with `stroke` and `width`.
fn polylines(svg: &str, stroke: &str, width: u32) -> Vec<Vec<(f64, f64)>> {
    let re = Regex::new(&format!(
        r#"<polyline fill="none" opacity="1" stroke="{stroke}" stroke-width="{width}" points="([^"]*)""#
    ))
    .unwrap();
    re.captures_iter(svg)
        .map(|c| {
            c[1].split_whitespace()
                .map(|p| {
                    let (x, y) = p.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect()
        })
        .collect()
}

#[test]
fn timeline_and_mitigation_lines_follow_the_json() {
    let (fig, _) = fixture("timeline");
    let Figure::Timeline(t) = &fig else { panic!("not a timeline") };
    let t: &Timeline = t;
    let svg = figure::svg(&fig, None).unwrap();
    let worst = polylines(&svg, "#000000", 4);
    let worst = worst.iter().find(|l| l.len() == t.epochs.len()).expect("the worst-group line");
    // Accuracy 0..100 maps linearly to pixels: read the values back with two points.
    let values: Vec<f64> = t.epochs.iter().map(|e| 100.0 * e.worst_group_accuracy.unwrap()).collect();
    let (lo, hi) = (0..values.len()).fold((0, 0), |(lo, hi), i| {
        (if values[i] < values[lo] { i } else { lo }, if values[i] > values[hi] { i } else { hi })
    });
    assert!(values[hi] - values[lo] > 5.0);
    let per_point = (worst[lo].1 - worst[hi].1) / (values[hi] - values[lo]);
    for (i, v) in values.iter().enumerate() {
        let read = values[lo] + (worst[lo].1 - worst[i].1) / per_point;
        assert!((read - v).abs() <= 1.0 / per_point + 0.2, "epoch {i}: read {read:.2}, JSON {v:.2}");
    }

    let (fig, _) = fixture("mitigation");
    let Figure::Mitigation(m) = &fig else { panic!("not mitigation curves") };
    let m: &MitigationCurves = m;
    let svg = figure::svg(&fig, None).unwrap();
    for run in &m.runs {
        assert!(svg.contains(&run.label), "legend lacks {}", run.label);
    }
    let lines: usize = ["#E69F00", "#56B4E9"].iter().map(|c| polylines(&svg, c, 2).len()).sum();
    assert!(lines >= m.runs.len().min(2));
}

#[test]
fn epoch_series_lines_follow_the_json() {
    let (fig, _) = fixture("epochs");
    let Figure::Epochs(series) = &fig else { panic!("not an epoch series") };
    let series: &EpochSeries = series;
    let svg = figure::svg(&fig, None).unwrap();
    for g in 0..4 {
        // The JSON's signed changes, by hand, in percentage points.
        let values: Vec<f64> =
            series.points.iter().map(|p| 100.0 * p.groups[g].change.expect("every epoch applies")).collect();
        let lines = polylines(&svg, &group_fill(g), 2);
        let line = lines.iter().find(|l| l.len() == values.len()).expect("the group's line");
        // -100..+100 maps linearly to pixels: read the values back with the line's lowest and
        // highest points.
        let (lo, hi) = (0..values.len()).fold((0, 0), |(lo, hi), i| {
            (if values[i] < values[lo] { i } else { lo }, if values[i] > values[hi] { i } else { hi })
        });
        assert!(values[hi] - values[lo] > 5.0, "G{g} changes over training");
        let per_point = (line[lo].1 - line[hi].1) / (values[hi] - values[lo]);
        for (i, v) in values.iter().enumerate() {
            let read = values[lo] + (line[lo].1 - line[i].1) / per_point;
            assert!((read - v).abs() <= 1.0 / per_point + 0.2, "G{g} epoch {i}: read {read:.2}, JSON {v:.2}");
        }
        // Each line's legend names the group and its examples.
        assert!(svg.contains(&format!("G{g} ")), "legend lacks G{g}");
    }
    assert!(svg.contains("(100 examples)"));
}

#[test]
fn an_epoch_series_point_is_intervene_at_that_epoch() {
    let dir = temp();
    let d = dir.path();
    let select = ["--within", "stage2.block0.conv2", "--group", "G1"];
    let mut args = vec!["figure", "epochs"];
    args.extend(select);
    let (svg, json) = (path(d, "e.svg"), path(d, "e.json"));
    args.extend(["--out", &svg, "--json", &json]);
    run(&args);
    let series: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("e.json")).unwrap()).unwrap();
    let points = series["points"].as_array().unwrap();
    assert_eq!(points.len(), 41, "every checkpoint of the demo");
    let changes = |groups: &serde_json::Value| -> Vec<f64> {
        groups.as_array().unwrap().iter().map(|g| g["change"].as_f64().unwrap()).collect()
    };
    for epoch in ["9", "30"] {
        let mut args = vec!["intervene", "--epoch", epoch, "--format", "json"];
        args.extend(select);
        let cli: serde_json::Value = serde_json::from_str(&common::succeeds(&args)).unwrap();
        let point = points.iter().find(|p| p["epoch"].as_u64() == epoch.parse().ok()).unwrap();
        assert_eq!(changes(&point["groups"]), changes(&cli["groups"]), "epoch {epoch}");
    }
}

fn temp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn run(args: &[&str]) {
    let out = memscope().args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

#[test]
fn from_json_draws_what_the_direct_command_draws() {
    let dir = temp();
    let d = dir.path();
    run(&[
        "figure",
        "bars",
        "--kinds",
        "zero,noise",
        "--ks",
        "1,2",
        "--repeats",
        "2",
        "--exclude-head",
        "--out",
        &path(d, "direct.svg"),
        "--json",
        &path(d, "bars.json"),
    ]);
    run(&["figure", "bars", "--from", &path(d, "bars.json"), "--out", &path(d, "again.svg")]);
    let direct = std::fs::read(d.join("direct.svg")).unwrap();
    assert!(!direct.is_empty());
    assert_eq!(direct, std::fs::read(d.join("again.svg")).unwrap());

    // An exported `ranks` result draws as the figure of the same settings.
    let json = common::succeeds(&["ranks", "--fraction", "0.05", "--format", "json"]);
    std::fs::write(d.join("ranks.json"), json).unwrap();
    run(&["figure", "ranks", "--fraction", "0.05", "--out", &path(d, "ranks.svg")]);
    run(&["figure", "ranks", "--from", &path(d, "ranks.json"), "--out", &path(d, "ranks-from.svg")]);
    assert_eq!(std::fs::read(d.join("ranks.svg")).unwrap(), std::fs::read(d.join("ranks-from.svg")).unwrap());
    // And PNG.
    run(&["figure", "ranks", "--from", &path(d, "ranks.json"), "--out", &path(d, "ranks.png")]);
    assert!(std::fs::read(d.join("ranks.png")).unwrap().starts_with(b"\x89PNG"));
}

#[test]
fn bad_inputs_fail_with_one_line_naming_the_file() {
    let dir = temp();
    let d = dir.path();
    let bad = d.join("bad.json");
    std::fs::write(&bad, "{\"groups\": 3}").unwrap();
    let err = fails(&["figure", "ranks", "--from", &bad.display().to_string(), "--out", &path(d, "x.svg")]);
    assert!(err.contains("bad.json") && err.contains("not a rank study"), "{err}");
    let err = fails(&["figure", "timeline", "--out", &path(d, "x.jpg")]);
    assert!(err.contains("x.jpg") && err.contains(".svg or .png"), "{err}");
    let err = fails(&["figure", "ranks", "--from", &path(d, "missing.json"), "--out", &path(d, "x.svg")]);
    assert!(err.contains("missing.json"), "{err}");
    let err = fails(&["report", "--out", &path(d, "r.txt")]);
    assert!(err.contains("r.txt"), "{err}");
    assert!(!d.join("x.svg").exists());
}

#[test]
fn the_report_has_every_section_and_no_external_reference() {
    let dir = temp();
    let out = dir.path().join("report.html");
    run(&["report", "--repeats", "2", "--max-per-group", "40", "--out", &out.display().to_string()]);
    let page = std::fs::read_to_string(&out).unwrap();
    for section in memscope_core::report::SECTIONS {
        assert!(page.contains(&format!("<h2>{}</h2>", section)), "missing section {section}");
    }
    for outside in ["http://", "https://", "src=", "href=", "<script", "url(", "@import", "<link"] {
        assert!(!page.contains(outside), "the page contains {outside}");
    }
    assert_eq!(page.matches("<svg").count(), 4, "timeline, bars, ranks, sensitivity, and no other");
    assert_eq!(page.matches("<li><b>").count(), 8, "a sentence per claim");
    assert!(page.contains("sha256") && page.contains("epoch-040.safetensors"));
    assert!(page.contains("Seed 0"));
}

/// A command's JSON result without its provenance.
fn result(args: &[&str]) -> serde_json::Value {
    let out = memscope().args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let mut value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    value.as_object_mut().unwrap().remove("provenance");
    value
}

/// The report runs each study as its own command does by default: every number on it is the
/// one `ranks`, `sensitivity`, `control`, `figure bars` and `intervene` give with the same
/// split, seed and repeats. Its claims can be judged from its JSON alone.
#[test]
fn the_report_numbers_are_the_commands_numbers() {
    let dir = temp();
    let d = dir.path();
    let common = ["--repeats", "2", "--max-per-group", "40"];
    let report_json = path(d, "report.json");
    run(&[&["report", "--out", &path(d, "r.html"), "--json", &report_json][..], &common].concat());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_json).unwrap()).unwrap();

    let subset = ["--max-per-group", "40"];
    assert_eq!(report["ranks"], result(&[&["ranks", "--format", "json"][..], &subset].concat()));
    assert_eq!(report["sensitivity"], result(&[&["sensitivity", "--format", "json"][..], &subset].concat()));
    assert_eq!(report["control"], result(&[&["control", "--format", "json"][..], &common].concat()));
    let bars_json = path(d, "bars.json");
    run(&[&["figure", "bars", "--out", &path(d, "bars.svg"), "--json", &bars_json][..], &common].concat());
    let mut bars: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&bars_json).unwrap()).unwrap();
    bars.as_object_mut().unwrap().remove("provenance");
    assert_eq!(report["bars"], bars);
    // One cell of the bars: noise at k = 2 (the third intervention's second k).
    let noise =
        result(&[&["intervene", "--kind", "noise", "-k", "2", "--format", "json"][..], &common].concat());
    assert_eq!(report["bars"]["results"][2 * 3 + 1]["groups"], noise["groups"]);
    let info = result(&[&["info", "--format", "json"][..], &subset].concat());
    assert_eq!(report["erm"], info["accuracy"]);

    // A front end without the page: the claims from the numbers read back.
    let data: memscope_core::report::ReportData = serde_json::from_value(report).unwrap();
    let claims = memscope_core::report::claims::assess(&data);
    let page = std::fs::read_to_string(d.join("r.html")).unwrap();
    assert_eq!(claims.len(), 8);
    for claim in claims {
        let class = serde_json::to_value(claim.verdict).unwrap();
        let line = format!(
            "<li><b>{}</b> <span class=\"{}\">[{}]</span> {} <span class=\"settings\">Settings: {}.</span></li>",
            memscope_core::report::escape(claim.claim),
            class.as_str().unwrap(),
            claim.verdict.word(),
            memscope_core::report::escape(&claim.evidence),
            memscope_core::report::escape(&claim.settings)
        );
        assert!(!claim.settings.is_empty(), "{line}");
        assert!(page.contains(&line), "{line}");
    }
}

#[test]
fn the_mitigation_legend_sits_beside_the_lines_and_the_x_axis_ends_at_the_last_epoch() {
    let (fig, _) = fixture("mitigation");
    let Figure::Mitigation(m) = &fig else { panic!("not mitigation curves") };
    let m: &MitigationCurves = m;
    let svg = figure::svg(&fig, None).unwrap();
    // Every run's line (as many points as epochs it recorded) ends left of the legend's text.
    let lines: Vec<Vec<(f64, f64)>> = (0..5)
        .flat_map(|i| polylines(&svg, &style::hex(style::series_rgb(i)), 2))
        .filter(|l| l.len() > 2)
        .collect();
    assert!(lines.len() >= 4, "{} lines", lines.len());
    let right = lines.iter().flatten().map(|p| p.0).fold(f64::MIN, f64::max);
    let text = Regex::new(r#"<text x="([\d.]+)" y="[\d.]+"[^>]*>\s*([^<]*?)\s*</text>"#).unwrap();
    let methods = ["silent-majority", "erm", "group-dro", "dfr"];
    let legend: Vec<f64> = text
        .captures_iter(&svg)
        .filter(|c| methods.contains(&&c[2]))
        .map(|c| c[1].parse().unwrap())
        .collect();
    assert_eq!(legend.len(), methods.len(), "one legend entry per method");
    assert!(legend.iter().all(|&x| x > right), "legend at {legend:?}, lines up to {right}");
    // The x axis ends at the last epoch, under the last points, with a tick at each epoch.
    let black = polylines(&svg, "#000000", 1);
    let along = |l: &&Vec<(f64, f64)>| l.len() == 2 && l[0].1 == l[1].1;
    let axis =
        black.iter().filter(along).max_by(|a, b| (a[1].0 - a[0].0).abs().total_cmp(&(b[1].0 - b[0].0).abs()));
    let axis = axis.expect("the x axis");
    let (y, end) = (axis[0].1, axis[0].0.max(axis[1].0));
    let ticks: Vec<f64> = black
        .iter()
        .filter(|l| l.len() == 2 && l[0].0 == l[1].0 && l[0].1.min(l[1].1) == y)
        .map(|l| l[0].0)
        .collect();
    let last = m.runs.iter().flat_map(|r| r.worst_group.iter().map(|p| p.0)).max().unwrap();
    assert_eq!(ticks.len(), last + 1, "a tick per epoch 0..={last}: {ticks:?}");
    let rightmost = ticks.iter().copied().fold(f64::MIN, f64::max);
    assert!(
        (end - right).abs() <= 2.0 && (rightmost - right).abs() <= 2.0,
        "axis to {end}, last tick at {rightmost}, last points at {right}"
    );
}
