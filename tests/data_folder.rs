//! Folder data sets: manifests per layout, every bad input, and pixels against PIL.

mod common;
#[path = "data_folder/compose.rs"]
mod compose;
#[path = "data_folder/fixtures.rs"]
mod fixtures;
#[path = "data_folder/pixels.rs"]
mod pixels;

use std::path::Path;

use fixtures::Jpeg;
use memscope_core::data::Split;
use memscope_core::data::folder::{CelebaAttributes, FolderSpec, Layout, Manifest, read_manifest};

const WB_COUNTS: [[usize; 4]; 3] = [[4, 2, 1, 3], [1, 1, 1, 1], [2, 1, 1, 2]];

fn load(spec: &str) -> anyhow::Result<Manifest> {
    read_manifest(&spec.parse::<FolderSpec>()?)
}

fn error(spec: &str) -> String {
    match load(spec) {
        Ok(_) => panic!("{spec} loaded, expected an error"),
        Err(e) => format!("{e:#}"),
    }
}

fn celeba_rows() -> Vec<(bool, bool, bool, usize)> {
    let mut rows = Vec::new();
    for split in 0..3 {
        for g in 0..4 {
            for k in 0..2 {
                rows.push((g / 2 == 1, g % 2 == 1, k == 0, split));
            }
        }
    }
    rows
}

#[test]
fn waterbirds_labels_groups_names_and_counts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = fixtures::waterbirds(dir.path(), WB_COUNTS);
    let m = load(&format!("waterbirds:{}", dir.path().display())).expect("load");
    assert_eq!(m.name, "waterbirds");
    assert_eq!(m.class_names, ["landbird", "waterbird"]);
    assert_eq!(m.group_names[1], "landbird on water");
    assert_eq!(m.group_names[2], "waterbird on land");
    for (k, split) in Split::ALL.into_iter().enumerate() {
        assert_eq!(m.group_counts(split), WB_COUNTS[k].to_vec(), "{split}");
    }
    let first_val = &m.split(Split::Val)[0];
    assert_eq!(first_val.path, Path::new(&paths[10]));
    assert_eq!(first_val.line, 12, "row 11 of the metadata is line 12");
    assert!(m.splits.iter().flatten().all(|e| e.group == 2 * e.label + e.group % 2));

    // Through the data seam: a GroupedDataset whose pixels are decoded on demand.
    let spec: FolderSpec = format!("waterbirds:{}", dir.path().display()).parse().expect("spec");
    let ds = memscope_core::data::folder::load(&spec, 2).expect("dataset");
    assert_eq!(ds.image_shape, [3, 224, 224]);
    assert_eq!(ds.val.groups, m.split(Split::Val).iter().map(|e| e.group).collect::<Vec<_>>());
    assert_eq!(ds.images(Split::Test, &[0, 3]).expect("pixels").len(), 2 * 3 * 224 * 224);
}

#[test]
fn celeba_csv_txt_and_metadata_layouts_agree() {
    let rows = celeba_rows();
    let (csv_dir, txt_dir) = (tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"));
    fixtures::celeba(csv_dir.path(), &rows, false);
    fixtures::celeba(txt_dir.path(), &rows, true);
    let a = load(&format!("celeba:{}", csv_dir.path().display())).expect("csv lists");
    let b = load(&format!("celeba:{}", txt_dir.path().display())).expect("txt lists");
    assert_eq!(a.group_names, ["non-blond female", "non-blond male", "blond female", "blond male"]);
    assert_eq!(a.group_counts(Split::Train), [2, 2, 2, 2]);
    assert_eq!(a.group_counts(Split::Test), [2, 2, 2, 2]);
    for (x, y) in a.splits.iter().flatten().zip(b.splits.iter().flatten()) {
        assert_eq!((&x.path, x.label, x.group), (&y.path, y.label, y.group));
    }
    assert_eq!(a.split(Split::Val)[0].path, Path::new("img_align_celeba/000009.jpg"));

    // Another target: Smiling x Male.
    let mut spec: FolderSpec = format!("celeba:{}", csv_dir.path().display()).parse().expect("spec");
    let attrs = CelebaAttributes { target: "Smiling".into(), spurious: "Male".into() };
    spec.layout = Layout::Celeba(attrs);
    let s = read_manifest(&spec).expect("smiling");
    assert_eq!(s.class_names, ["not Smiling", "Smiling"]);
    let want: Vec<usize> = rows.iter().filter(|r| r.3 == 0).map(|r| r.2 as usize).collect();
    assert_eq!(s.split(Split::Train).iter().map(|e| e.label).collect::<Vec<_>>(), want);
    // The same from the command line: --attributes, recorded and said by info.
    let out = tempfile::tempdir().expect("tmp");
    let exp = out.path().join("exp");
    let data = format!("celeba:{}", csv_dir.path().display());
    let memscope = || assert_cmd::Command::cargo_bin("memscope").expect("binary");
    let train = memscope()
        .args(["train", "--data", &data, "--attributes", "Smiling,Male", "--image-size", "16"])
        .args(["--epochs", "1", "--out", exp.to_str().expect("utf-8")])
        .output()
        .expect("train");
    assert!(train.status.success(), "{}", String::from_utf8_lossy(&train.stderr));
    let info =
        memscope().args(["info", "--experiment", exp.to_str().expect("utf-8"), "--format", "json"]).output();
    let info: serde_json::Value = serde_json::from_slice(&info.expect("info").stdout).expect("json");
    let names: Vec<&str> = info["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| g["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["not Smiling, not Male", "not Smiling, Male", "Smiling, not Male", "Smiling, Male"]);
    let said = format!(
        "{data}, Smiling x Male (CenterCrop(178) · Resize((16, 16), interpolation=bilinear) · Normalize(ImageNet))"
    );
    assert_eq!(info["data"], said.as_str());

    // DFR's Waterbirds-style metadata.csv, file names relative to img_align_celeba/.
    let mut meta = String::from("img_id,img_filename,y,split,place,place_filename\n");
    for (i, r) in rows.iter().enumerate() {
        meta += &format!("{},{:06}.jpg,{},{},{},unavailable\n", i + 1, i + 1, r.0 as u8, r.3, r.1 as u8);
    }
    std::fs::remove_file(txt_dir.path().join("list_attr_celeba.txt")).expect("rm");
    std::fs::write(txt_dir.path().join("metadata.csv"), meta).expect("write");
    let c = load(&format!("celeba:{}", txt_dir.path().display())).expect("metadata.csv");
    assert_eq!(c.group_names, a.group_names);
    for (x, y) in a.splits.iter().flatten().zip(c.splits.iter().flatten()) {
        assert_eq!((&x.path, x.label, x.group), (&y.path, y.label, y.group));
    }
    // That file has Blond_Hair x Male only: other attributes are refused, naming the folder.
    let mut smiling: FolderSpec = format!("celeba:{}", txt_dir.path().display()).parse().expect("spec");
    smiling.layout = Layout::Celeba(CelebaAttributes { target: "Smiling".into(), spurious: "Male".into() });
    let e = format!("{:#}", read_manifest(&smiling).expect_err("metadata.csv with Smiling"));
    assert!(e.contains("a Waterbirds-style metadata.csv fixes the attributes to Blond_Hair x Male"), "{e}");
    assert!(e.contains(&txt_dir.path().display().to_string()), "{e}");
}

#[test]
fn csv_manifest_with_and_without_splits() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut with = String::from("path,label,group,split,group_name\n");
    let mut without = String::from("path,label,group\n");
    for i in 0..30 {
        let (g, split) = (i % 3, ["train", "val", "test"][i / 3 % 3]);
        fixtures::write_jpeg(&dir.path().join(format!("img/{i}.jpg")), 20, 20, i as u32, Jpeg::Baseline444);
        with += &format!("img/{i}.jpg,{},{g},{split},{}\n", g % 2, ["cat in", "dog in", "cat out"][g]);
        without += &format!("img/{i}.jpg,{},{g}\n", g % 2);
    }
    std::fs::write(dir.path().join("with.csv"), with).expect("write");
    std::fs::write(dir.path().join("without.csv"), without).expect("write");
    let m = load(&format!("csv:{}", dir.path().join("with.csv").display())).expect("with splits");
    assert_eq!(m.name, "with");
    assert_eq!(m.group_names, ["cat in", "dog in", "cat out"]);
    assert_eq!(m.class_names, ["class 0", "class 1"]);
    assert_eq!(m.group_counts(Split::Train), [4, 4, 4]);
    assert_eq!(m.group_counts(Split::Val), [3, 3, 3]);
    let n = load(&format!("csv:{}", dir.path().join("without.csv").display())).expect("no splits");
    // Policy: of every 5 rows of a group, 3 train, 1 val, 1 test (10 rows a group).
    assert_eq!(n.group_counts(Split::Train), [6, 6, 6]);
    assert_eq!(n.group_counts(Split::Val), [2, 2, 2]);
    assert_eq!(n.group_names, ["G0", "G1", "G2"]);
}

/// Writes a Waterbirds folder, rewrites its metadata with `edit`, and returns the error.
fn waterbirds_error(edit: impl Fn(&str) -> String) -> String {
    let dir = tempfile::tempdir().expect("tmp");
    fixtures::waterbirds(dir.path(), WB_COUNTS);
    let file = dir.path().join("metadata.csv");
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&file, edit(&text)).expect("write");
    error(&format!("waterbirds:{}", dir.path().display()))
}

fn replace_line(text: &str, line: usize, with: &str) -> String {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[line - 1] = with.to_string();
    lines.join("\n") + "\n"
}

#[test]
fn bad_metadata_rows_name_the_file_and_line() {
    type Edit = Box<dyn Fn(&str) -> String>;
    let cases: [(&str, Edit); 7] = [
        ("missing column 'place'", Box::new(|t| t.replace(",place,", ",background,"))),
        (
            "line 3: unknown split '7'",
            Box::new(|t| replace_line(t, 3, "2,020.Yellow_breasted_Chat/bird_0002.jpg,0,7,0,x")),
        ),
        (
            "line 4: y 2 is outside the classes",
            Box::new(|t| replace_line(t, 4, "3,020.Yellow_breasted_Chat/bird_0003.jpg,2,0,0,x")),
        ),
        (
            "line 5: path '../escape.jpg' escapes the data root",
            Box::new(|t| replace_line(t, 5, "4,../escape.jpg,0,0,0,x")),
        ),
        ("line 5: path '/etc/passwd' is absolute", Box::new(|t| replace_line(t, 5, "4,/etc/passwd,0,0,0,x"))),
        (
            "line 6: image 020.Yellow_breasted_Chat/nope.jpg not found",
            Box::new(|t| replace_line(t, 6, "5,020.Yellow_breasted_Chat/nope.jpg,0,0,0,x")),
        ),
        // The only val example of group 2 (row 14) moves to train.
        (
            "group 2 (waterbird on land) has no example in the val split",
            Box::new(|t| t.replace("bird_0013.jpg,1,1,0", "bird_0013.jpg,1,0,0")),
        ),
    ];
    for (want, edit) in cases {
        let got = waterbirds_error(edit);
        assert!(got.contains(want) && got.contains("metadata.csv"), "want '{want}', got '{got}'");
        assert!(!got.contains('\n'), "one line: {got}");
    }
    // A byte-order mark is accepted.
    let dir = tempfile::tempdir().expect("tmp");
    fixtures::waterbirds(dir.path(), WB_COUNTS);
    let file = dir.path().join("metadata.csv");
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&file, format!("\u{feff}{text}")).expect("write");
    let m = load(&format!("waterbirds:{}", dir.path().display())).expect("BOM accepted");
    assert_eq!(m.group_counts(Split::Train), WB_COUNTS[0].to_vec());
}

/// The metadata's lines rejoined with `end`, with a quoted field that spans two lines in row 2
/// and a blank line after it; row 5 (`bad`, editor line 6 before the edits) then stands on
/// editor line 8, whatever ends the lines.
fn metadata_with_line_ends(text: &str, end: &str, bad: &str) -> String {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[5] = bad.to_string();
    let row2 = lines[2].rsplit_once(',').expect("a comma").0.to_string();
    lines.splice(2..3, [format!("{row2},\"x"), "y\"".to_string(), String::new()]);
    assert_eq!(lines[7], bad, "the bad row is on editor line 8");
    lines.join(end) + end
}

#[test]
fn row_errors_give_the_line_an_editor_shows_whatever_ends_the_lines() {
    let bad_y = "5,020.Yellow_breasted_Chat/bird_0005.jpg,2,0,0,x";
    let missing = "5,020.Yellow_breasted_Chat/nope.jpg,0,0,0,x";
    for end in ["\n", "\r\n", "\r"] {
        for (bad, want) in [
            (bad_y, "metadata.csv line 8: y 2 is outside the classes"),
            (missing, "metadata.csv line 8: image 020.Yellow_breasted_Chat/nope.jpg not found"),
        ] {
            let got = waterbirds_error(|t| metadata_with_line_ends(t, end, bad));
            assert!(got.contains(want), "{end:?}: want '{want}', got '{got}'");
        }
        // A byte-order mark does not move the lines.
        let got = waterbirds_error(|t| format!("\u{feff}{}", metadata_with_line_ends(t, end, bad_y)));
        assert!(got.contains("metadata.csv line 8: y 2"), "{end:?} with a BOM: {got}");
    }
    // The lines of a skipped image, listed and recorded, are the editor's too.
    let dir = tempfile::tempdir().expect("tmp");
    fixtures::waterbirds(dir.path(), WB_COUNTS);
    let file = dir.path().join("metadata.csv");
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&file, metadata_with_line_ends(&text, "\r\n", missing)).expect("write");
    let spec: FolderSpec = format!("waterbirds:{}", dir.path().display()).parse().expect("spec");
    let ds = memscope_core::data::folder::load_with(&spec, 2, true).expect("skipping");
    assert_eq!(ds.changes.skipped.iter().map(|s| s.line).collect::<Vec<_>>(), [8]);

    // A CSV manifest and CelebA's partition list, with Windows line ends.
    let file = dir.path().join("m.csv");
    std::fs::write(&file, "path,label,group,split\r\na.jpg,0,0,train\r\n\r\nb.jpg,2,1,val\r\n")
        .expect("write");
    let e = error(&format!("csv:{}", file.display()));
    assert!(e.contains("m.csv line 4: label 2 is outside the labels"), "{e}");
    let celeba = tempfile::tempdir().expect("tmp");
    fixtures::celeba(celeba.path(), &celeba_rows(), false);
    let part = celeba.path().join("list_eval_partition.csv");
    let text = std::fs::read_to_string(&part).expect("read");
    std::fs::write(&part, replace_line(&text, 3, "000002.jpg,5").replace('\n', "\r\n")).expect("write");
    let e = error(&format!("celeba:{}", celeba.path().display()));
    assert!(e.contains("list_eval_partition.csv line 3: unknown split '5'"), "{e}");
}

#[test]
fn bad_celeba_and_csv_inputs_name_the_file() {
    let dir = tempfile::tempdir().expect("tmp");
    fixtures::celeba(dir.path(), &celeba_rows(), false);
    let mut spec: FolderSpec = format!("celeba:{}", dir.path().display()).parse().expect("spec");
    spec.layout = Layout::Celeba(CelebaAttributes { target: "Bald".into(), spurious: "Male".into() });
    let e = format!("{:#}", read_manifest(&spec).expect_err("no Bald column"));
    assert!(e.contains("list_attr_celeba.csv: missing column 'Bald'"), "{e}");
    let part = dir.path().join("list_eval_partition.csv");
    let text = std::fs::read_to_string(&part).expect("read");
    std::fs::write(&part, replace_line(&text, 2, "000001.jpg,5")).expect("write");
    let e = error(&format!("celeba:{}", dir.path().display()));
    assert!(e.contains("list_eval_partition.csv line 2: unknown split '5'"), "{e}");
    std::fs::write(&part, text.replace("000003.jpg,0\n", "")).expect("write");
    let e = error(&format!("celeba:{}", dir.path().display()));
    assert!(e.contains("list_attr_celeba.csv line 4: image 000003.jpg has no row in"), "{e}");

    let file = dir.path().join("m.csv");
    std::fs::write(&file, "path,label,group,split\na.jpg,0,0,train\nb.jpg,2,1,val\n").expect("write");
    let e = error(&format!("csv:{}", file.display()));
    assert!(e.contains("m.csv line 3: label 2 is outside the labels: no row has label 1"), "{e}");
    std::fs::write(&file, "path,group\na.jpg,0\n").expect("write");
    assert!(error(&format!("csv:{}", file.display())).contains("m.csv: missing column 'label'"));
    assert!(error("parquet:x").contains("unknown format 'parquet'"));
}

#[test]
fn corrupt_and_unreadable_images_fail_naming_the_file() {
    let dir = tempfile::tempdir().expect("tmp");
    fixtures::waterbirds(dir.path(), WB_COUNTS);
    let spec: FolderSpec = format!("waterbirds:{}", dir.path().display()).parse().expect("spec");
    let m = read_manifest(&spec).expect("load");
    let pixels = memscope_core::data::folder::FolderPixels::new(&m, spec.transform, 2);
    let victim = dir.path().join(&m.split(Split::Test)[1].path);
    let bytes = std::fs::read(&victim).expect("read");
    for (what, broken) in [
        ("truncated", bytes[..bytes.len() / 2].to_vec()),
        ("corrupt JPEG", [&bytes[..2], &[0xFF, 0xC0, 0, 3, 1][..]].concat()),
        ("not a JPEG or PNG", b"GIF89a....".to_vec()),
    ] {
        std::fs::write(&victim, &broken).expect("write");
        let e = format!("{:#}", pixels.images(Split::Test, &[0, 1, 2]).expect_err(what));
        assert!(e.contains(&victim.display().to_string()) && e.contains(what), "{what}: {e}");
        assert!(pixels.images(Split::Test, &[0, 2]).is_ok(), "other images still decode");
    }
}

#[test]
fn exported_demo_reads_back_as_waterbirds() {
    use memscope_core::data::digits::{DigitsSpec, generate};
    use memscope_core::data::folder::decode::decode_file;
    use memscope_core::data::folder::export::{SplitLabels, write_waterbirds};
    use memscope_core::data::folder::resize::{Rgb8, resize_bilinear};

    let spec = DigitsSpec { train_groups: [6, 3, 2, 4], eval_per_group: 2, ..DigitsSpec::default() };
    let ds = generate(&spec).expect("digits");
    let out = tempfile::tempdir().expect("tmp");
    let labels = Split::ALL.map(|s| SplitLabels { labels: &ds.split(s).labels, groups: &ds.split(s).groups });
    let pixels = |s: Split, idx: &[usize]| ds.images(s, idx);
    let summary =
        write_waterbirds(out.path(), 48, &ds.class_names, ds.image_shape, labels, &pixels).expect("export");
    assert_eq!(summary.images, [15, 8, 8]);
    let m = load(&format!("waterbirds:{}", out.path().display())).expect("read back");
    for s in Split::ALL {
        let e = m.split(s);
        assert_eq!(e.iter().map(|e| e.label).collect::<Vec<_>>(), ds.split(s).labels, "{s}");
        assert_eq!(e.iter().map(|e| e.group).collect::<Vec<_>>(), ds.split(s).groups, "{s}");
    }
    // The first training image survives JPEG at quality 95 within a few levels on average.
    let [_, h, w] = ds.image_shape;
    let chw = &ds.images(Split::Train, &[0]).expect("pixels");
    let hwc: Vec<u8> =
        (0..h * w).flat_map(|p| (0..3).map(move |c| (chw[c * h * w + p] * 255.0).round() as u8)).collect();
    let want = resize_bilinear(&Rgb8 { width: w, height: h, data: hwc }, 48, 48);
    let got = decode_file(&out.path().join(&m.split(Split::Train)[0].path)).expect("decode");
    assert_eq!((got.width, got.height), (48, 48));
    let mean = got.data.iter().zip(&want.data).map(|(&a, &b)| (a as f64 - b as f64).abs()).sum::<f64>()
        / want.data.len() as f64;
    assert!(mean < 3.0, "mean difference {mean:.2} levels");
}
