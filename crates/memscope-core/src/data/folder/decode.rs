//! Image files to 8-bit RGB, the way `PIL.Image.open(path).convert("RGB")` does it.
//!
//! JPEG goes through libjpeg-turbo's decoder (as built into mozjpeg: same IDCT, same fancy
//! upsampling, so the same bytes as Pillow, which also links libjpeg-turbo). PNG goes
//! through the `image` crate's decoder (lossless, so any correct decoder agrees).
//!
//! Conversions, all as Pillow's `convert("RGB")`:
//! - grayscale (JPEG or PNG): the grey value in all three channels;
//! - CMYK JPEG: Adobe-inverted values un-inverted, then `R = 255 - K - C(255 - K)/255` per
//!   channel with Pillow's rounding;
//! - alpha (RGBA, grey+alpha PNG): dropped, not composited;
//! - 16-bit RGB(A) and grey+alpha PNG: the high byte of each sample (Pillow's `;16B` unpacking);
//! - 16-bit grey PNG: the value clipped to 255 (Pillow's `I;16` to `L`, which clips rather
//!   than scales: matching it keeps the pixels a PyTorch pipeline saw).
//!
//! A JPEG of more than [`MAX_PIXELS`] pixels is an error, as in Pillow (a decompression bomb:
//! a small file that would decode to gigabytes), before any pixel memory is taken.
//! A truncated JPEG is an error (Pillow: "image file is truncated"); libjpeg's other
//! warnings about corrupt data are ignored, as Pillow ignores them.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use mozjpeg::{ColorSpace, Decompress, Marker};
use mozjpeg_sys::{JWRN_JPEG_EOF, jpeg_common_struct, jpeg_error_mgr};

use super::resize::Rgb8;

/// Reads and decodes `path` to RGB.
pub fn decode_file(path: &Path) -> Result<Rgb8> {
    let mut img = Rgb8::default();
    decode_file_top(path, &mut Vec::new(), &mut img, |_, h| h)?;
    Ok(img)
}

/// Reads `path` (into `file`, reused) and decodes into `img` (its buffer reused) the image's
/// first `rows(width, height)` rows, or all of them where stopping early could differ from
/// decoding the whole file (see [`decode_top`]). Returns the whole image's width and height.
pub(crate) fn decode_file_top(
    path: &Path,
    file: &mut Vec<u8>,
    img: &mut Rgb8,
    rows: impl FnMut(usize, usize) -> usize,
) -> Result<(usize, usize)> {
    file.clear();
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_to_end(&mut f, file))
        .with_context(|| format!("cannot read image {}", path.display()))?;
    decode_top(file, img, rows).with_context(|| format!("cannot decode image {}", path.display()))
}

/// Decodes JPEG or PNG bytes (recognised by their signature, not the file name) to RGB.
pub fn decode(bytes: &[u8]) -> Result<Rgb8> {
    let mut img = Rgb8::default();
    decode_top(bytes, &mut img, |_, h| h)?;
    Ok(img)
}

/// [`decode`] into `img`, of the image's first `rows(width, height)` rows (at least); returns
/// the whole image's width and height. A JPEG stops early only when the file ends with its
/// end-of-image marker: rows below cannot then change the rows above, nor hold an error
/// Pillow would raise (a truncated file is decoded whole, to fail as Pillow fails). A
/// progressive JPEG is read whole by libjpeg before its first row anyway; PNG is decoded whole.
pub fn decode_top(
    bytes: &[u8],
    img: &mut Rgb8,
    mut rows: impl FnMut(usize, usize) -> usize,
) -> Result<(usize, usize)> {
    if bytes.starts_with(&[0xFF, 0xD8]) {
        let complete = bytes.ends_with(&[0xFF, 0xD9]);
        decode_jpeg(bytes, img, &mut |w, h| {
            let wanted = rows(w, h);
            if complete { wanted.min(h) } else { h }
        })
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        *img = decode_png(bytes)?;
        rows(img.width, img.height);
        Ok((img.width, img.height))
    } else {
        bail!("not a JPEG or PNG file")
    }
}

type Rows<'a> = &'a mut dyn FnMut(usize, usize) -> usize;

/// The most pixels an image may have: twice Pillow's `Image.MAX_IMAGE_PIXELS` (89,478,485),
/// beyond which Pillow refuses to open it (DecompressionBombError), so no PyTorch pipeline
/// on Pillow reads it either.
pub const MAX_PIXELS: usize = 2 * 89_478_485;

fn decode_jpeg(bytes: &[u8], img: &mut Rgb8, rows: Rows) -> Result<(usize, usize)> {
    // libjpeg reports errors by unwinding out of the C code (mozjpeg's error manager and
    // ours below resume_unwind, which runs no panic hook); catch it here.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| jpeg_inner(bytes, img, rows)));
    result.unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "libjpeg error".into());
        Err(anyhow!("corrupt JPEG: {}", msg.trim_start_matches("libjpeg fatal error: ")))
    })
}

fn jpeg_inner(bytes: &[u8], img: &mut Rgb8, rows: Rows) -> Result<(usize, usize)> {
    let mut err = unsafe {
        let mut err: jpeg_error_mgr = std::mem::zeroed();
        mozjpeg_sys::jpeg_std_error(&mut err);
        err
    };
    err.error_exit = Some(fatal);
    err.emit_message = Some(warning);
    let dec = Decompress::with_err(err).with_markers(&[Marker::APP(14)]).from_mem(bytes)?;
    let adobe = dec.markers().any(|m| m.data.starts_with(b"Adobe"));
    let cmyk = matches!(dec.color_space(), ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK);
    let (width, height) = dec.size();
    if width * height > MAX_PIXELS {
        bail!(
            "{width}x{height} is {} pixels, more than Pillow opens ({MAX_PIXELS}: it raises DecompressionBombError)",
            width * height
        );
    }
    let keep = rows(width, height);
    // An image seen half-decoded (an error below) is left empty, not stale.
    *img = Rgb8 { width: 0, height: 0, data: std::mem::take(&mut img.data) };
    if cmyk {
        let mut started = dec.to_colorspace(ColorSpace::JCS_CMYK)?;
        let raw: Vec<u8> = started.read_scanlines()?;
        started.finish()?;
        img.data = cmyk_to_rgb(&raw, adobe);
        img.data.truncate(keep * width * 3);
    } else {
        // Grayscale expands to RGB inside libjpeg by replication, as Pillow's L -> RGB.
        let mut started = dec.rgb()?;
        let bytes = keep * width * 3;
        img.data
            .try_reserve_exact(bytes.saturating_sub(img.data.len()))
            .map_err(|_| anyhow!("{width}x{height}: not enough memory for {} MB of pixels", bytes >> 20))?;
        img.data.resize(bytes, 0);
        started.read_scanlines_into(&mut img.data)?;
        if keep == height {
            started.finish()?;
        }
    }
    if img.data.len() != width * keep * 3 {
        bail!("truncated: {} of {} rows", img.data.len() / (width * 3).max(1), height);
    }
    (img.width, img.height) = (width, keep);
    Ok((width, height))
}

extern "C-unwind" fn fatal(cinfo: &mut jpeg_common_struct) {
    std::panic::resume_unwind(Box::new(message(cinfo)));
}

/// Warnings (level -1) about a premature end of the file are errors; others are ignored.
extern "C-unwind" fn warning(cinfo: &mut jpeg_common_struct, level: std::os::raw::c_int) {
    // SAFETY: libjpeg calls this with its own error manager installed.
    let code = unsafe { cinfo.err.as_ref().map_or(0, |e| e.msg_code) };
    if level < 0 && code == JWRN_JPEG_EOF {
        std::panic::resume_unwind(Box::new("image file is truncated".to_string()));
    }
}

fn message(cinfo: &mut jpeg_common_struct) -> String {
    type Declared = unsafe extern "C-unwind" fn(&mut jpeg_common_struct, &[u8; 80]);
    type Format = unsafe extern "C-unwind" fn(&mut jpeg_common_struct, *mut u8);
    let mut buf = [0u8; 200];
    // SAFETY: libjpeg's format_message writes at most JMSG_LENGTH_MAX (200) bytes,
    // NUL-terminated, into the buffer it is given (the binding declares it `&[u8; 80]`).
    unsafe {
        if let Some(format) = cinfo.err.as_ref().and_then(|e| e.format_message) {
            let format = std::mem::transmute::<Declared, Format>(format);
            format(cinfo, buf.as_mut_ptr());
        }
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Pillow's `cmyk2rgb`: `nk = 255 - k; out = nk - MULDIV255(c, nk)`.
fn cmyk_to_rgb(raw: &[u8], adobe: bool) -> Vec<u8> {
    let muldiv255 = |a: i32, b: i32| {
        let t = a * b + 128;
        ((t >> 8) + t) >> 8
    };
    let mut out = Vec::with_capacity(raw.len() / 4 * 3);
    for px in raw.chunks_exact(4) {
        let v = |i: usize| i32::from(if adobe { 255 - px[i] } else { px[i] });
        let nk = 255 - v(3);
        for c in 0..3 {
            out.push((nk - muldiv255(v(c), nk)).clamp(0, 255) as u8);
        }
    }
    out
}

fn decode_png(bytes: &[u8]) -> Result<Rgb8> {
    use image::DynamicImage as D;
    let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
        .map_err(|e| anyhow!("corrupt PNG: {e}"))?;
    let (width, height) = (img.width() as usize, img.height() as usize);
    let data = match img {
        D::ImageRgb16(b) => b.into_raw().iter().map(|&v| (v >> 8) as u8).collect(),
        D::ImageRgba16(b) => {
            b.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).map(|v| (v >> 8) as u8).collect()
        }
        D::ImageLuma16(b) => b.into_raw().iter().flat_map(|&v| [v.min(255) as u8; 3]).collect(),
        D::ImageLumaA16(b) => b.chunks_exact(2).flat_map(|p| [(p[0] >> 8) as u8; 3]).collect(),
        other => other.to_rgb8().into_raw(),
    };
    Ok(Rgb8 { width, height, data })
}
