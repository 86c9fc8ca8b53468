//! The two passes of Pillow's fixed-point resize over chosen output pixels, in AVX-512 (with
//! VBMI's byte permutes) or AVX2 where the CPU has them and plain Rust otherwise. All give
//! the same bytes: every sum is of exact integer products (8-bit samples times 22-bit weights,
//! well inside i32), so the order of the additions cannot change a result, and the rounding
//! `(sum + half) >> 22` clipped to 0..=255 is Pillow's.

pub(crate) const PRECISION_BITS: u32 = 32 - 8 - 2;
const HALF: i32 = 1 << (PRECISION_BITS - 1);
/// Output pixels per block of the AVX-512 horizontal kernel (24 bytes of RGB).
const BLOCK: usize = 8;

/// One pass's weights, per output pixel: the first input pixel and `ksize` fixed-point
/// weights (unused ones 0), plus the same weights laid out for the SIMD kernels.
#[derive(Clone, Debug)]
pub struct Taps {
    /// Weights per output pixel, even (padded with zeros).
    pub ksize: usize,
    /// Per output pixel: first input pixel, number of weights that are used.
    pub bounds: Vec<(usize, usize)>,
    pub weights: Vec<i32>,
    /// Per output pixel and pair of weights: `[w0, w0, w0, w1, w1, w1, 0, 0]`.
    wide: Vec<i32>,
    /// Bytes past a line's start that the AVX2 kernel loads (8 at a time: 2 pixels and 2
    /// bytes more, over every padded weight).
    reach: usize,
    /// Per block of 8 output pixels whose inputs lie within 64 bytes, for the AVX-512 kernel.
    blocks: Vec<Block>,
}

/// Eight output pixels computed from one 64-byte load: per weight k, which of the 64 bytes
/// each of the 24 output bytes takes, and the weight each is multiplied by.
#[derive(Clone, Debug)]
struct Block {
    /// Input pixel the 64 bytes start at.
    base: usize,
    /// Weights used by any of the 8 pixels.
    taps: usize,
    /// `ksize` x 64 byte indices (the first 24 used).
    index: Vec<u8>,
    /// `ksize` x 24 weights.
    weights: Vec<i32>,
}

impl Taps {
    /// `weights` holds `ksize` per output pixel (any count; padded here to an even one), of
    /// which pixel x uses the first `bounds[x].1`.
    pub fn new(ksize: usize, bounds: Vec<(usize, usize)>, weights: &[i32]) -> Taps {
        let even = ksize + ksize % 2;
        let mut padded = vec![0; bounds.len() * even];
        // Weights past a pixel's own count are 0 whatever `weights` holds there.
        for ((dst, src), &(_, n)) in
            padded.chunks_exact_mut(even).zip(weights.chunks_exact(ksize.max(1))).zip(&bounds)
        {
            dst[..n].copy_from_slice(&src[..n]);
        }
        let wide = padded.chunks_exact(2).flat_map(|w| [w[0], w[0], w[0], w[1], w[1], w[1], 0, 0]).collect();
        let reach =
            bounds.iter().map(|&(first, _)| (first + even).saturating_sub(2) * 3 + 8).max().unwrap_or(0);
        let mut taps = Taps { ksize: even, bounds, weights: padded, wide, reach, blocks: Vec::new() };
        taps.blocks = taps.blocks();
        taps
    }

    /// The AVX-512 blocks: every whole block of 8 output pixels, while their inputs fit in
    /// 64 bytes (a downscale by up to about 2.3 with bilinear weights); none otherwise.
    fn blocks(&self) -> Vec<Block> {
        let mut blocks = Vec::new();
        for b in 0..self.len() / BLOCK {
            let pixels = b * BLOCK..(b + 1) * BLOCK;
            let base = self.bounds[pixels.clone()].iter().map(|p| p.0).min().unwrap_or(0);
            let end = self.bounds[pixels.clone()].iter().map(|p| p.0 + p.1).max().unwrap_or(0);
            if (end - base) * 3 > 64 {
                return Vec::new();
            }
            let mut index = vec![0u8; self.ksize * 64];
            let mut weights = vec![0i32; self.ksize * 24];
            for k in 0..self.ksize {
                for (j, x) in pixels.clone().enumerate() {
                    let (first, n) = self.bounds[x];
                    for c in 0..3 {
                        // A weight past the pixel's own is 0: any byte will do, byte 0.
                        let at = if k < n { (first - base + k) * 3 + c } else { 0 };
                        index[k * 64 + j * 3 + c] = at as u8;
                        weights[k * 24 + j * 3 + c] =
                            if k < n { self.weights[x * self.ksize + k] } else { 0 };
                    }
                }
            }
            let taps = self.bounds[pixels].iter().map(|p| p.1).max().unwrap_or(0);
            blocks.push(Block { base, taps, index, weights });
        }
        blocks
    }

    /// Output pixels.
    pub fn len(&self) -> usize {
        self.bounds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bounds.is_empty()
    }

    /// The input pixels read: from the first one to one past the last.
    pub fn span(&self) -> (usize, usize) {
        let first = self.bounds.iter().map(|b| b.0).min().unwrap_or(0);
        let last = self.bounds.iter().map(|b| b.0 + b.1).max().unwrap_or(0);
        (first, last)
    }

    /// Output pixel `i`'s first input pixel and its used weights.
    pub fn pixel(&self, i: usize) -> (usize, &[i32]) {
        let (first, n) = self.bounds[i];
        (first, &self.weights[i * self.ksize..i * self.ksize + n])
    }

    /// The same taps with input pixels counted from `origin` (at most the first one read).
    pub(crate) fn shifted(&self, origin: usize) -> Taps {
        let mut taps = self.clone();
        for b in &mut taps.bounds {
            b.0 -= origin;
        }
        for block in &mut taps.blocks {
            block.base -= origin;
        }
        taps.reach = taps.reach.saturating_sub(origin * 3);
        taps
    }
}

/// Which code computes a pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    Plain,
    Avx2,
    /// AVX-512 F, BW, VL and VBMI (byte permutes across the register).
    Avx512,
}

impl Kernel {
    /// The fastest this CPU runs.
    pub fn best() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f") && has!("avx512bw") && has!("avx512vl") && has!("avx512vbmi") {
                return Kernel::Avx512;
            }
            if has!("avx2") {
                return Kernel::Avx2;
            }
        }
        Kernel::Plain
    }

    /// Every kernel this CPU runs, slowest first (for tests).
    pub fn available() -> Vec<Kernel> {
        let best = Kernel::best();
        [Kernel::Plain, Kernel::Avx2, Kernel::Avx512].into_iter().filter(|&k| k <= best).collect()
    }
}

impl PartialOrd for Kernel {
    fn partial_cmp(&self, other: &Kernel) -> Option<std::cmp::Ordering> {
        Some((*self as u8).cmp(&(*other as u8)))
    }
}

fn clip8(ss: i32) -> u8 {
    (ss >> PRECISION_BITS).clamp(0, 255) as u8
}

/// The horizontal pass over one RGB line, computed by `kernel` (which the CPU must run) as
/// far as it can: `out[x, c] = clip(Σ_k w[x][k] line[first(x) + k, c])`. `line` may run on
/// past the line's own pixels (into the next line or spare bytes): the SIMD kernels load some
/// bytes beyond the last pixel they weigh (with weight 0), where `line` has them.
pub fn horizontal(kernel: Kernel, line: &[u8], taps: &Taps, out: &mut [u8]) {
    assert_eq!(out.len(), taps.len() * 3, "horizontal pass: output length");
    assert!(kernel <= Kernel::best(), "this CPU does not run {kernel:?}");
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    {
        if kernel == Kernel::Avx512 {
            let fit = taps.blocks.iter().take_while(|b| b.base * 3 + 64 <= line.len()).count();
            // SAFETY: the CPU has AVX-512 F/BW/VL/VBMI (asserted above); each block's 64-byte
            // load lies within `line` (counted just now), its 24-byte store within `out`.
            unsafe { horizontal_avx512(line, &taps.blocks[..fit], out) };
            done = fit * BLOCK;
        }
        if kernel >= Kernel::Avx2 && taps.reach <= line.len() {
            // SAFETY: the CPU has AVX2; every load ends within `line` (checked against
            // `reach`), every store within `out` (its length asserted above).
            unsafe { horizontal_avx2(line, taps, out, done) };
            return;
        }
    }
    for (x, &(first, n)) in taps.bounds.iter().enumerate().skip(done) {
        let w = &taps.weights[x * taps.ksize..x * taps.ksize + n];
        let px = &line[first * 3..(first + n) * 3];
        let mut ss = [HALF; 3];
        for (p, &w) in px.chunks_exact(3).zip(w) {
            for c in 0..3 {
                ss[c] += i32::from(p[c]) * w;
            }
        }
        for c in 0..3 {
            out[x * 3 + c] = clip8(ss[c]);
        }
    }
}

/// The vertical pass for one output line, computed by `kernel` (which the CPU must run;
/// AVX-512 runs the AVX2 code): `out[i] = clip(Σ_k w[k] src[(first + k) stride + i])` for
/// `i < out.len()`, with `src` starting at the first byte of line 0's span.
pub fn vertical(kernel: Kernel, src: &[u8], stride: usize, first: usize, weights: &[i32], out: &mut [u8]) {
    let len = out.len();
    let end = (first + weights.len()).saturating_sub(1) * stride + len;
    assert!(weights.is_empty() || end <= src.len(), "vertical pass: input too short");
    assert!(kernel <= Kernel::best(), "this CPU does not run {kernel:?}");
    #[cfg(target_arch = "x86_64")]
    if kernel >= Kernel::Avx2 {
        // SAFETY: AVX2 is present; loads stay below `end` <= src.len() (checked above) and
        // stores below out.len().
        unsafe { vertical_avx2(src, stride, first, weights, out) };
        return;
    }
    vertical_scalar(src, stride, first, weights, out, 0);
}

fn vertical_scalar(src: &[u8], stride: usize, first: usize, weights: &[i32], out: &mut [u8], from: usize) {
    for (i, o) in out.iter_mut().enumerate().skip(from) {
        let mut ss = HALF;
        for (k, &w) in weights.iter().enumerate() {
            ss += i32::from(src[(first + k) * stride + i]) * w;
        }
        *o = clip8(ss);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn horizontal_avx2(line: &[u8], taps: &Taps, out: &mut [u8], from: usize) {
    use std::arch::x86_64::*;
    let pairs = taps.ksize / 2;
    let half = _mm256_setr_epi32(HALF, HALF, HALF, 0, 0, 0, 0, 0);
    // Lanes 3..5 (the second pixel of a pair) moved onto lanes 0..2.
    let upper = _mm256_setr_epi32(3, 4, 5, 7, 7, 7, 7, 7);
    for (x, &(first, _)) in taps.bounds.iter().enumerate().skip(from) {
        let mut acc = half;
        for k in 0..pairs {
            // SAFETY (all three): the caller checked that (first + 2k) * 3 + 8 <= line.len()
            // for every pixel and pair; `wide` holds 8 values per pair and output pixel.
            let px = unsafe { _mm_loadl_epi64(line.as_ptr().add((first + 2 * k) * 3).cast()) };
            let w = unsafe { _mm256_loadu_si256(taps.wide.as_ptr().add((x * pairs + k) * 8).cast()) };
            acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(px), w));
        }
        let sum = _mm256_add_epi32(acc, _mm256_permutevar8x32_epi32(acc, upper));
        let v = _mm256_castsi256_si128(_mm256_srai_epi32::<{ PRECISION_BITS as i32 }>(sum));
        let bytes = _mm_cvtsi128_si32(_mm_packus_epi16(_mm_packs_epi32(v, v), v)).to_le_bytes();
        out[x * 3..x * 3 + 3].copy_from_slice(&bytes[..3]);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi")]
unsafe fn horizontal_avx512(line: &[u8], blocks: &[Block], out: &mut [u8]) {
    use std::arch::x86_64::*;
    for (b, block) in blocks.iter().enumerate() {
        // SAFETY: the caller checked base * 3 + 64 <= line.len().
        let window = unsafe { _mm512_loadu_si512(line.as_ptr().add(block.base * 3).cast()) };
        let mut lo = _mm512_set1_epi32(HALF);
        let mut hi = _mm256_set1_epi32(HALF);
        for k in 0..block.taps {
            // SAFETY: `index` holds 64 bytes and `weights` 24 values per weight of the block.
            let (index, w_lo, w_hi) = unsafe {
                (
                    _mm512_loadu_si512(block.index.as_ptr().add(k * 64).cast()),
                    _mm512_loadu_si512(block.weights.as_ptr().add(k * 24).cast()),
                    _mm256_loadu_si256(block.weights.as_ptr().add(k * 24 + 16).cast()),
                )
            };
            // Output byte j takes window byte index[j]: pixel j / 3's k-th input, channel j % 3.
            let bytes = _mm512_permutexvar_epi8(index, window);
            lo = _mm512_add_epi32(
                lo,
                _mm512_mullo_epi32(_mm512_cvtepu8_epi32(_mm512_castsi512_si128(bytes)), w_lo),
            );
            let upper = _mm256_cvtepu8_epi32(_mm512_extracti32x4_epi32::<1>(bytes));
            hi = _mm256_add_epi32(hi, _mm256_mullo_epi32(upper, w_hi));
        }
        // >> 22, then clipped: negatives to 0 here, above 255 by the saturating narrowing.
        let lo = _mm512_max_epi32(_mm512_srai_epi32::<PRECISION_BITS>(lo), _mm512_setzero_si512());
        let hi = _mm256_max_epi32(_mm256_srai_epi32::<{ PRECISION_BITS as i32 }>(hi), _mm256_setzero_si256());
        // SAFETY: blocks are whole: bytes b * 24 .. b * 24 + 24 lie within `out`.
        unsafe {
            _mm_storeu_si128(out.as_mut_ptr().add(b * 24).cast(), _mm512_cvtusepi32_epi8(lo));
            _mm_storel_epi64(out.as_mut_ptr().add(b * 24 + 16).cast(), _mm256_cvtusepi32_epi8(hi));
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn vertical_avx2(src: &[u8], stride: usize, first: usize, weights: &[i32], out: &mut [u8]) {
    use std::arch::x86_64::*;
    let len = out.len();
    let mut i = 0;
    while i + 16 <= len {
        let mut lo = _mm256_set1_epi32(HALF);
        let mut hi = lo;
        for (k, &w) in weights.iter().enumerate() {
            let w = _mm256_set1_epi32(w);
            // SAFETY: (first + k) * stride + i + 16 <= the caller's checked end.
            let px = unsafe { _mm_loadu_si128(src.as_ptr().add((first + k) * stride + i).cast()) };
            lo = _mm256_add_epi32(lo, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(px), w));
            hi = _mm256_add_epi32(hi, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128::<8>(px)), w));
        }
        let lo = _mm256_srai_epi32::<{ PRECISION_BITS as i32 }>(lo);
        let hi = _mm256_srai_epi32::<{ PRECISION_BITS as i32 }>(hi);
        // i32 -> i16 -> u8 with saturation: the clip to 0..=255. packs works per 128-bit lane.
        let words = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packs_epi32(lo, hi));
        let bytes = _mm_packus_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256::<1>(words));
        // SAFETY: i + 16 <= out.len().
        unsafe { _mm_storeu_si128(out.as_mut_ptr().add(i).cast(), bytes) };
        i += 16;
    }
    vertical_scalar(src, stride, first, weights, out, i);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force: the passes' definitions with no SIMD and no shortcuts.
    fn by_definition(line: &[u8], taps: &Taps) -> Vec<u8> {
        let mut out = Vec::new();
        for (x, &(first, n)) in taps.bounds.iter().enumerate() {
            for c in 0..3 {
                let mut ss = i64::from(HALF);
                for k in 0..n {
                    ss += i64::from(line[(first + k) * 3 + c]) * i64::from(taps.weights[x * taps.ksize + k]);
                }
                out.push((ss >> PRECISION_BITS).clamp(0, 255) as u8);
            }
        }
        out
    }

    fn noise(len: usize, seed: u32) -> Vec<u8> {
        let mut s = seed;
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn every_kernel_computes_the_passes_by_their_definition() {
        // Odd tap counts, extreme weights (sums that clip at 0 and at 255), pixels at the end.
        let bounds = vec![(0, 3), (2, 5), (7, 5), (10, 2), (11, 1)];
        let weights: Vec<i32> = (0..25).map(|i| [1 << 21, 3_000_000, -900_000, 500_000, 7][i % 5]).collect();
        let small = Taps::new(5, bounds, &weights);
        // 8-pixel blocks as in a 2x downscale (the AVX-512 kernel's), and 3 pixels more.
        let bounds: Vec<(usize, usize)> = (0..35).map(|x| (2 * x, 5.min(75 - 2 * x))).collect();
        let weights: Vec<i32> =
            (0..35 * 5).map(|i| [900_000, 1_200_000, -300_000, 1_400_000, 1_000_000][i % 5]).collect();
        let blocks = Taps::new(5, bounds, &weights);
        assert_eq!(blocks.blocks.len(), 4);
        for kernel in Kernel::available() {
            for taps in [&small, &blocks] {
                let pixels = taps.span().1;
                let line = noise(pixels * 3 + 64, 7);
                let mut out = vec![0; taps.len() * 3];
                horizontal(kernel, &line, taps, &mut out);
                assert_eq!(out, by_definition(&line, taps), "{kernel:?}");
                // Without spare bytes past the pixels the SIMD kernels stop short; same bytes.
                let mut tight = vec![0; out.len()];
                horizontal(kernel, &line[..pixels * 3], taps, &mut tight);
                assert_eq!(tight, out, "{kernel:?} on a tight line");
            }
        }

        let (stride, rows) = (53, 6);
        let src = noise(stride * rows, 11);
        let w = [1_500_000, 2_000_000, 694_304, 4_194_304];
        for (len, kernel) in [1, 15, 16, 17, 40, 53]
            .into_iter()
            .flat_map(|l| Kernel::available().into_iter().map(move |k| (l, k)))
        {
            let mut out = vec![0; len];
            vertical(kernel, &src, stride, 1, &w[..3], &mut out);
            let want: Vec<u8> = (0..len)
                .map(|i| {
                    let ss: i64 = i64::from(HALF)
                        + (0..3).map(|k| i64::from(src[(1 + k) * stride + i]) * i64::from(w[k])).sum::<i64>();
                    (ss >> PRECISION_BITS).clamp(0, 255) as u8
                })
                .collect();
            assert_eq!(out, want, "len {len}, {kernel:?}");
        }
    }
}
