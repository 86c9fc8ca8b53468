//! Neurons named by index (`--neurons`): ids parse back to the neurons they print as, in every
//! model family and granularity; naming a ranking's picks gives the ranking's result; the
//! errors name the id. The zero-out of filters PyTorch names, against PyTorch's counts, is in
//! tests/import.rs.

mod common;

use common::{fails, succeeds};

use std::path::Path;

use memscope_core::device::DeviceSpec;
use memscope_core::experiment::Experiment;
use memscope_core::model::resnet::Depth;
use memscope_core::model::{LayerInfo, ModelConfig, ResNetConfig};
use memscope_core::neurons::{CandidateFilter, Granularity, NeuronSpace};
use serde_json::Value;

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/checkpoints/spurious-digits");
const VIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/checkpoints/spurious-digits-vit");

fn demo_layers(dir: &str) -> Vec<LayerInfo> {
    let device = DeviceSpec::Cpu.device().unwrap();
    Experiment::open(Path::new(dir)).unwrap().load_network(0, &device).unwrap().layers()
}

fn resnet18_layers() -> Vec<LayerInfo> {
    let device = DeviceSpec::Cpu.device().unwrap();
    let config = ModelConfig::ResNet(ResNetConfig { depth: Depth::ResNet18, ..Default::default() });
    config.init(&device).unwrap().layers()
}

/// Every id printed parses back to its neuron (each layer's first and last, and a stride
/// through the rest), in its printed form and as `NeuronSpace::neuron` returns it.
fn round_trips(layers: &[LayerInfo], what: &str) {
    for granularity in [Granularity::Unit, Granularity::Kernel, Granularity::Weight] {
        let space = NeuronSpace::new(layers, &CandidateFilter::default(), granularity).unwrap();
        let mut flats: Vec<usize> =
            (0..space.layers.len()).flat_map(|l| [space.range(l).start, space.range(l).end - 1]).collect();
        flats.extend((0..space.total()).step_by(space.total() / 5000 + 1));
        for flat in flats {
            let id = space.id(flat);
            let printed = id.to_string();
            assert_eq!(space.resolve(&printed).unwrap(), flat, "{what} {granularity}: {printed}");
            assert_eq!(space.neuron(&printed).unwrap(), id, "{what} {granularity}: {printed}");
            assert_eq!(space.number(&id).unwrap(), flat, "{what} {granularity}: {printed}");
        }
    }
}

#[test]
fn printed_ids_parse_back_in_every_family_and_granularity() {
    let demo = demo_layers(DEMO);
    round_trips(&demo, "demo CNN");
    let resnet = resnet18_layers();
    round_trips(&resnet, "ResNet-18");
    let vit = demo_layers(VIT);
    round_trips(&vit, "ViT demo");

    // The forms the issue names.
    let space = NeuronSpace::new(&resnet, &CandidateFilter::default(), Granularity::Unit).unwrap();
    assert_eq!(space.neuron("layer4.1.conv2:17").unwrap().to_string(), "layer4.1.conv2:17");
    let space = NeuronSpace::new(&vit, &CandidateFilter::default(), Granularity::Unit).unwrap();
    let qkv = space.neuron("blocks.3.attn.qkv:k:h2:7").unwrap();
    assert_eq!(qkv.to_string(), "blocks.3.attn.qkv:k:h2:7");
    // dim 32, 4 heads of 8 rows: k head 2 row 7 is row 32 + 16 + 7.
    assert_eq!(qkv.index, 55);
    assert_eq!(space.neuron("blocks.3.attn.qkv:55").unwrap(), qkv, "the plain index names the same row");
    let kernel = NeuronSpace::new(&demo, &CandidateFilter::default(), Granularity::Kernel).unwrap();
    // stem.conv is 16x3x3x3: kernel W[5, 2, :, :] is number 5·3 + 2.
    assert_eq!(kernel.neuron("stem.conv:17").unwrap().index, 17);
}

#[test]
fn naming_errors_are_one_line_and_name_the_id() {
    let space = NeuronSpace::new(&demo_layers(DEMO), &CandidateFilter::default(), Granularity::Unit).unwrap();
    let error = |ids: &[&str]| format!("{:#}", space.named(ids).unwrap_err());
    let unknown = error(&["stem.conv:1", "stem.cnv:3"]);
    assert!(
        unknown.contains("'stem.cnv:3'") && unknown.contains("valid: stem.conv, stage1.block0.conv1"),
        "{unknown}"
    );
    let range = error(&["stem.conv:16"]);
    assert!(
        range.contains("'stem.conv:16'") && range.contains("16 neurons") && range.contains("0..=15"),
        "{range}"
    );
    let malformed = error(&["stem.conv:x"]);
    assert!(
        malformed.contains("'stem.conv:x'") && malformed.contains("'x' is not a neuron number"),
        "{malformed}"
    );
    let bare = error(&["stem.conv"]);
    assert!(bare.contains("is not layer:index"), "{bare}");
    let twice = error(&["head:1", "stem.conv:2", "head:1"]);
    assert!(twice.contains("'head:1' is named twice"), "{twice}");
    assert!(error(&[]).contains("no neurons named"));
    // The two forms of one qkv row are one neuron.
    let vit = NeuronSpace::new(&demo_layers(VIT), &CandidateFilter::default(), Granularity::Unit).unwrap();
    let again =
        format!("{:#}", vit.named(&["blocks.3.attn.qkv:k:h2:7", "blocks.3.attn.qkv:55"]).unwrap_err());
    assert!(again.contains("'blocks.3.attn.qkv:55' is 'blocks.3.attn.qkv:k:h2:7' again"), "{again}");
    for message in [unknown, range, malformed, twice, again] {
        assert_eq!(message.lines().count(), 1, "{message}");
    }
}

/// `memscope intervene ARGS --format json`, parsed.
fn intervene(args: &[&str]) -> Value {
    let mut all = vec!["intervene"];
    all.extend_from_slice(args);
    all.extend(["--format", "json"]);
    serde_json::from_str(&succeeds(&all)).unwrap()
}

fn ids(json: &Value) -> Vec<String> {
    json["neurons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let id = &n["id"];
            match id.get("qkv") {
                None => format!("{}:{}", id["layer"].as_str().unwrap(), id["index"]),
                Some(q) => format!(
                    "{}:{}:h{}:{}",
                    id["layer"].as_str().unwrap(),
                    q["part"].as_str().unwrap(),
                    q["head"],
                    q["row"]
                ),
            }
        })
        .collect()
}

/// The ranking's top-k, named by hand, gives the ranking's result: the same neurons with the
/// same scores and percentiles, the same runs; only the recorded selection differs.
fn naming_the_top_gives_the_top(args: &[&str]) {
    let mut ranked_args = args.to_vec();
    ranked_args.extend(["-k", "4"]);
    let mut ranked = intervene(&ranked_args);
    let named = ids(&ranked).join(",");
    let mut hand_args = args.to_vec();
    hand_args.extend(["--neurons", &named]);
    let mut by_hand = intervene(&hand_args);
    assert_eq!(ids(&by_hand), ids(&ranked));
    let recorded = by_hand["spec"]["selection"]["by-hand"].as_array().unwrap().clone();
    assert_eq!(
        Value::Array(recorded),
        Value::Array(ranked["neurons"].as_array().unwrap().iter().map(|n| n["id"].clone()).collect())
    );
    assert_eq!(ranked["spec"]["selection"]["top-k"], 4);
    for json in [&mut ranked, &mut by_hand] {
        json["spec"]["selection"] = Value::Null;
        json["provenance"]["spec"]["selection"] = Value::Null;
    }
    assert_eq!(by_hand, ranked, "{args:?}");
}

#[test]
fn naming_a_rankings_picks_gives_the_rankings_result() {
    naming_the_top_gives_the_top(&["--experiment", DEMO]);
    naming_the_top_gives_the_top(&[
        "--experiment",
        DEMO,
        "--granularity",
        "kernel",
        "--criterion",
        "magnitude",
    ]);
    naming_the_top_gives_the_top(&[
        "--experiment",
        VIT,
        "--criterion",
        "magnitude",
        "--kind",
        "noise",
        "--repeats",
        "2",
    ]);
}

#[test]
fn the_table_says_the_neurons_were_chosen_by_hand_and_conflicts_are_refused() {
    let table = succeeds(&["intervene", "--experiment", DEMO, "--neurons", "head:1,stem.conv:13"]);
    let first = table.lines().next().unwrap();
    assert!(
        first.starts_with(
            "zero-out of 2 unit neurons chosen by hand (head:1, stem.conv:13), scored by gradient"
        ),
        "{first}"
    );
    for conflict in [["-k", "2"], ["--fraction", "0.1"], ["--within", "head"]] {
        let mut args = vec!["intervene", "--experiment", DEMO, "--neurons", "head:1"];
        args.extend(conflict);
        assert!(fails(&args).contains("cannot be used with"));
    }
    let e = fails(&["intervene", "--experiment", DEMO, "--neurons", "head:1,head:7"]);
    assert!(e.contains("neuron 'head:7': layer head has 2 neurons at the unit granularity (0..=1)"), "{e}");
    let e = fails(&["intervene", "--experiment", DEMO, "--neurons", "stem.conv:1", "--random-control"]);
    assert!(e.contains("cannot be used with"), "{e}");
}

#[test]
fn figures_of_named_neurons_change_exactly_those() {
    let tmp = tempfile::tempdir().unwrap();
    let out = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    let (bars, bars_json) = (out("bars.svg"), out("bars.json"));
    succeeds(&[
        "figure",
        "bars",
        "--experiment",
        DEMO,
        "--kinds",
        "zero",
        "--neurons",
        "head:1,stem.conv:13",
        "--out",
        &bars,
        "--json",
        &bars_json,
    ]);
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&bars_json).unwrap()).unwrap();
    let text = json.to_string();
    assert!(text.contains("by-hand"), "the figure's JSON records the choice");
    let svg = std::fs::read_to_string(&bars).unwrap();
    assert!(svg.contains("chosen by hand (head:1, stem.conv:13)"), "the caption names them");
    // Its one bar cluster is the intervention on those two.
    let alone = intervene(&["--experiment", DEMO, "--neurons", "head:1,stem.conv:13"]);
    assert!(text.contains(&alone["groups"].to_string()), "bars: {text}");

    let (sweep, sweep_json) = (out("sweep.svg"), out("sweep.json"));
    succeeds(&[
        "figure",
        "sweep",
        "--experiment",
        DEMO,
        "--criterion",
        "magnitude",
        "--neurons",
        "stem.conv:13,head:1,stem.conv:7",
        "--out",
        &sweep,
        "--json",
        &sweep_json,
    ]);
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&sweep_json).unwrap()).unwrap();
    let rows = json["figure"]["rows"].as_array().or_else(|| json["rows"].as_array()).expect("rows");
    let layers: Vec<&str> = rows.iter().map(|r| r["layer"].as_str().unwrap()).collect();
    assert_eq!(layers, ["stem.conv", "head"], "one row per layer holding named neurons");
    // A row changes its layer's named neurons, as intervene --neurons does.
    let stem = intervene(&[
        "--experiment",
        DEMO,
        "--criterion",
        "magnitude",
        "--neurons",
        "stem.conv:13,stem.conv:7",
    ]);
    assert_eq!(rows[0]["groups"], stem["groups"]);
}
