//! Results of interventions: signed accuracy-change bars, the selected neurons, history.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Padding, Paragraph, Row, Table, Wrap};

use super::{block, pct, pts, short};
use crate::studies::intervention::ALL_CANDIDATES;
use crate::tui::app::App;
use crate::tui::theme::Theme;

/// Scales a bar's half-width covers, in points: the smallest that fits the largest change.
const SCALES: [f64; 6] = [2.0, 5.0, 10.0, 25.0, 50.0, 100.0];

/// The smallest scale that fits a change of `max` points (100 beyond it: bars clip there).
pub fn scale_for(max: f64) -> f64 {
    SCALES.iter().copied().find(|&s| s >= max).unwrap_or(100.0)
}

/// A bar of exactly `width` cells centred on zero (│): negative changes fill to the left,
/// positive to the right. Returns (before the fill, the fill, after the fill).
pub fn signed_bar(change: f64, scale: f64, width: usize) -> (String, String, String) {
    let half = width / 2;
    let right = width - half - 1;
    let cells = ((change.abs() / scale) * half as f64).round() as usize;
    let cells = if change != 0.0 { cells.max(1) } else { 0 };
    if change < 0.0 {
        let cells = cells.min(half);
        (" ".repeat(half - cells), "█".repeat(cells), format!("│{}", " ".repeat(right)))
    } else {
        let cells = cells.min(right);
        (format!("{}│", " ".repeat(half)), "█".repeat(cells), " ".repeat(right - cells))
    }
}

pub fn draw_bars(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, focused: bool) {
    let Some(r) = &app.result else {
        let text = vec![
            Line::raw(""),
            Line::raw(
                "No intervention yet. Pick a layer and a group on the left, set the form above, and press Enter.",
            ),
        ];
        // Wrapped, so a narrow panel shows every word.
        let paragraph = Paragraph::new(text).wrap(Wrap { trim: true });
        frame.render_widget(
            paragraph.block(block(" Accuracy change ", focused, theme).padding(Padding::horizontal(1))),
            area,
        );
        return;
    };
    let max = r.groups.iter().filter_map(|g| g.change).fold(0.0f64, |m, c| m.max(100.0 * c.abs()));
    let scale = scale_for(max);
    let inner = area.width.saturating_sub(2) as usize;
    // Group names only where there is room; the groups panel always shows them.
    let label = if inner >= 76 { 17 } else { 3 };
    let bar_width = inner.saturating_sub(label + 15 + 7 + 6).max(8);
    let mut lines = vec![Line::styled(short(r), theme.muted())];
    for g in &r.groups {
        let marker = if r.after_summary.worst_group == Some(g.group) {
            " worst"
        } else if r.before.worst_group == Some(g.group) {
            " (was)"
        } else {
            ""
        };
        let change = g.change.map(|c| 100.0 * c);
        let (pad, fill, rest) = signed_bar(change.unwrap_or(0.0), scale, bar_width);
        let fill_style = if change.unwrap_or(0.0) < 0.0 { theme.negative() } else { theme.positive() };
        let name = format!("G{} {}", g.group, g.name);
        lines.push(Line::from(vec![
            Span::raw(format!("{:<label$.label$}", name)),
            Span::raw(format!("{:>6}→{:<7} ", pct(g.before), pct(g.after))),
            Span::styled(pad, theme.muted()),
            Span::styled(fill, fill_style),
            Span::styled(rest, theme.muted()),
            Span::styled(format!(" {:>6}", pts(g.change)), fill_style),
            Span::styled(marker, theme.negative()),
        ]));
    }
    let (b, a) = (&r.before_summary, &r.after_summary);
    lines.push(Line::raw(format!(
        "worst-group           {} → {}",
        pct(b.worst_group_accuracy),
        pct(a.worst_group_accuracy)
    )));
    lines.push(Line::raw(format!(
        "mean (train-weighted) {} → {}",
        pct(b.mean_accuracy_train_weighted),
        pct(a.mean_accuracy_train_weighted)
    )));
    if r.runs > 1 {
        let spread: Vec<String> =
            r.groups.iter().map(|g| format!("±{:.1}", 100.0 * g.after_std.unwrap_or(0.0))).collect();
        lines.push(Line::styled(
            format!("mean of {} runs; std per group {}", r.runs, spread.join(" ")),
            theme.muted(),
        ));
    }
    let title = format!(" Δ accuracy on {}, points (bars ±{scale}) ", r.spec.split);
    frame.render_widget(Paragraph::new(lines).block(block(title, focused, theme)), area);
}

pub fn draw_neurons(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, focused: bool) {
    let result = app.result.as_ref().filter(|r| !r.neurons.is_empty());
    // With --normalize-layers the ranking sorts score / layer mean: shown beside the raw score.
    let normalized = result.is_some_and(|r| r.spec.query.normalize_layers);
    let rows: Vec<Row> = result
        .iter()
        .flat_map(|r| r.neurons.iter())
        .map(|n| {
            let mut cells = vec![n.id.to_string(), format!("{:.3e}", n.score)];
            if normalized {
                cells.push(format!("{:.3}", n.ranking_score));
            }
            cells.extend([
                format!("{:.1}", n.score_percentile),
                format!("{:.3}", n.magnitude),
                format!("{:.1}", n.magnitude_percentile),
            ]);
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![Constraint::Min(22), Constraint::Length(10)];
    let mut header = vec!["neuron", "score"];
    if normalized {
        widths.push(Constraint::Length(8));
        header.push("÷mean");
    }
    widths.extend([Constraint::Length(6), Constraint::Length(7), Constraint::Length(6)]);
    header.extend(["pct", "|w|", "|w|pct"]);
    let title = if result.is_none() {
        " Selected neurons (none yet) "
    } else {
        " Selected neurons (pct: percentile rank, 100 = largest) "
    };
    let outer = block(title, focused, theme);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let legend_lines = if normalized { 2 } else { 1 };
    let [table_area, legend_area] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(legend_lines)]).areas(inner);
    let table = Table::new(rows, widths).header(Row::new(header).style(theme.accent()));
    frame.render_widget(table, table_area);
    if let Some(r) = result {
        let scope = r.neurons.first().map(|n| n.score_percentile_scope.as_str()).unwrap_or_default();
        let mut legend = vec![Line::from(format!("pct: {scope}; |w|pct: {ALL_CANDIDATES}"))];
        if normalized {
            legend.push(Line::from("ranked by ÷mean = score / layer mean"));
        }
        frame.render_widget(Paragraph::new(legend).style(theme.muted()), legend_area);
    }
}

pub fn draw_history(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, focused: bool) {
    let groups = app.groups.len();
    let mut header = vec!["#".to_string(), "run".to_string()];
    header.extend((0..groups).map(|g| format!("ΔG{g}")));
    header.push("worst".into());
    let rows: Vec<Row> = app
        .history
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut cells = vec![(i + 1).to_string(), short(r)];
            cells.extend(r.groups.iter().map(|g| pts(g.change)));
            cells.push(pct(r.after_summary.worst_group_accuracy));
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![Constraint::Length(2), Constraint::Min(16)];
    widths.extend((0..groups).map(|_| Constraint::Length(6)));
    widths.push(Constraint::Length(6));
    let table = Table::new(rows, widths).header(Row::new(header).style(theme.accent())).block(block(
        " History (newest first; signed change in points) ",
        focused,
        theme,
    ));
    frame.render_widget(table, area);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_is_the_smallest_that_fits() {
        assert_eq!(scale_for(0.0), 2.0);
        assert_eq!(scale_for(2.0), 2.0);
        assert_eq!(scale_for(2.1), 5.0);
        assert_eq!(scale_for(54.0), 100.0);
        assert_eq!(scale_for(250.0), 100.0);
    }

    #[test]
    fn bars_fill_away_from_zero_and_keep_their_width() {
        let cells = |(a, b, c): (String, String, String)| (a + &b + &c).chars().count();
        // Half-width 5 cells on each side of the axis.
        assert_eq!(signed_bar(-40.0, 100.0, 11), ("   ".into(), "██".into(), "│     ".into()));
        assert_eq!(signed_bar(100.0, 100.0, 11), ("     │".into(), "█████".into(), "".into()));
        assert_eq!(signed_bar(0.0, 100.0, 11), ("     │".into(), "".into(), "     ".into()));
        // A change too small for a cell still shows one; one beyond the scale stops at the edge.
        assert_eq!(signed_bar(0.1, 100.0, 11).1, "█");
        assert_eq!(signed_bar(-300.0, 100.0, 11).1.chars().count(), 5);
        for change in [-300.0, -1.0, 0.0, 0.4, 7.0, 300.0] {
            for width in [8, 9, 30, 31] {
                assert_eq!(cells(signed_bar(change, 5.0, width)), width, "{change} {width}");
            }
        }
    }
}
