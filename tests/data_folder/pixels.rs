//! Pixels against an independent decoding: `scripts/pil-reference` (Pillow + numpy, the
//! transforms of a PyTorch pipeline written out on PIL), compared exactly.

use std::path::{Path, PathBuf};
use std::process::Command;

use memscope_core::data::Split;
use memscope_core::data::folder::kernels::Kernel;
use memscope_core::data::folder::resize::{
    PillowVersion, ResizeCrop, Rgb8, center_crop, crop_offset, resize_bilinear, resize_bilinear_as,
};
use memscope_core::data::folder::{FolderPixels, Transform, read_manifest};

use super::fixtures::{self, Jpeg};

/// The reference stack's Python (pinned Pillow and numpy) and its Pillow's major version;
/// `None` only when the stack is missing and `MEMSCOPE_ALLOW_SKIP=1`.
fn pillow() -> Option<(PathBuf, u32)> {
    let python = crate::common::reference_python("Pillow")?;
    let out =
        Command::new(&python).args(["-c", "import PIL; print(PIL.__version__)"]).output().expect("python");
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let major = version.split('.').next().and_then(|m| m.parse().ok());
    Some((python, major.unwrap_or_else(|| panic!("Pillow says its version is '{version}'"))))
}

/// A folder of every kind of image the loader converts, with sizes above and below the
/// crops and odd aspect ratios; a csv manifest lists them all in the test split.
fn zoo(dir: &Path) -> Vec<PathBuf> {
    let jpegs = [
        (500, 375, Jpeg::Progressive420),
        (333, 257, Jpeg::Baseline444),
        (256, 256, Jpeg::Baseline422),
        (178, 218, Jpeg::Progressive420),
        (97, 131, Jpeg::Gray),
        (301, 199, Jpeg::Cmyk),
        (120, 90, Jpeg::Baseline444),
        (224, 225, Jpeg::Progressive420),
        // Portrait: Pillow 13 resizes these vertically first.
        (375, 500, Jpeg::Progressive420),
        (150, 300, Jpeg::Baseline444),
    ];
    let mut files = Vec::new();
    for (i, &(w, h, kind)) in jpegs.iter().enumerate() {
        let p = dir.join(format!("j{i}.jpg"));
        fixtures::write_jpeg(&p, w, h, i as u32 + 7, kind);
        files.push(p);
    }
    for (i, (kind, w, h)) in [
        ("rgb8", 211, 160),
        ("rgba8", 150, 300),
        ("gray8", 64, 64),
        ("rgb16", 180, 230),
        ("gray16", 250, 190),
    ]
    .into_iter()
    .enumerate()
    {
        let p = dir.join(format!("p{i}.png"));
        fixtures::write_png(&p, w, h, i as u32 + 3, kind);
        files.push(p);
    }
    let mut csv = String::from("path,label,group,split\n");
    for (i, f) in files.iter().enumerate() {
        let name = f.file_name().and_then(|n| n.to_str()).expect("name");
        csv += &format!("{name},{},{},test\n", i % 2, i % 2);
    }
    // One example per group in train and val, so that the manifest validates.
    csv += "j0.jpg,0,0,train\nj1.jpg,1,1,train\nj0.jpg,0,0,val\nj1.jpg,1,1,val\n";
    std::fs::write(dir.join("zoo.csv"), csv).expect("write");
    files
}

fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).expect("reference f32");
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

#[test]
fn pixels_equal_pil_and_torchvision_exactly() {
    let Some((python, major)) = pillow() else { return };
    let pillow = PillowVersion::from_major(major);
    let dir = tempfile::tempdir().expect("tmp");
    let files = zoo(dir.path());
    let spec = format!("csv:{}", dir.path().join("zoo.csv").display()).parse().expect("spec");
    let manifest = read_manifest(&spec).expect("manifest");
    let indices: Vec<usize> = (0..files.len()).collect();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pil-reference");
    for transform in [
        Transform::waterbirds(224),
        Transform::celeba(224),
        Transform::waterbirds(64),
        Transform::celeba(100),
    ] {
        let (name, size) = match transform {
            Transform::Waterbirds { size } => ("waterbirds", size),
            Transform::Celeba { size } => ("celeba", size),
            ref other => panic!("not a pil-reference transform: {other:?}"),
        };
        let out = dir.path().join(format!("ref-{name}-{size}"));
        let status = Command::new(&python)
            .arg(&script)
            .args([name, &size.to_string(), out.to_str().expect("utf-8")])
            .args(&files)
            .status()
            .expect("run pil-reference");
        assert!(status.success(), "pil-reference failed");
        let want_u8 = std::fs::read(out.with_extension("u8")).expect("reference u8");
        let want_f32 = read_f32(&out.with_extension("f32"));
        let pixels = FolderPixels::new(&manifest, transform, 2).with_pillow(pillow);
        let got_u8 = pixels.images_u8(Split::Test, &indices).expect("decode");
        let got_f32 = pixels.images(Split::Test, &indices).expect("decode");
        let per = size * size * 3;
        for (k, f) in files.iter().enumerate() {
            let (a, b) = (&got_u8[k * per..(k + 1) * per], &want_u8[k * per..(k + 1) * per]);
            let differ = a.iter().zip(b).filter(|(x, y)| x != y).count();
            let max = a.iter().zip(b).map(|(&x, &y)| (x as i32 - y as i32).abs()).max().unwrap_or(0);
            assert_eq!(
                differ,
                0,
                "{name} {size}: {} differs from PIL in {differ} values (max {max})",
                f.display()
            );
        }
        assert_eq!(got_f32.len(), want_f32.len());
        assert!(
            got_f32.iter().zip(&want_f32).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{name} {size}: normalised floats"
        );
        eprintln!("{name} {size}: {} images equal to Pillow {major}'s, byte for byte", files.len());
    }
}

#[test]
fn resize_to_own_size_is_identity_and_crop_starts_at_16() {
    let data = fixtures::picture(37, 23, 5);
    let img = Rgb8 { width: 37, height: 23, data };
    assert_eq!(resize_bilinear(&img, 37, 23), img);
    let big = Rgb8 { width: 256, height: 256, data: fixtures::picture(256, 256, 1) };
    let crop = center_crop(&big, 224, 224);
    assert_eq!(&crop.data[..3], &big.data[(16 * 256 + 16) * 3..(16 * 256 + 16) * 3 + 3]);
    // Python's round(16.5) = 16: 257 -> 224 starts at 16 too.
    let odd = Rgb8 { width: 257, height: 257, data: fixtures::picture(257, 257, 2) };
    assert_eq!(
        &center_crop(&odd, 224, 224).data[..3],
        &odd.data[(16 * 257 + 16) * 3..(16 * 257 + 16) * 3 + 3]
    );
}

/// The loader computes only the pixels a crop keeps, with SIMD kernels: on every size (down
/// by up to 4x, up by up to 3x, the same size, one pixel), both Pillow orders and every
/// kernel this CPU runs, its bytes equal the whole resize followed by the crop (the code the
/// test above checks against Pillow).
#[test]
fn resizing_only_the_kept_pixels_equals_resize_then_crop() {
    let sizes = [
        (500, 375),
        (375, 500),
        (1024, 683),
        (333, 257),
        (256, 256),
        (257, 300),
        (178, 218),
        (120, 90),
        (97, 131),
        (37, 23),
        (1, 1),
        (3, 700),
    ];
    let versions = [PillowVersion::Pillow12, PillowVersion::Pillow13];
    let mut scratch = Vec::new();
    let mut checked = 0;
    for (i, &(w, h)) in sizes.iter().enumerate() {
        let img = Rgb8 { width: w, height: h, data: fixtures::picture(w, h, i as u32) };
        for version in versions {
            // Waterbirds-style: resize r x r, keep the centre `size`.
            for (r, size) in [(256, 224), (73, 64), (300, 17)] {
                let whole = center_crop(&resize_bilinear_as(&img, r, r, version), size, size);
                let at = crop_offset(r, size);
                for kernel in Kernel::available() {
                    let plan =
                        ResizeCrop::new((w, h), (r, r), (at, at, size, size), version).with_kernel(kernel);
                    let mut out = vec![0; size * size * 3];
                    plan.run(&img.data, w * 3, &mut scratch, &mut out);
                    assert_eq!(out, whole.data, "{w}x{h} -> {r} -> {size}, {version:?}, {kernel:?}");
                    checked += 1;
                }
            }
            let composed = [
                "resize=64,interp=bicubic,crop=56",
                "resize=300x200,interp=bicubic",
                "resize=50,interp=nearest,crop=40x30",
                "crop=100,resize=64x48,interp=bicubic",
                "crop=20,crop=10x12",
            ]
            .map(|t| t.parse::<Transform>().expect("transform"));
            let presets = [Transform::waterbirds(224), Transform::celeba(224), Transform::celeba(100)];
            for transform in presets.into_iter().chain([Transform::timm_deit(224)]).chain(composed) {
                let [oh, ow] = transform.output_shape();
                let mut out = vec![0; oh * ow * 3];
                transform.apply_into(&img, version, &mut scratch, &mut out);
                assert_eq!(
                    out,
                    transform.apply_u8_as(&img, version).data,
                    "{w}x{h} {transform:?} {version:?}"
                );
            }
        }
    }
    eprintln!("{checked} resize-and-crop plans equal to the whole resize, kernels {:?}", Kernel::available());
}

/// The loader decodes only the rows a transform reads, where that cannot differ from
/// decoding the whole file: the rows equal the whole decoding's, and a truncated file still
/// fails as Pillow fails even when its missing part lies below those rows.
#[test]
fn decoding_stops_early_only_where_the_result_is_the_same() {
    use memscope_core::data::folder::decode::{decode, decode_top};
    for (i, kind) in [Jpeg::Baseline444, Jpeg::Baseline422, Jpeg::Progressive420, Jpeg::Gray, Jpeg::Cmyk]
        .into_iter()
        .enumerate()
    {
        let (w, h) = (173, 131);
        let bytes = fixtures::jpeg_bytes(&fixtures::picture(w, h, i as u32), w, h, kind);
        let whole = decode(&bytes).expect("decode");
        let mut top = Rgb8::default();
        assert_eq!(decode_top(&bytes, &mut top, |_, h| h / 2 + 1).expect("top"), (w, h));
        assert_eq!((top.width, top.height), (w, h / 2 + 1), "{kind:?}");
        assert_eq!(top.data, whole.data[..top.data.len()], "{kind:?}: the first rows");
        // Bytes after the end marker: decoded whole.
        let padded = [&bytes[..], &[0u8; 7]].concat();
        decode_top(&padded, &mut top, |_, _| 3).expect("padded");
        assert_eq!(top, whole, "{kind:?} with trailing bytes");
        // Cut at 90%: the missing rows are below the few asked for, and it still fails.
        let cut = &bytes[..bytes.len() * 9 / 10];
        let e = format!("{:#}", decode_top(cut, &mut top, |_, _| 2).expect_err("truncated"));
        assert!(e.contains("truncated"), "{kind:?}: {e}");
    }
}

/// A small JPEG whose header claims 60,000 x 60,000 pixels (10 GB decoded) fails at once, as
/// Pillow refuses it, instead of taking the memory.
#[test]
fn a_decompression_bomb_is_refused_before_decoding() {
    use memscope_core::data::folder::decode::{MAX_PIXELS, decode};
    let mut bytes = fixtures::jpeg_bytes(&fixtures::picture(64, 48, 1), 64, 48, Jpeg::Baseline444);
    // The frame header (SOF0): FF C0, length, precision, then height and width, big-endian.
    let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).expect("a baseline frame header");
    bytes[sof + 5..sof + 9].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]);
    let e = format!("{:#}", decode(&bytes).expect_err("a bomb"));
    assert!(e.contains("60000x60000") && e.contains(&MAX_PIXELS.to_string()), "{e}");
}

#[test]
fn threads_do_not_change_pixels() {
    let dir = tempfile::tempdir().expect("tmp");
    let files = zoo(dir.path());
    let spec = format!("csv:{}", dir.path().join("zoo.csv").display()).parse().expect("spec");
    let manifest = read_manifest(&spec).expect("manifest");
    let idx: Vec<usize> = (0..files.len()).rev().collect();
    let one =
        FolderPixels::new(&manifest, Transform::waterbirds(64), 1).images(Split::Test, &idx).expect("1");
    let four =
        FolderPixels::new(&manifest, Transform::waterbirds(64), 4).images(Split::Test, &idx).expect("4");
    assert_eq!(one, four);
    assert_eq!(one.len(), files.len() * 3 * 64 * 64);
}
