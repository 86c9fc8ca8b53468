//! Figures: the paper's plots of a result, drawn with plotters as SVG or PNG. One file per
//! kind; each draws from a result the engine returns (or its exported JSON), so a figure
//! from `--from RESULT.json` is the figure drawn directly.

mod bars;
mod curves;
mod diagnostics;
pub(crate) mod epochs;
mod ranks;
mod sensitivity;
pub mod style;
pub(crate) mod sweep;

use std::path::Path;

use anyhow::{Context, Result, bail};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use serde::de::DeserializeOwned;

use crate::render::Provenance;
use crate::studies::diagnostics::DiagnosticCurves;
use crate::studies::epochs::EpochSeries;
use crate::studies::grid::InterventionGrid;
use crate::studies::intervention::InterventionResult;
use crate::studies::ranks::RankStudy;
use crate::studies::sensitivity::SensitivityStudy;
use crate::studies::sweep::Sweep;
use crate::studies::timeline::{MitigationCurves, Timeline};

/// A figure's data: one variant per kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Figure {
    /// Per-group Δacc of each intervention at each k, with error bars over repeats.
    Bars(InterventionGrid),
    /// Both rank histograms of every group.
    Ranks(RankStudy),
    /// Sensitive layers per group against rewind distance, and the layer × group heat map.
    Sensitivity(SensitivityStudy),
    /// Per-group, worst-group and mean accuracy over epochs.
    Timeline(Timeline),
    /// Worst-group val accuracy per epoch of each mitigation run.
    Mitigation(MitigationCurves),
    /// Per-epoch NT-Xent, supervised term, gradient norm, dense-vs-masked distance and
    /// worst-group val accuracy of mitigation runs, a panel each.
    Diagnostics(DiagnosticCurves),
    /// One intervention within each layer in turn: the layer × group grid of changes.
    Sweep(Sweep),
    /// One intervention at every checkpoint in turn: each group's change over training.
    Epochs(EpochSeries),
}

/// The kinds, as the command line names them.
pub const KINDS: [&str; 8] =
    ["bars", "ranks", "sensitivity", "timeline", "mitigation", "diagnostics", "sweep", "epochs"];

/// An image format, from a file's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    Svg,
    Png,
}

impl ImageFormat {
    /// The format `path`'s extension names (`.svg` or `.png`, any case).
    pub fn of(path: &Path) -> Result<ImageFormat> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("svg") => Ok(ImageFormat::Svg),
            Some("png") => Ok(ImageFormat::Png),
            _ => bail!("--out {}: the figure's file must end in .svg or .png", path.display()),
        }
    }
}

impl Figure {
    /// The kind's name on the command line.
    pub fn kind(&self) -> &'static str {
        match self {
            Figure::Bars(_) => "bars",
            Figure::Ranks(_) => "ranks",
            Figure::Sensitivity(_) => "sensitivity",
            Figure::Timeline(_) => "timeline",
            Figure::Mitigation(_) => "mitigation",
            Figure::Diagnostics(_) => "diagnostics",
            Figure::Sweep(_) => "sweep",
            Figure::Epochs(_) => "epochs",
        }
    }

    /// The figure of `kind` drawn from an exported result (`text`, read from `path`): the
    /// JSON that `memscope figure --json` or the matching command (`intervene`, `ranks`,
    /// `sensitivity`) writes with `--format json`.
    pub fn from_json(kind: &str, text: &str, path: &Path) -> Result<Figure> {
        fn parse<T: DeserializeOwned>(text: &str, path: &Path, what: &str) -> Result<T> {
            serde_json::from_str(text).with_context(|| format!("{}: not {what}", path.display()))
        }
        Ok(match kind {
            "bars" => match serde_json::from_str::<InterventionGrid>(text) {
                Ok(grid) => Figure::Bars(grid),
                Err(_) => Figure::Bars(InterventionGrid::single(parse::<InterventionResult>(
                    text,
                    path,
                    "an intervention result (memscope figure bars --json, or intervene --format json)",
                )?)),
            },
            "ranks" => Figure::Ranks(parse(text, path, "a rank study (memscope ranks --format json)")?),
            "sensitivity" => Figure::Sensitivity(parse(
                text,
                path,
                "a sensitivity study (memscope sensitivity --format json)",
            )?),
            "timeline" => {
                Figure::Timeline(parse(text, path, "a timeline (memscope figure timeline --json)")?)
            }
            "mitigation" => Figure::Mitigation(parse(
                text,
                path,
                "mitigation curves (memscope figure mitigation --json)",
            )?),
            "diagnostics" => Figure::Diagnostics(parse(
                text,
                path,
                "diagnostic curves (memscope figure diagnostics --json)",
            )?),
            "sweep" => Figure::Sweep(parse(
                text,
                path,
                "a layer sweep (memscope figure sweep --json, or the explorer's Sweep export)",
            )?),
            "epochs" => Figure::Epochs(parse(
                text,
                path,
                "an epoch series (memscope figure epochs --json, or the explorer's Epochs export)",
            )?),
            other => bail!("unknown figure kind '{other}' (valid: {})", KINDS.join(", ")),
        })
    }

    /// The provenance recorded in an exported result, when it has one.
    pub fn provenance_in(text: &str) -> Option<Provenance> {
        let value: serde_json::Value = serde_json::from_str(text).ok()?;
        serde_json::from_value(value.get("provenance")?.clone()).ok()
    }

    /// The data as JSON (what `--from` reads back).
    pub fn json(&self, provenance: &Provenance) -> Result<String> {
        match self {
            Figure::Bars(d) => crate::render::json(d, provenance),
            Figure::Ranks(d) => crate::render::json(d, provenance),
            Figure::Sensitivity(d) => crate::render::json(d, provenance),
            Figure::Timeline(d) => crate::render::json(d, provenance),
            Figure::Mitigation(d) => crate::render::json(d, provenance),
            Figure::Diagnostics(d) => crate::render::json(d, provenance),
            Figure::Sweep(d) => crate::render::json(d, provenance),
            Figure::Epochs(d) => crate::render::json(d, provenance),
        }
    }

    /// The figure's size in pixels.
    pub fn size(&self) -> (u32, u32) {
        match self {
            Figure::Bars(g) => (1000, if g.interventions.len() > 2 { 720 } else { 460 }),
            Figure::Ranks(r) => (900, 140 + 200 * r.groups.len().max(1) as u32),
            Figure::Sensitivity(s) => {
                (1100, 260 + 22 * (s.rows.len() / s.spec.epochs_back.len().max(1)) as u32)
            }
            Figure::Timeline(_) | Figure::Mitigation(_) | Figure::Epochs(_) => (900, 540),
            Figure::Diagnostics(d) => diagnostics::size(d),
            Figure::Sweep(s) => (900, sweep::height(s.rows.len())),
        }
    }

    /// The title (split and epoch) and the caption lines (settings and seed).
    pub fn title_and_caption(&self) -> (String, Vec<String>) {
        match self {
            Figure::Bars(g) => bars::describe(g),
            Figure::Ranks(r) => ranks::describe(r),
            Figure::Sensitivity(s) => sensitivity::describe(s),
            Figure::Timeline(t) => curves::describe_timeline(t),
            Figure::Mitigation(m) => curves::describe_mitigation(m),
            Figure::Diagnostics(d) => diagnostics::describe(d),
            Figure::Sweep(s) => sweep::describe(s),
            Figure::Epochs(s) => epochs::describe(s),
        }
    }
}

/// The figure as SVG text.
pub fn svg(figure: &Figure, provenance: Option<&Provenance>) -> Result<String> {
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, figure.size()).into_drawing_area();
        draw(&root, figure, provenance)?;
        root.present()?;
    }
    Ok(text)
}

/// The figure as a PNG file's bytes.
pub fn png(figure: &Figure, provenance: Option<&Provenance>) -> Result<Vec<u8>> {
    use image::ImageEncoder;
    let (w, h) = figure.size();
    let mut pixels = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        draw(&root, figure, provenance)?;
        root.present()?;
    }
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(&pixels, w, h, image::ExtendedColorType::Rgb8)
        .context("cannot encode the figure as PNG")?;
    Ok(bytes)
}

/// Draws `figure` to `path` (SVG or PNG by its extension), atomically; never over an
/// experiment's files.
pub fn write(path: &Path, figure: &Figure, provenance: Option<&Provenance>) -> Result<()> {
    let bytes = match ImageFormat::of(path)? {
        ImageFormat::Svg => svg(figure, provenance)?.into_bytes(),
        ImageFormat::Png => png(figure, provenance)?,
    };
    crate::util::fsx::write_output(path, &bytes)
}

/// The whole figure: white ground, title, the kind's panels, caption lines and provenance.
fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    figure: &Figure,
    provenance: Option<&Provenance>,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    style::register_font()?;
    root.fill(&WHITE)?;
    let (title, caption) = figure.title_and_caption();
    let (w, h) = root.dim_in_pixel();
    let chars = (w as usize / 7).max(40);
    let mut lines: Vec<String> = caption.iter().flat_map(|c| style::wrap(c, chars)).collect();
    if let Some(p) = provenance {
        lines.push(provenance_line(p));
    }
    root.draw_text(&title, &style::text(18, HPos::Center, VPos::Top), (w as i32 / 2, 8))?;
    let caption_height = 16 * lines.len() as i32 + 8;
    for (i, line) in lines.iter().enumerate() {
        let y = h as i32 - caption_height + 16 * i as i32 + 4;
        root.draw_text(line, &style::text(12, HPos::Left, VPos::Top), (10, y))?;
    }
    let body = root.margin(34, caption_height, 0, 0);
    match figure {
        Figure::Bars(g) => bars::draw(root, &body, g),
        Figure::Ranks(r) => ranks::draw(root, &body, r),
        Figure::Sensitivity(s) => sensitivity::draw(root, &body, s),
        Figure::Timeline(t) => curves::draw_timeline(&body, t),
        Figure::Mitigation(m) => curves::draw_mitigation(&body, m),
        Figure::Diagnostics(d) => diagnostics::draw(&body, d),
        Figure::Sweep(s) => sweep::draw(root, &body, s),
        Figure::Epochs(s) => epochs::draw(&body, s),
    }
}

/// "memscope 0.1.0 · spurious-digits · epoch-040.safetensors sha256 1a2b3c4d5e6f"
pub(crate) fn provenance_line(p: &Provenance) -> String {
    let sha: String = p.sha256.chars().take(12).collect();
    format!("memscope {} · {} · {} sha256 {sha}", p.memscope, p.name, p.checkpoint)
}

/// Percentage points of a fraction.
pub fn pp(fraction: f64) -> f64 {
    fraction * 100.0
}

/// The upper end of an axis holding `max`: the next multiple of `step` (at least `step`).
pub(crate) fn axis_max(max: f64, step: f64) -> f64 {
    ((max / step).ceil() * step).max(step)
}

/// "1 neuron", "3 neurons".
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}
