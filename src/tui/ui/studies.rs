//! Study views: rank histograms of the selected group, and the sensitive-layer heat table.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Row, Table, Wrap};

use super::block;
use crate::tui::app::{Action, App};
use crate::tui::text::{describe, pts};
use crate::tui::theme::Theme;
use memscope_core::studies::sensitivity::SensitivityStudy;

fn waiting(frame: &mut Frame, area: Rect, title: &str, app: &App, theme: &Theme, focused: bool) {
    let text = match app.running {
        Some(_) => "  computing…".to_string(),
        None => format!("  press {} to compute", app.keys.label(Action::Run)),
    };
    frame.render_widget(Paragraph::new(text).block(block(title.to_string(), focused, theme)), area);
}

pub fn draw_ranks(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, focused: bool) {
    let Some(study) = &app.ranks.study else {
        return waiting(frame, area, " Rank histograms ", app, theme, focused);
    };
    let stale = match app.ranks_stale() {
        true => format!(" · stale: {}", app.keys.label(Action::Run)),
        false => String::new(),
    };
    let title = format!(
        " Ranks{stale} · top {} of {} {}s ({:.2}%) ",
        study.selected,
        study.candidates,
        study.spec.granularity,
        100.0 * study.spec.fraction
    );
    let outer = block(title, focused, theme);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    // Every group where the screen has room for two columns of 2 x 2 histograms, else the
    // group selected on the left (↑↓ in the Groups panel picks another).
    let all = inner.width >= 2 * 48 && inner.height >= 2 * 14;
    if all {
        let rows = study.groups.len().div_ceil(2).max(1);
        let row_areas = Layout::vertical(vec![Constraint::Ratio(1, rows as u32); rows]).split(inner);
        for (i, g) in study.groups.iter().enumerate() {
            let [left, right] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(row_areas[i / 2]);
            group_ranks(frame, if i % 2 == 0 { left } else { right }, study.selected, g, theme);
        }
    } else if let Some(g) = study.groups.get(app.group) {
        group_ranks(frame, inner, study.selected, g, theme);
    }
}

/// Share of `histogram`'s neurons in its top `bins` bins.
fn top_share(histogram: &[usize], bins: usize) -> (usize, f64) {
    let total: usize = histogram.iter().sum();
    let top: usize = histogram.iter().rev().take(bins).sum();
    (top, if total > 0 { top as f64 / total as f64 } else { 0.0 })
}

/// A group's two histograms with count axes, and a line each stating how much of the top
/// set sits in the other score's top 5% and top 25% (uniform ranks would put 5% and 25% there).
fn group_ranks(
    frame: &mut Frame,
    area: Rect,
    selected: usize,
    g: &memscope_core::studies::ranks::GroupRanks,
    theme: &Theme,
) {
    let [name, top, bottom, axis] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Ratio(1, 2),
        Constraint::Ratio(1, 2),
        Constraint::Length(1),
    ])
    .areas(area);
    let uniform = if area.width >= 70 { " · uniform ranks: 5% and 25%" } else { "" };
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(format!("G{} {}", g.group, g.name), theme.group(g.group)),
            Span::styled(format!(" · {} in both top sets{uniform}", g.overlap), theme.muted()),
        ])),
        name,
    );
    for (area, what, histogram) in [
        (top, "|w| percentile of the top by gradient", &g.magnitude_rank_of_top_gradient),
        (bottom, "gradient percentile of the top by |w|", &g.gradient_rank_of_top_magnitude),
    ] {
        let (in5, share5) = top_share(histogram, 1);
        let (in25, share25) = top_share(histogram, 5);
        let numbers = Span::styled(
            format!(
                "top 5%: {in5}/{selected} ({:.0}%) · top 25%: {in25} ({:.0}%)",
                100.0 * share5,
                100.0 * share25
            ),
            theme.accent(),
        );
        let label = Span::styled(format!("{what}: "), theme.muted());
        // The numbers beside the label where they fit, else under it.
        let mut lines = if label.width() + numbers.width() <= area.width as usize {
            vec![Line::from(vec![label, numbers])]
        } else {
            vec![Line::from(label), Line::from(numbers)]
        };
        let rows = (area.height as usize).saturating_sub(lines.len());
        lines.extend(histogram_lines(histogram, rows, theme));
        frame.render_widget(Paragraph::new(lines), area);
    }
    // Bin b is drawn at column 4 + 2b: label 0, 25, 50, 75, 100 % there.
    let mut scale = vec![' '; 48];
    for (col, text) in [(4, "0%"), (14, "25%"), (24, "50%"), (34, "75%"), (42, "100%")] {
        for (i, ch) in text.chars().enumerate() {
            scale[col + i] = ch;
        }
    }
    let scale: String = scale.into_iter().collect::<String>() + "pct";
    frame.render_widget(Paragraph::new(Span::styled(scale, theme.muted())), axis);
}

/// Eighths of a cell, for bars drawn row by row.
const EIGHTHS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A histogram `rows` high, one column per bin (and a gap), with its count axis on the left:
/// the largest bin's count at the top, 0 at the bottom.
pub fn histogram_lines<'a>(bins: &[usize], rows: usize, theme: &Theme) -> Vec<Line<'a>> {
    let rows = rows.max(1);
    let max = bins.iter().copied().max().unwrap_or(0).max(1);
    (0..rows)
        .map(|r| {
            let label = if r == 0 {
                format!("{max:>3}┤")
            } else if r + 1 == rows {
                "  0┤".to_string()
            } else {
                "   │".to_string()
            };
            let from_bottom = (rows - 1 - r) as f64;
            let cells: String = bins
                .iter()
                .map(|&c| {
                    let level = c as f64 / max as f64 * rows as f64 - from_bottom;
                    let eighths = (level.clamp(0.0, 1.0) * 8.0).round() as usize;
                    // A non-empty bin shows at least a sliver on the bottom row.
                    let eighths = if c > 0 && r + 1 == rows { eighths.max(1) } else { eighths };
                    format!("{} ", EIGHTHS[eighths])
                })
                .collect();
            Line::from(vec![Span::styled(label, theme.muted()), Span::styled(cells, theme.accent())])
        })
        .collect()
}

fn heat(change: Option<f64>, sensitive: bool, theme: &Theme) -> Style {
    let magnitude = change.map(|c| (100.0 * c).abs()).unwrap_or(0.0);
    if !theme.color {
        return if sensitive { theme.selected() } else { Style::default() };
    }
    let bg = match magnitude {
        m if m >= 20.0 => Color::Red,
        m if m >= 5.0 => Color::LightRed,
        m if m >= 1.0 => Color::Yellow,
        _ => return Style::default(),
    };
    Style::default().bg(bg).fg(Color::Black)
}

pub fn draw_sensitivity(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, focused: bool) {
    let Some(study) = &app.sensitivity.study else {
        return waiting(frame, area, " Sensitive layers ", app, theme, focused);
    };
    let Some(&n) = study.spec.epochs_back.get(app.sensitivity.distance) else { return };
    let groups = study.groups.len();
    let cell = |text: String| ratatui::widgets::Cell::from(text);
    let mut header = vec![cell("layer".into())];
    header.extend((0..groups).map(|g| cell(format!("{:>5}", format!("G{g}")))));
    let rows: Vec<Row> = study
        .rows
        .iter()
        .filter(|r| r.epochs_back == n)
        .map(|r| {
            let mut cells = vec![cell(short_layer(&r.layer))];
            cells.extend(r.change.iter().zip(&r.sensitive).map(|(&c, &s)| {
                cell(format!("{:>6}{}", pts(c), if s { "*" } else { " " })).style(heat(c, s, theme))
            }));
            Row::new(cells)
        })
        .collect();
    let mut count = vec![cell("sensitive layers".into())];
    count.extend(study.counts[app.sensitivity.distance].iter().map(|c| cell(format!("{c:>6} "))));
    let longest = study.rows.iter().map(|r| short_layer(&r.layer).chars().count()).max().unwrap_or(0);
    let mut widths = vec![Constraint::Length(longest.max(16) as u16)];
    widths.extend((0..groups).map(|_| Constraint::Length(7)));
    let distances: Vec<String> = study.spec.epochs_back.iter().map(|d| d.to_string()).collect();
    let outer = sensitivity_block(app, study, n, theme, focused);
    let inner = outer.inner(area);
    // The count row stays under the table whatever is scrolled; the table scrolls with ↑↓.
    let legend = Paragraph::new(format!(
        "distances {} · {}",
        distances.join("/"),
        memscope_core::render::threshold_in_words(study)
    ))
    .style(theme.muted())
    .wrap(Wrap { trim: true });
    let legend_height = legend.line_count(inner.width) as u16;
    let room = inner.height.saturating_sub(1 + legend_height).max(2);
    let table_height = (rows.len() as u16 + 1).min(room);
    let [table_area, count_area, _, legend_area] = Layout::vertical([
        Constraint::Length(table_height),
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(legend_height),
    ])
    .areas(inner);
    let visible = table_area.height.saturating_sub(1) as usize;
    let offset = app.scroll.min(rows.len().saturating_sub(visible));
    let below = rows.len().saturating_sub(offset + visible);
    let outer = if offset > 0 || below > 0 {
        outer.title_bottom(Line::styled(format!(" ↑{offset} ↓{below} more "), theme.accent()).right_aligned())
    } else {
        outer
    };
    frame.render_widget(outer, area);
    let table = Table::new(rows.into_iter().skip(offset), widths.clone())
        .column_spacing(0)
        .header(Row::new(header).style(theme.accent()));
    frame.render_widget(table, table_area);
    let count = Table::new([Row::new(count).style(theme.accent())], widths).column_spacing(0);
    frame.render_widget(count, count_area);
    frame.render_widget(legend, legend_area);
}

/// The Sensitivity panel's border: the distance shown (and the keys that change it), and
/// whether the study is of another epoch or split than the one selected.
fn sensitivity_block<'a>(
    app: &App,
    study: &SensitivityStudy,
    n: usize,
    theme: &Theme,
    focused: bool,
) -> Block<'a> {
    let title = format!(
        " Rewind {n} epochs back ({}) · * = |Δ| ≥ {:.0} pp ",
        app.keys.pair(Action::Left, Action::Right),
        100.0 * study.spec.threshold
    );
    let outer = block(title, focused, theme);
    if app.sensitivity_current() {
        return outer;
    }
    // Another epoch or split is selected: the table is of the one it was run at.
    let (epoch, split, run) = (study.spec.epoch, study.spec.split, app.keys.label(Action::Run));
    outer.title_bottom(Line::styled(
        format!(" stale (epoch {epoch}, {split}): {run} "),
        theme.negative().add_modifier(ratatui::style::Modifier::BOLD),
    ))
}

pub fn draw_sweep(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, focused: bool) {
    let title = " Sweep: Δ pp per layer × group ";
    let Some(sweep) = &app.sweep.sweep else {
        let text = if app.running.is_some() {
            "  computing…".to_string()
        } else {
            format!(
                "{}: the form's intervention within each layer ({}; {} cancels)",
                app.keys.label(Action::Run),
                app.layers.len(),
                app.keys.label(Action::Cancel)
            )
        };
        let paragraph = Paragraph::new(text).wrap(Wrap { trim: true });
        frame.render_widget(paragraph.block(block(title, focused, theme)), area);
        return;
    };
    let mut lines = Vec::new();
    if app.sweep_stale() {
        lines.push(super::stale_line(app, theme));
    }
    let base = sweep.spec.layers.first().map(|l| sweep.spec.at(l)).unwrap_or_else(|| sweep.spec.base.clone());
    let what = describe(&base);
    let what = match sweep.spec.layers.first() {
        Some(first) => what
            .replace(&format!("within {first}"), "within each layer")
            .replace(&format!("rewind layer {first}"), "rewind each layer"),
        None => what,
    };
    let control = if sweep.spec.random_control { " · random control" } else { "" };
    lines.push(Line::styled(format!("{what}{control}"), theme.muted()));
    let groups = sweep.rows.iter().map(|r| r.groups.len()).max().unwrap_or(0);
    let inner = area.width.saturating_sub(2) as usize;
    let longest = sweep.rows.iter().map(|r| short_layer(&r.layer).chars().count()).max().unwrap_or(5);
    // A name longer than its column goes on a line of its own, the numbers under it.
    let name_width = longest.min(inner.saturating_sub(7 * groups)).max(5);
    let mut header = format!("{:<name_width$}", "layer");
    for g in 0..groups {
        header.push_str(&format!("{:>6} ", format!("G{g}")));
    }
    lines.push(Line::styled(header, theme.accent()));
    for row in &sweep.rows {
        let name = short_layer(&row.layer);
        let mut spans = if name.chars().count() > name_width {
            lines.push(Line::raw(name));
            vec![Span::raw(" ".repeat(name_width))]
        } else {
            vec![Span::raw(format!("{name:<name_width$}"))]
        };
        spans.extend(change_cells(&row.groups, row.error.as_deref(), " ", theme));
        lines.push(Line::from(spans));
    }
    lines.push(Line::styled(
        format!(
            "* |Δ| ≥ 1 pp · each row is memscope intervene --within LAYER · {} exports",
            app.keys.label(Action::Export)
        ),
        theme.muted(),
    ));
    super::scrolled(frame, area, block(title, focused, theme), lines, app.scroll, theme);
}

/// A row's cells: each group's signed change in points, `*` and heat where |Δ| ≥ 1 point, or
/// why the row was not run.
fn change_cells<'a>(
    groups: &[memscope_core::studies::GroupChange],
    error: Option<&str>,
    gap: &str,
    theme: &Theme,
) -> Vec<Span<'a>> {
    match error {
        Some(error) => vec![Span::styled(format!("{gap}not run: {error}"), theme.muted())],
        None => groups
            .iter()
            .map(|g| {
                let sensitive = g.change.is_some_and(|c| c.abs() >= 0.01);
                Span::styled(
                    format!("{:>6}{}", pts(g.change), if sensitive { "*" } else { " " }),
                    heat(g.change, sensitive, theme),
                )
            })
            .collect(),
    }
}

/// Eight heights of a sparkline cell.
const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A sparkline of `values` (|Δ| in points, `None` for an epoch without a number) on a fixed
/// 0..=`top` scale, at most `width` cells (every k-th value when there are more).
pub fn sparkline(values: &[Option<f64>], top: f64, width: usize) -> String {
    let step = values.len().div_ceil(width.max(1)).max(1);
    values
        .iter()
        .step_by(step)
        .map(|v| match v {
            Some(v) => SPARKS[((v / top).clamp(0.0, 1.0) * 7.0).round() as usize],
            None => ' ',
        })
        .collect()
}

pub fn draw_epochs(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, focused: bool) {
    let title = " Epochs: Δ pp per epoch × group ";
    let Some(series) = &app.series.series else {
        let text = if app.running.is_some() {
            "  computing…".to_string()
        } else {
            format!(
                "{}: the form's intervention at each of the {} epochs, its neurons ranked afresh at each ({} cancels)",
                app.keys.label(Action::Run),
                app.epoch_series_spec().epochs.len(),
                app.keys.label(Action::Cancel)
            )
        };
        let paragraph = Paragraph::new(text).wrap(Wrap { trim: true });
        frame.render_widget(paragraph.block(block(title, focused, theme)), area);
        return;
    };
    let mut lines = Vec::new();
    if app.epoch_series_stale() {
        lines.push(super::stale_line(app, theme));
    }
    let what = describe(&series.spec.at(0)).replacen("epoch 0", "each epoch", 1);
    lines.push(Line::styled(what, theme.muted()));
    let groups = series.points.iter().map(|p| p.groups.len()).max().unwrap_or(0);
    let inner = area.width.saturating_sub(2) as usize;
    // One sparkline per group: |Δ| at each epoch, 0 to 100 points (the bars' fixed scale).
    let (first, last) =
        (series.points.first().map_or(0, |p| p.epoch), series.points.last().map_or(0, |p| p.epoch));
    lines.push(Line::styled(format!("|Δ| per epoch {first}→{last}, ▁ 0 … █ 100 pp"), theme.accent()));
    for g in 0..groups {
        let values: Vec<Option<f64>> = series
            .points
            .iter()
            .map(|p| p.groups.get(g).and_then(|c| c.change).map(|c| 100.0 * c.abs()))
            .collect();
        lines.push(Line::from(vec![
            Span::styled(format!("G{g} "), theme.group(g)),
            Span::raw(sparkline(&values, 100.0, inner.saturating_sub(3))),
        ]));
    }
    // Each group's accuracy before the change beside its Δ where a row has room, else under it.
    let beside = inner >= 6 + 13 * groups;
    let mut header = format!("{:<6}", "epoch");
    for g in 0..groups {
        match beside {
            true => header.push_str(&format!("{:>5} {:>6} ", format!("G{g}%"), "Δ")),
            false => header.push_str(&format!("{:>6} ", format!("G{g}"))),
        }
    }
    lines.push(Line::styled(header, theme.accent()));
    for point in &series.points {
        lines.extend(epoch_rows(point, beside, theme));
    }
    let before = if beside { "G0% accuracy before" } else { "was: accuracy % before" };
    lines.push(Line::styled(
        format!(
            "{before} · * |Δ| ≥ 1 pp · each row is memscope intervene --epoch E · {} exports",
            app.keys.label(Action::Export)
        ),
        theme.muted(),
    ));
    super::scrolled(frame, area, block(title, focused, theme), lines, app.scroll, theme);
}

/// An epoch's rows: each group's accuracy before the change and its Δ, side by side
/// (`beside`) or the accuracies on a second, muted row under the Δs.
fn epoch_rows<'a>(
    point: &memscope_core::studies::epochs::EpochPoint,
    beside: bool,
    theme: &Theme,
) -> Vec<Line<'a>> {
    let before = |g: &memscope_core::studies::GroupChange| {
        g.before.map(|b| format!("{:.1}", 100.0 * b)).unwrap_or_else(|| "n/a".into())
    };
    let mut spans = vec![Span::raw(format!("{:<6}", point.epoch))];
    if beside && point.error.is_none() {
        for (g, cell) in point.groups.iter().zip(change_cells(&point.groups, None, "", theme)) {
            spans.push(Span::styled(format!("{:>5} ", before(g)), theme.muted()));
            spans.push(cell);
        }
        return vec![Line::from(spans)];
    }
    spans.extend(change_cells(&point.groups, point.error.as_deref(), "", theme));
    let mut rows = vec![Line::from(spans)];
    if point.error.is_none() {
        let was: String = point.groups.iter().map(|g| format!("{:>6} ", before(g))).collect();
        rows.push(Line::styled(format!("{:<6}{was}", " was"), theme.muted()));
    }
    rows
}

/// A layer's name for a narrow table: the demo's single `.block0` and a shortcut's `.conv`
/// left out (`stage2.shortcut`); the legend and exports keep full names.
pub fn short_layer(name: &str) -> String {
    name.replace(".block0", "").replace("shortcut.conv", "shortcut")
}
