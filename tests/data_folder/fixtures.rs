//! Small image folders in each layout, generated for the tests.

use std::fmt::Write as _;
use std::path::Path;

use image::{DynamicImage, ImageBuffer, Luma, Rgb, Rgba};
use mozjpeg::{ColorSpace, Compress};

/// How a fixture JPEG is encoded.
#[derive(Clone, Copy, Debug)]
pub enum Jpeg {
    /// mozjpeg's defaults: progressive, 4:2:0.
    Progressive420,
    /// Baseline, no chroma subsampling.
    Baseline444,
    /// Baseline 4:2:2.
    Baseline422,
    Gray,
    /// Adobe CMYK, as Photoshop writes it.
    Cmyk,
}

/// A deterministic RGB test picture `[h, w, 3]`: gradients plus texture, so that every
/// resize weight matters.
pub fn picture(w: usize, h: usize, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(12345);
    let mut out = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let noise = (state >> 24) as usize % 48;
            out.push(((x * 255 / w.max(1) + noise) % 256) as u8);
            out.push(((y * 255 / h.max(1) + 2 * noise) % 256) as u8);
            out.push((((x + y) * 3 + seed as usize * 40 + noise) % 256) as u8);
        }
    }
    out
}

pub fn jpeg_bytes(rgb: &[u8], w: usize, h: usize, kind: Jpeg) -> Vec<u8> {
    let (space, pixels): (ColorSpace, Vec<u8>) = match kind {
        Jpeg::Gray => (ColorSpace::JCS_GRAYSCALE, rgb.chunks(3).map(|p| p[1]).collect()),
        Jpeg::Cmyk => (
            ColorSpace::JCS_CMYK,
            rgb.chunks(3).flat_map(|p| [p[0], p[1], p[2], p[0] / 3 + p[1] / 3]).collect(),
        ),
        _ => (ColorSpace::JCS_RGB, rgb.to_vec()),
    };
    let mut c = Compress::new(space);
    c.set_size(w, h);
    c.set_quality(90.0);
    match kind {
        Jpeg::Baseline444 => {
            c.set_fastest_defaults();
            c.set_chroma_sampling_pixel_sizes((1, 1), (1, 1));
        }
        Jpeg::Baseline422 => {
            c.set_fastest_defaults();
            c.set_chroma_sampling_pixel_sizes((2, 1), (2, 1));
        }
        _ => {}
    }
    let mut started = c.start_compress(Vec::new()).expect("start jpeg");
    started.write_scanlines(&pixels).expect("write jpeg");
    started.finish().expect("finish jpeg")
}

pub fn write_jpeg(path: &Path, w: usize, h: usize, seed: u32, kind: Jpeg) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, jpeg_bytes(&picture(w, h, seed), w, h, kind)).expect("write jpeg");
}

/// PNG variants: colour types and bit depths Pillow converts to RGB.
pub fn write_png(path: &Path, w: usize, h: usize, seed: u32, kind: &str) {
    let rgb = picture(w, h, seed);
    let (w32, h32) = (w as u32, h as u32);
    let px = |i: usize| &rgb[i * 3..i * 3 + 3];
    let img = match kind {
        "rgb8" => DynamicImage::ImageRgb8(ImageBuffer::from_raw(w32, h32, rgb.clone()).expect("rgb")),
        "rgba8" => DynamicImage::ImageRgba8(ImageBuffer::from_fn(w32, h32, |x, y| {
            let p = px((y * w32 + x) as usize);
            Rgba([p[0], p[1], p[2], (x * 7) as u8])
        })),
        "gray8" => DynamicImage::ImageLuma8(ImageBuffer::from_fn(w32, h32, |x, y| {
            Luma([px((y * w32 + x) as usize)[0]])
        })),
        "rgb16" => DynamicImage::ImageRgb16(ImageBuffer::from_fn(w32, h32, |x, y| {
            let p = px((y * w32 + x) as usize);
            Rgb([p[0] as u16 * 257 + x as u16, p[1] as u16 * 256, p[2] as u16 * 251])
        })),
        "gray16" => DynamicImage::ImageLuma16(ImageBuffer::from_fn(w32, h32, |x, y| {
            Luma([px((y * w32 + x) as usize)[0] as u16 + (x % 3) as u16 * 100])
        })),
        other => panic!("unknown png kind {other}"),
    };
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    img.save_with_format(path, image::ImageFormat::Png).expect("write png");
}

/// A Waterbirds folder with `counts[split][group]` images (split 0/1/2 = train/val/test).
/// Returns the relative paths by metadata row.
pub fn waterbirds(dir: &Path, counts: [[usize; 4]; 3]) -> Vec<String> {
    let mut csv = String::from("img_id,img_filename,y,split,place,place_filename\n");
    let mut paths = Vec::new();
    let mut id = 1;
    for (split, per_group) in counts.iter().enumerate() {
        for (g, &n) in per_group.iter().enumerate() {
            for _ in 0..n {
                let (y, place) = (g / 2, g % 2);
                let species = if y == 1 { "001.Black_footed_Albatross" } else { "020.Yellow_breasted_Chat" };
                let rel = format!("{species}/bird_{id:04}.jpg");
                write_jpeg(&dir.join(&rel), 40 + id % 9, 30 + (id * 5) % 13, id as u32, Jpeg::Progressive420);
                writeln!(csv, "{id},{rel},{y},{split},{place},/o/ocean/{id:08}.jpg").expect("fmt");
                paths.push(rel);
                id += 1;
            }
        }
    }
    std::fs::write(dir.join("metadata.csv"), csv).expect("write metadata");
    paths
}

/// A CelebA folder (CSV lists) with rows (blond, male, smiling, split); `txt` also writes
/// the original whitespace-separated lists instead.
pub fn celeba(dir: &Path, rows: &[(bool, bool, bool, usize)], txt: bool) {
    let names = ["5_o_Clock_Shadow", "Blond_Hair", "Male", "Smiling"];
    let pm = |b: bool| if b { "1" } else { "-1" };
    let mut attr = format!("image_id,{}\n", names.join(","));
    let mut part = String::from("image_id,partition\n");
    let mut attr_txt = format!("{}\n{}\n", rows.len(), names.join(" "));
    let mut part_txt = String::new();
    for (i, &(blond, male, smiling, split)) in rows.iter().enumerate() {
        let id = format!("{:06}.jpg", i + 1);
        write_jpeg(&dir.join("img_align_celeba").join(&id), 178, 218, i as u32, Jpeg::Progressive420);
        writeln!(attr, "{id},-1,{},{},{}", pm(blond), pm(male), pm(smiling)).expect("fmt");
        writeln!(part, "{id},{split}").expect("fmt");
        writeln!(attr_txt, "{id} -1  {}  {}  {}", pm(blond), pm(male), pm(smiling)).expect("fmt");
        writeln!(part_txt, "{id} {split}").expect("fmt");
    }
    if txt {
        std::fs::write(dir.join("list_attr_celeba.txt"), attr_txt).expect("write");
        std::fs::write(dir.join("list_eval_partition.txt"), part_txt).expect("write");
    } else {
        std::fs::write(dir.join("list_attr_celeba.csv"), attr).expect("write");
        std::fs::write(dir.join("list_eval_partition.csv"), part).expect("write");
    }
}
