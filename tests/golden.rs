//! Pins every result the CLI prints on the bundled demo: recorded from the code before the
//! engine was reshaped (issue 9), so a refactor that changes any number fails here.
//! Tables and CSV must match byte for byte; JSON must match value for value once the
//! `provenance` block (memscope version, paths, hashes: added later, varies by machine) is
//! removed. `MEMSCOPE_RECORD_GOLDEN=1 cargo test --release --test golden` re-records.

use std::path::PathBuf;

use assert_cmd::Command;
use serde_json::Value;

/// (file stem, arguments).
const CASES: &[(&str, &[&str])] = &[
    ("info-val", &["info"]),
    ("info-test", &["info", "--split", "test", "--epoch", "20"]),
    ("scores", &["scores", "--top", "8"]),
    (
        "scores-magnitude-kernel",
        &["scores", "--criterion", "magnitude", "--granularity", "kernel", "--top", "5"],
    ),
    ("scores-normalized", &["scores", "--normalize-layers", "--exclude-head", "--group", "G1", "--top", "5"]),
    ("intervene-default", &["intervene"]),
    ("intervene-within", &["intervene", "--within", "stage2.block0.conv2", "--group", "G2"]),
    ("intervene-noise", &["intervene", "--kind", "noise", "--repeats", "4", "-k", "5", "--seed", "3"]),
    (
        "intervene-reinit-uniform",
        &["intervene", "--kind", "reinit", "--uniform", "--repeats", "3", "--fraction", "0.02"],
    ),
    (
        "intervene-rewind",
        &["intervene", "--kind", "rewind", "--epochs-back", "20", "--epoch", "30", "--split", "test"],
    ),
    (
        "intervene-control",
        &["intervene", "--random-control", "-k", "4", "--repeats", "5", "--criterion", "magnitude"],
    ),
    (
        "intervene-sampled",
        &[
            "intervene",
            "--sampling",
            "high-loss:256:128",
            "--group",
            "all",
            "--granularity",
            "weight",
            "-k",
            "20",
        ],
    ),
    ("rewind", &["rewind", "--layer", "stage3.block0.conv1", "--epochs-back", "15"]),
    ("ranks", &["ranks", "--fraction", "0.05"]),
    ("ranks-weight", &["ranks", "--fraction", "0.001", "--granularity", "weight"]),
    ("sensitivity", &["sensitivity", "--epochs-back", "5,40"]),
    ("control", &["control", "--fractions", "0.01,0.05", "--exclude-head", "--repeats", "4"]),
];

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name)
}

fn run(args: &[&str], format: &str) -> String {
    let out = Command::cargo_bin("memscope")
        .unwrap()
        .env_remove("MEMSCOPE_DEMO")
        .args(args)
        .args(["--format", format])
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?} --format {format}: {}", String::from_utf8_lossy(&out.stderr));
    // The demo's folder differs between checkouts.
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/checkpoints/spurious-digits");
    String::from_utf8(out.stdout).unwrap().replace(demo, "<DEMO>")
}

fn without_provenance(mut value: Value) -> Value {
    if let Value::Object(map) = &mut value {
        map.remove("provenance");
    }
    value
}

#[test]
fn every_result_on_the_demo_is_unchanged() {
    let record = std::env::var_os("MEMSCOPE_RECORD_GOLDEN").is_some();
    let mut failures = Vec::new();
    for (name, args) in CASES {
        for format in ["table", "csv", "json"] {
            let text = run(args, format);
            let path = golden(&format!("{name}.{format}"));
            if record {
                std::fs::write(&path, &text).unwrap();
                continue;
            }
            let expected =
                std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let same = match format {
                "json" => {
                    let got: Value = serde_json::from_str(&text).unwrap();
                    let want: Value = serde_json::from_str(&expected).unwrap();
                    without_provenance(got) == without_provenance(want)
                }
                _ => text == expected,
            };
            if !same {
                failures.push(format!("{name}.{format}:\n--- expected\n{expected}\n--- got\n{text}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} result(s) changed:\n{}", failures.len(), failures.join("\n"));
}
