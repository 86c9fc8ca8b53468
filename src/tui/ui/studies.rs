//! Study views: rank histograms of the selected group, and the sensitive-layer heat table.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Bar, BarChart, BarGroup, Paragraph, Row, Table, Wrap};

use super::{block, pts};
use crate::tui::app::App;
use crate::tui::theme::Theme;

fn waiting(frame: &mut Frame, area: Rect, title: &str, app: &App, theme: &Theme, focused: bool) {
    let text = if app.running.is_some() { "  computing…" } else { "  press Enter to compute" };
    frame.render_widget(Paragraph::new(text).block(block(title.to_string(), focused, theme)), area);
}

pub fn draw_ranks(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, focused: bool) {
    let Some(study) = &app.ranks else {
        return waiting(frame, area, " Rank histograms ", app, theme, focused);
    };
    let Some(g) = study.groups.get(app.group) else { return };
    let title = format!(
        " Ranks, G{} {}: top {} of {} by each score ",
        g.group, g.name, study.selected, study.candidates
    );
    let outer = block(title, focused, theme);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let [top, bottom, axis] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Min(2), Constraint::Length(1)])
            .areas(inner);
    for (area, label, histogram) in [
        (top, "magnitude rank of the top-gradient neurons", &g.magnitude_rank_of_top_gradient),
        (bottom, "gradient rank of the top-magnitude neurons", &g.gradient_rank_of_top_magnitude),
    ] {
        let [caption, chart] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
        frame.render_widget(Paragraph::new(Span::styled(label, theme.muted())), caption);
        let bars: Vec<Bar> =
            histogram.iter().map(|&c| Bar::default().value(c as u64).text_value(String::new())).collect();
        let chart_widget = BarChart::default()
            .data(BarGroup::default().bars(&bars))
            .bar_width(1)
            .bar_gap(1)
            .bar_style(theme.accent());
        frame.render_widget(chart_widget, chart);
    }
    // Bin b is drawn at column 2b (bar width 1, gap 1): label 0, 25, 50, 75, 100 % there.
    let mut scale = vec![' '; 46];
    for (col, text) in [(0, "0%"), (10, "25%"), (20, "50%"), (30, "75%"), (38, "100%")] {
        for (i, ch) in text.chars().enumerate() {
            scale[col + i] = ch;
        }
    }
    let scale: String = scale.into_iter().collect::<String>() + "percentile";
    frame.render_widget(Paragraph::new(Span::styled(scale, theme.muted())), axis);
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
    let Some(study) = &app.sensitivity else {
        return waiting(frame, area, " Sensitive layers ", app, theme, focused);
    };
    let Some(&n) = study.spec.epochs_back.get(app.distance) else { return };
    let mut header = vec!["layer".to_string()];
    header.extend((0..study.groups.len()).map(|g| format!("G{g}")));
    let mut rows: Vec<Row> = study
        .rows
        .iter()
        .filter(|r| r.epochs_back == n)
        .map(|r| {
            let mut cells = vec![ratatui::widgets::Cell::from(r.layer.replace(".block0", ""))];
            cells.extend(r.change.iter().zip(&r.sensitive).map(|(&c, &s)| {
                ratatui::widgets::Cell::from(format!("{}{}", pts(c), if s { "*" } else { " " }))
                    .style(heat(c, s, theme))
            }));
            Row::new(cells)
        })
        .collect();
    let i = app.distance;
    let mut count = vec![ratatui::widgets::Cell::from("sensitive layers")];
    count.extend(study.counts[i].iter().map(|c| ratatui::widgets::Cell::from(format!("{c:>5}"))));
    rows.push(Row::new(count).style(theme.accent()));
    let mut widths = vec![Constraint::Min(14)];
    widths.extend((0..study.groups.len()).map(|_| Constraint::Length(7)));
    let distances: Vec<String> = study.spec.epochs_back.iter().map(|d| d.to_string()).collect();
    let title = Line::from(vec![Span::raw(format!(
        " Rewind {n} epochs (←→: {}) · * = |change| ≥ {:.0} pt ",
        distances.join("/"),
        100.0 * study.spec.threshold
    ))]);
    let outer = block(title, focused, theme);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let [table_area, legend_area] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(2)]).areas(inner);
    let table = Table::new(rows, widths).header(Row::new(header).style(theme.accent()));
    frame.render_widget(table, table_area);
    let legend = Paragraph::new(crate::report::threshold_in_words(study))
        .style(theme.muted())
        .wrap(Wrap { trim: true });
    frame.render_widget(legend, legend_area);
}
