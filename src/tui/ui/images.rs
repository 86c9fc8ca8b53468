//! The Images view: a group's examples as the model sees them, drawn with half blocks (two
//! pixels per cell: the upper one as the foreground of `▀`, the lower as its background),
//! the ones an intervention flipped first and marked: ✗ right before, wrong after; ✓ wrong
//! before, right after. Without colour, four shades of block stand for brightness.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{block, scrolled};
use crate::tui::app::{Action, App};
use crate::tui::theme::Theme;
use memscope_core::studies::flips::{FlipExample, Flips};

/// An image downsampled by `factor` into RGB cells, contrast-stretched to 0..=255 over the
/// image (normalised pixels come in any range).
pub fn thumbnail(pixels: &[f32], shape: [usize; 3], factor: usize) -> Vec<Vec<[u8; 3]>> {
    let [c, h, w] = shape;
    let factor = factor.max(1);
    let (lo, hi) =
        pixels.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let (th, tw) = (h / factor, w / factor);
    (0..th)
        .map(|y| {
            (0..tw)
                .map(|x| {
                    std::array::from_fn(|k| {
                        let channel = if c >= 3 { k } else { 0 };
                        let mut sum = 0.0;
                        for dy in 0..factor {
                            for dx in 0..factor {
                                sum += pixels[channel * h * w + (y * factor + dy) * w + x * factor + dx];
                            }
                        }
                        let mean = sum / (factor * factor) as f32;
                        (((mean - lo) / span) * 255.0).round().clamp(0.0, 255.0) as u8
                    })
                })
                .collect()
        })
        .collect()
}

fn shade(rgb: [u8; 3]) -> char {
    let luma = (0.299 * rgb[0] as f32 + 0.587 * rgb[1] as f32 + 0.114 * rgb[2] as f32) / 255.0;
    [' ', '░', '▒', '▓', '█'][(luma * 4.0).round() as usize]
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, focused: bool) {
    let title =
        format!(" Images: G{} {} ", app.group, app.groups.get(app.group).map_or("", |g| g.name.as_str()));
    let Some(flips) = app.images.flips.as_ref() else {
        let text = if app.running.is_some() {
            "  computing…".to_string()
        } else {
            format!(
                "{}: the form's intervention, then G{}'s examples on {}, those it flipped first",
                app.keys.label(Action::Run),
                app.group,
                app.form.split()
            )
        };
        let paragraph = Paragraph::new(text).wrap(Wrap { trim: true });
        frame.render_widget(paragraph.block(block(title, focused, theme)), area);
        return;
    };
    let mut lines = header(flips, app, theme);
    lines.extend(example_lines(flips, area.width.saturating_sub(2) as usize, theme));
    if flips.drawn.len() < flips.examples.len() {
        lines.push(Line::styled(
            format!(
                "the first {} of {} drawn ({} exports every one)",
                flips.drawn.len(),
                flips.examples.len(),
                app.keys.label(Action::Export)
            ),
            theme.muted(),
        ));
    }
    scrolled(frame, area, block(title, focused, theme), lines, app.scroll, theme);
}

/// The drawn examples in rows of thumbnails as wide as `inner` allows, each marked under it.
fn example_lines<'a>(flips: &Flips, inner: usize, theme: &Theme) -> Vec<Line<'a>> {
    let mut lines = Vec::new();
    let [_, h, w] = flips.image_shape;
    // As large as lets three images sit side by side, never larger than the image.
    let factor = (1..=w.max(1)).find(|&f| 3 * (w / f + 1) <= inner).unwrap_or(w.max(1));
    let (tw, th) = ((w / factor).max(1), (h / factor).max(1));
    let per_row = (inner / (tw + 1)).max(1);
    let pixels_per_image = flips.image_shape.iter().product::<usize>();
    // The drawn examples, each with its place in `pixels`.
    let shown: Vec<(usize, &FlipExample)> =
        flips.drawn.iter().enumerate().filter_map(|(i, &p)| flips.examples.get(p).map(|e| (i, e))).collect();
    for chunk in shown.chunks(per_row) {
        let thumbs: Vec<Vec<Vec<[u8; 3]>>> = chunk
            .iter()
            .map(|(i, _)| {
                let start = i * pixels_per_image;
                match flips.pixels.get(start..start + pixels_per_image) {
                    Some(p) => thumbnail(p, flips.image_shape, factor),
                    None => vec![vec![[0; 3]; tw]; th],
                }
            })
            .collect();
        for row in (0..th).step_by(2) {
            let mut spans = Vec::new();
            for thumb in &thumbs {
                for x in 0..tw {
                    let top = thumb.get(row).and_then(|r| r.get(x)).copied().unwrap_or([0; 3]);
                    let bottom = thumb.get(row + 1).and_then(|r| r.get(x)).copied().unwrap_or(top);
                    spans.push(if theme.color {
                        Span::styled(
                            "▀",
                            Style::default()
                                .fg(Color::Rgb(top[0], top[1], top[2]))
                                .bg(Color::Rgb(bottom[0], bottom[1], bottom[2])),
                        )
                    } else {
                        Span::raw(shade(top).to_string())
                    });
                }
                spans.push(Span::raw(" "));
            }
            lines.push(Line::from(spans));
        }
        let mut labels = Vec::new();
        for (_, e) in chunk {
            let (mark, style) = match e.rank() {
                0 => ("✗", theme.negative().add_modifier(Modifier::BOLD)),
                1 => ("✓", theme.positive().add_modifier(Modifier::BOLD)),
                2 => ("·", theme.muted()),
                _ => (" ", theme.muted()),
            };
            let text = format!("{mark} #{}", e.index);
            labels.push(Span::styled(format!("{:<tw$} ", crate::tui::text::fit(&text, tw)), style));
        }
        lines.push(Line::from(labels));
    }
    lines
}

fn header<'a>(flips: &Flips, app: &App, theme: &Theme) -> Vec<Line<'a>> {
    let mut lines = Vec::new();
    if app.flips_stale() {
        lines.push(super::stale_line(app, theme));
    }
    lines.push(Line::styled(crate::tui::text::describe(&flips.spec.intervention), theme.muted()));
    let n = flips.examples.len();
    let run =
        if flips.spec.intervention.repeats > 1 && is_random(flips) { " (run 1 of the repeats)" } else { "" };
    lines.push(Line::from(vec![
        Span::raw(format!(
            "{} right of {n} before, {} after{run} · ",
            flips.correct_before(),
            flips.correct_after()
        )),
        Span::styled(format!("✗ {} broken", flips.broken()), theme.negative()),
        Span::raw(" · "),
        Span::styled(format!("✓ {} fixed", flips.fixed()), theme.positive()),
        Span::styled(" · '·' still wrong, no mark still right", theme.muted()),
    ]));
    lines
}

fn is_random(flips: &Flips) -> bool {
    let spec = &flips.spec.intervention;
    spec.intervention.is_random()
        || matches!(spec.query.selection, memscope_core::neurons::select::Selection::Random { .. })
}
