//! One look for every figure: the Okabe–Ito palette (readable by colour-blind readers and,
//! with the markers, in black-and-white print), the bundled font, titles and captions.

use std::sync::OnceLock;

use anyhow::{Result, anyhow};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// DejaVu Sans (Bitstream Vera licence, `assets/fonts/LICENSE-DejaVu.txt`): PNG text needs a
/// real font, and a bundled one draws the same on every machine.
static FONT: &[u8] = include_bytes!("../../../../assets/fonts/DejaVuSans.ttf");

/// The family every figure's text is set in.
pub(crate) const FAMILY: &str = "sans-serif";

/// Registers the bundled font once (plotters' font table is global).
pub(crate) fn register_font() -> Result<()> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok { Ok(()) } else { Err(anyhow!("the bundled font DejaVuSans.ttf does not load")) }
}

/// Okabe & Ito's eight colours, as `#rrggbb` for HTML and as plotters colours.
pub(crate) const OKABE_ITO: [(u8, u8, u8); 8] = [
    (0x00, 0x00, 0x00), // black
    (0xE6, 0x9F, 0x00), // orange
    (0x56, 0xB4, 0xE9), // sky blue
    (0x00, 0x9E, 0x73), // bluish green
    (0xF0, 0xE4, 0x42), // yellow
    (0x00, 0x72, 0xB2), // blue
    (0xD5, 0x5E, 0x00), // vermillion
    (0xCC, 0x79, 0xA7), // reddish purple
];

/// G0..G3 always get these (blue, vermillion, bluish green, reddish purple: four that stay
/// apart for every kind of colour blindness and in grey); later groups cycle through the rest.
pub const GROUP_RGB: [(u8, u8, u8); 4] = [OKABE_ITO[5], OKABE_ITO[6], OKABE_ITO[3], OKABE_ITO[7]];
const EXTRA_RGB: [(u8, u8, u8); 3] = [OKABE_ITO[1], OKABE_ITO[2], OKABE_ITO[4]];

/// The colour of group `g`, the same in every figure (and meant for the explorer too).
pub fn group_rgb(g: usize) -> (u8, u8, u8) {
    if g < GROUP_RGB.len() { GROUP_RGB[g] } else { EXTRA_RGB[(g - GROUP_RGB.len()) % EXTRA_RGB.len()] }
}

pub(crate) fn group_color(g: usize) -> RGBColor {
    let (r, gr, b) = group_rgb(g);
    RGBColor(r, gr, b)
}

/// `#rrggbb` of a colour, as the SVG backend writes it.
pub fn hex((r, g, b): (u8, u8, u8)) -> String {
    format!("#{r:02X}{g:02X}{b:02X}")
}

/// Colours of series that are not groups (methods, runs): black, orange, sky blue, bluish
/// green, then the rest of the palette.
pub fn series_rgb(i: usize) -> (u8, u8, u8) {
    const ORDER: [usize; 8] = [0, 1, 2, 3, 5, 6, 7, 4];
    OKABE_ITO[ORDER[i % ORDER.len()]]
}

pub(crate) fn series_color(i: usize) -> RGBColor {
    let (r, g, b) = series_rgb(i);
    RGBColor(r, g, b)
}

/// Worst-group lines and the mean are black and grey.
pub(crate) const WORST: RGBColor = RGBColor(0, 0, 0);
pub(crate) const MEAN: RGBColor = RGBColor(0x80, 0x80, 0x80);
pub(crate) const GRID: RGBColor = RGBColor(0xDD, 0xDD, 0xDD);

/// Text of `size` px, anchored at `h`, `v`.
pub fn text(size: u32, h: HPos, v: VPos) -> TextStyle<'static> {
    TextStyle::from((FAMILY, size).into_font()).pos(Pos::new(h, v)).color(&BLACK)
}

/// Draws group `g`'s marker at each point, so that lines stay apart in grey: circle,
/// triangle, cross, hollow circle.
pub fn markers<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    g: usize,
    points: &[(f64, f64)],
    color: RGBColor,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let p = points.iter().copied();
    match g % 4 {
        0 => chart.draw_series(p.map(|at| Circle::new(at, 4, color.filled())))?,
        1 => chart.draw_series(p.map(|at| TriangleMarker::new(at, 5, color.filled())))?,
        2 => chart.draw_series(p.map(|at| Cross::new(at, 4, color.stroke_width(2))))?,
        _ => chart.draw_series(p.map(|at| Circle::new(at, 4, color.stroke_width(2))))?,
    };
    Ok(())
}

/// Wraps `line` at about `width` characters.
pub fn wrap(line: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in line.split(' ') {
        if !current.is_empty() && current.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}
