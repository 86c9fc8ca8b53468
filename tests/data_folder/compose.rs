//! Composed eval transforms against torchvision itself (`scripts/torchvision-reference`:
//! `transforms.Resize`, `CenterCrop`, `ToTensor`, `Normalize` on PIL images), on the same
//! image files, compared exactly: bicubic and nearest up and down, non-square sizes,
//! torchvision's shorter-side rounding, crops before and after a resize, explicit mean/std.

use std::path::{Path, PathBuf};
use std::process::Command;

use memscope_core::data::Split;
use memscope_core::data::folder::decode::decode_file;
use memscope_core::data::folder::resize::PillowVersion;
use memscope_core::data::folder::{FolderPixels, Normalize, ResizeTo, Step, Transform, read_manifest};

use super::fixtures::{self, Jpeg};

/// The spec as `scripts/torchvision-reference` reads it.
fn reference_json(transform: &Transform) -> String {
    let compose = transform.compose();
    let steps: Vec<String> = compose
        .steps
        .iter()
        .map(|s| match *s {
            Step::Resize { size: ResizeTo::Shorter(n), interpolation } => {
                format!("[\"resize\", {n}, \"{}\"]", interpolation.name())
            }
            Step::Resize { size: ResizeTo::Exact { height, width }, interpolation } => {
                format!("[\"resize\", [{height}, {width}], \"{}\"]", interpolation.name())
            }
            Step::CenterCrop { height, width } => format!("[\"crop\", [{height}, {width}]]"),
        })
        .collect();
    let normalize = match compose.normalize {
        Normalize::ImageNet => "\"imagenet\"".to_string(),
        Normalize::None => "\"none\"".to_string(),
        Normalize::MeanStd { mean, std } => format!("[{mean:?}, {std:?}]"),
    };
    format!("{{\"steps\": [{}], \"normalize\": {normalize}}}", steps.join(", "))
}

/// Images of odd sizes and kinds (portrait and landscape, smaller than the crops, the
/// 333x500 of torchvision's rounding example), all in the test split of a csv manifest.
fn images(dir: &Path) -> Vec<PathBuf> {
    let jpegs = [
        (333, 500, Jpeg::Progressive420),
        (500, 333, Jpeg::Baseline444),
        (97, 131, Jpeg::Gray),
        (120, 90, Jpeg::Baseline422),
        (64, 64, Jpeg::Baseline444),
        (301, 199, Jpeg::Cmyk),
        (45, 300, Jpeg::Progressive420),
    ];
    let mut files = Vec::new();
    let mut csv = String::from("path,label,group,split\n");
    for (i, &(w, h, kind)) in jpegs.iter().enumerate() {
        let p = dir.join(format!("c{i}.jpg"));
        fixtures::write_jpeg(&p, w, h, i as u32 + 11, kind);
        csv += &format!("c{i}.jpg,{},{},test\n", i % 2, i % 2);
        files.push(p);
    }
    csv += "c0.jpg,0,0,train\nc1.jpg,1,1,train\nc0.jpg,0,0,val\nc1.jpg,1,1,val\n";
    std::fs::write(dir.join("images.csv"), csv).expect("write");
    files
}

fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).expect("reference f32");
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

#[test]
fn composed_transforms_equal_torchvision_exactly() {
    let Some(python) = crate::common::reference_python("torchvision") else { return };
    let out =
        Command::new(&python).args(["-c", "import PIL; print(PIL.__version__)"]).output().expect("python");
    let major = String::from_utf8_lossy(&out.stdout).split('.').next().and_then(|m| m.parse().ok());
    let pillow = PillowVersion::from_major(major.expect("Pillow's version"));
    let dir = tempfile::tempdir().expect("tmp");
    let files = images(dir.path());
    let spec = format!("csv:{}", dir.path().join("images.csv").display()).parse().expect("spec");
    let manifest = read_manifest(&spec).expect("manifest");
    let indices: Vec<usize> = (0..files.len()).collect();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/torchvision-reference");
    let specs = [
        // Shorter side (333x500 -> 64x96), then a crop of exactly that, then one smaller.
        "resize=64,crop=96x64",
        "resize=64,interp=bicubic,crop=56",
        "resize=64,interp=nearest,crop=48x40",
        // Up and down, not square.
        "resize=300x200,interp=bicubic",
        "resize=77x350,interp=nearest",
        "resize=64x64,normalize=imagenet",
        "resize=24x40,interp=bicubic,normalize=none",
        // Crop first (padding the small images), then resize; explicit mean and std.
        "crop=100,resize=64x48,interp=bicubic,mean=0.5/0.4/0.3,std=0.2/0.25/0.3",
        "crop=150x90,resize=30,interp=nearest,crop=30,mean=0.485/0.456/0.406,std=0.229/0.224/0.225",
        "timm-deit",
        "timm-deit:96",
    ];
    for (i, text) in specs.into_iter().enumerate() {
        let transform: Transform = text.parse().expect("transform");
        let out = dir.path().join(format!("ref-{i}"));
        let status = Command::new(&python)
            .arg(&script)
            .arg(reference_json(&transform))
            .arg(&out)
            .args(&files)
            .status()
            .expect("run torchvision-reference");
        assert!(status.success(), "torchvision-reference failed on {text}");
        let want_u8 = std::fs::read(out.with_extension("u8")).expect("reference u8");
        let want_f32 = read_f32(&out.with_extension("f32"));
        let pixels = FolderPixels::new(&manifest, transform.clone(), 2).with_pillow(pillow);
        let got_u8 = pixels.images_u8(Split::Test, &indices).expect("decode");
        let [h, w] = transform.output_shape();
        let per = h * w * 3;
        assert_eq!(want_u8.len(), per * files.len(), "{text}: torchvision's images are not {h}x{w}");
        for (k, f) in files.iter().enumerate() {
            let (a, b) = (&got_u8[k * per..(k + 1) * per], &want_u8[k * per..(k + 1) * per]);
            let differ = a.iter().zip(b).filter(|(x, y)| x != y).count();
            assert_eq!(differ, 0, "{text}: {} differs from torchvision in {differ} values", f.display());
            // The step-by-step path gives the same bytes as the planned one.
            let whole = transform.apply_u8_as(&decode_file(f).expect("decode"), pillow);
            assert_eq!(whole.data, b, "{text}: {} step by step", f.display());
        }
        let got_f32 = pixels.images(Split::Test, &indices).expect("decode");
        assert_eq!(got_f32.len(), want_f32.len());
        assert!(
            got_f32.iter().zip(&want_f32).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{text}: normalised floats"
        );
        eprintln!("{text}: {} images equal to torchvision's, byte for byte", files.len());
    }
}

#[test]
fn presets_describe_themselves_in_torchvisions_words() {
    let said = |t: &str| t.parse::<Transform>().expect("transform").describe();
    assert_eq!(
        said("resize=64x64,normalize=imagenet"),
        "Resize((64, 64), interpolation=bilinear) · Normalize(ImageNet)"
    );
    assert_eq!(
        said("timm-deit"),
        "Resize(256, interpolation=bicubic) · CenterCrop(224) · Normalize(ImageNet)"
    );
    assert_eq!(
        said("waterbirds"),
        "Resize((256, 256), interpolation=bilinear) · CenterCrop(224) · Normalize(ImageNet)"
    );
    assert_eq!(
        said("celeba:64"),
        "CenterCrop(178) · Resize((64, 64), interpolation=bilinear) · Normalize(ImageNet)"
    );
    assert_eq!(
        said("resize=32x48,mean=0.5/0.5/0.5,std=0.25/0.25/0.25"),
        "Resize((32, 48), interpolation=bilinear) · Normalize(mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25])"
    );
}

#[test]
fn transforms_round_trip_through_ron_and_old_records_read_as_presets() {
    // What experiment.ron held before compositions existed.
    let old: Transform = ron::from_str("Waterbirds(size: 224)").expect("old record");
    assert_eq!(old, Transform::waterbirds(224));
    for text in
        ["celeba:96", "timm-deit", "resize=256,interp=bicubic,crop=224", "crop=20,resize=8x8,normalize=none"]
    {
        let t: Transform = text.parse().expect("transform");
        let written = ron::to_string(&t).expect("ron");
        assert_eq!(ron::from_str::<Transform>(&written).expect("read back"), t, "{written}");
    }
    // docs/transforms.md's file.
    let file = "Compose((
    steps: [
        Resize(size: Shorter(256), interpolation: bicubic),
        CenterCrop(height: 224, width: 224),
    ],
    normalize: MeanStd(mean: (0.485, 0.456, 0.406), std: (0.229, 0.224, 0.225)),
))";
    let read: Transform = ron::from_str(file).expect("the docs' file");
    assert_eq!(
        read.describe(),
        "Resize(256, interpolation=bicubic) · CenterCrop(224) · Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])"
    );
    // A composition read from a file is checked as one written on the command line.
    let bad = "Compose((steps: [Resize(size: Shorter(64), interpolation: bilinear)]))";
    let err = ron::from_str::<Transform>(bad).map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("different sizes"), "{err}");
}
