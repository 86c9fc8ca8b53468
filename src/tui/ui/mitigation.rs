//! The Mitigation view: its form (method, epochs, seed, which group labels the method reads,
//! where the run goes), the val curves of the run as it trains, and the comparison of the
//! parent with this session's runs.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Axis, Cell, Chart, Dataset, GraphType, Padding, Paragraph, Row, Table, Wrap};

use super::block;
use crate::tui::app::{Action, App, Panel};
use crate::tui::keymap::Keymap;
use crate::tui::mitigation::{FIELDS, Field, Page, Run, RunState, choice_of};
use crate::tui::text::pct;
use crate::tui::theme::Theme;
use memscope_core::data::DatasetSpec;
use memscope_core::mitigate::compare::{Comparison, Selection};
use memscope_core::mitigate::released_training;

/// The most rows the form panel takes (a long folder path wraps).
const MAX_FORM_HEIGHT: u16 = 12;
/// Rows the chart needs to be read.
const CHART_HEIGHT: u16 = 7;

/// Rows the form panel needs at `width`: its lines wrapped, and the borders.
pub fn form_height(app: &App, theme: &Theme, width: u16) -> u16 {
    (wrapped_height(&form_lines(app, theme), width.saturating_sub(2)) + 2).min(MAX_FORM_HEIGHT)
}

pub fn draw_form(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let title = format!(
        " Mitigation  ({} change, {} start) ",
        app.keys.pair(Action::Left, Action::Right),
        app.keys.label(Action::Run)
    );
    let block = block(title, app.focus == Panel::Form, theme);
    frame.render_widget(Paragraph::new(form_lines(app, theme)).wrap(Wrap { trim: false }).block(block), area);
}

/// The three fields, which group labels the method reads, where the run starts and the
/// folder it will be written to, whole.
fn form_lines(app: &App, theme: &Theme) -> Vec<Line<'static>> {
    let m = &app.mitigation;
    let focused = app.focus == Panel::Form;
    let label = |text: &str| Span::styled(format!("{text:>12} "), theme.muted());
    let mut lines: Vec<Line> = FIELDS
        .iter()
        .map(|&field| {
            let (name, value, note) = match field {
                Field::Method => ("method", m.form.choice().name.to_string(), String::new()),
                Field::Epochs if !m.form.fine_tunes() => {
                    ("epochs", "1".to_string(), " dfr refits the last layer once".to_string())
                }
                Field::Epochs => (
                    "epochs",
                    m.form.epochs.to_string(),
                    format!(" released: {}", released_training(&DatasetSpec::default(), 0).epochs),
                ),
                Field::Seed => ("seed", m.form.seed.to_string(), String::new()),
            };
            let selected = focused && field == m.field;
            let applies = field != Field::Epochs || m.form.fine_tunes();
            let style = match (selected, applies) {
                (true, _) => theme.selected(),
                (false, true) => Style::default(),
                (false, false) => theme.muted(),
            };
            Line::from(vec![
                label(name),
                Span::styled(if selected { format!("◀ {value} ▶") } else { format!("  {value}  ") }, style),
                Span::styled(note, theme.muted()),
            ])
        })
        .collect();
    lines.push(Line::from(vec![label("group labels"), Span::raw(format!("  {}", m.form.labels()))]));
    lines.push(Line::from(vec![
        label("from"),
        Span::raw(format!("  {} epoch {}", app.name, app.epoch_number())),
    ]));
    lines.push(Line::from(vec![label("writes to"), Span::styled("  (-2, -3… if taken)", theme.muted())]));
    lines.push(Line::raw(format!("  {}", m.target(&app.name).display())));
    lines
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, focused: bool) {
    let m = &app.mitigation;
    if m.lists_runs() {
        return super::runs::draw_finished(frame, area, app, theme, focused);
    }
    let Some(run) = &m.run else {
        let text = format!(
            "No run yet. {} fine-tunes {} from epoch {} (the epoch selected on the left) with the \
             method above and writes a new experiment; val worst-group and mean accuracy show here \
             per epoch, then a comparison with the parent. (No finished run in {} to show.)",
            app.keys.label(Action::Run),
            app.name,
            app.epoch_number(),
            m.runs_dir.display()
        );
        let paragraph = Paragraph::new(text).wrap(Wrap { trim: true });
        let title = " Mitigation run ";
        frame.render_widget(
            paragraph.block(block(title, focused, theme).padding(Padding::horizontal(1))),
            area,
        );
        return;
    };
    // While a new run trains, its curves; the comparison returns when it is done.
    let comparison = m.comparison.as_ref().filter(|_| !m.busy());
    let title = match comparison {
        Some(_) => format!(
            " Run and comparison ({} here: curves / table) ",
            app.keys.pair(Action::Left, Action::Right)
        ),
        None => format!(" {} seed {} · val per epoch ", choice_of(&run.method).name, run.seed),
    };
    let outer = block(title, focused, theme);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let Some(comparison) = comparison else {
        return draw_curves(frame, inner, run, &app.keys, theme);
    };
    // The legend, the two-row header, two rows per experiment.
    let table_rows = 3 + 2 * comparison.experiments.len() as u16;
    if inner.height >= CHART_HEIGHT + 3 + 2 + table_rows {
        let [top, bottom] =
            Layout::vertical([Constraint::Min(CHART_HEIGHT + 3), Constraint::Length(table_rows)])
                .areas(inner);
        draw_curves(frame, top, run, &app.keys, theme);
        draw_comparison(frame, bottom, app, comparison, false, theme);
    } else {
        match m.page {
            Page::Curves => draw_curves(frame, inner, run, &app.keys, theme),
            Page::Compare => draw_comparison(frame, inner, app, comparison, true, theme),
        }
    }
}

/// Rows `lines` take when wrapped at `width`.
fn wrapped_height(lines: &[Line], width: u16) -> u16 {
    Paragraph::new(lines.to_vec()).wrap(Wrap { trim: false }).line_count(width) as u16
}

/// Where the run stands, in words.
fn progress_line(run: &Run) -> String {
    let last = run.curve.last().map(|p| p.epoch);
    let n = run.epochs;
    match (&run.state, last) {
        (RunState::Queued, _) => "queued: starts when the running job ends".into(),
        (RunState::Running, None) => {
            format!("epoch 0/{n}: evaluating the start (parent epoch {})", run.start_epoch)
        }
        (RunState::Running, Some(k)) => format!("epoch {k}/{n} · training epoch {}", k + 1),
        (RunState::Finished, _) => format!("epoch {n}/{n} · finished"),
        (RunState::Cancelled, k) => {
            format!("cancelled after epoch {}/{n}; nothing was written", k.unwrap_or(0))
        }
        (RunState::Failed(message), _) => format!("failed: {message}"),
    }
}

/// The run's progress and its val curves; `keys` names the key that opens it once written.
pub(super) fn draw_curves(frame: &mut Frame, area: Rect, run: &Run, keys: &Keymap, theme: &Theme) {
    let last = run.curve.last();
    let mut lines = vec![Line::raw(progress_line(run))];
    lines.push(Line::from(vec![
        Span::styled("• val worst-group ", theme.negative()),
        Span::raw(format!("{:<7}", pct(last.and_then(|p| p.val_worst)))),
        Span::styled(" ⠒ val mean ", theme.accent()),
        Span::raw(pct(last.and_then(|p| p.val_mean))),
    ]));
    if let Some(d) = last.and_then(|p| p.diagnostics) {
        lines.push(Line::styled(
            format!(
                "nt-xent {:.3} · ce {:.3} · |grad| {:.1e} · dense-masked L2 {:.1e}",
                d.ntxent, d.ce, d.grad_norm, d.distance
            ),
            theme.muted(),
        ));
    }
    if let Some(out) = &run.out {
        // Where it goes is in the form above; where it went, whole, once it is there.
        let text = match run.state {
            RunState::Finished => {
                format!("written to {} · {} opens it", out.display(), keys.label(Action::Open))
            }
            RunState::Running => {
                format!("writing {}", out.file_name().map(|n| n.to_string_lossy()).unwrap_or_default())
            }
            _ => String::new(),
        };
        if !text.is_empty() {
            lines.push(Line::styled(text, theme.muted()));
        }
    }
    let text_height = wrapped_height(&lines, area.width);
    let [text_area, chart_area] =
        Layout::vertical([Constraint::Length(text_height.min(area.height)), Constraint::Min(0)]).areas(area);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), text_area);
    if chart_area.height < 3 {
        return;
    }
    let worst: Vec<(f64, f64)> =
        run.curve.iter().filter_map(|p| p.val_worst.map(|w| (p.epoch as f64, 100.0 * w))).collect();
    let mean: Vec<(f64, f64)> =
        run.curve.iter().filter_map(|p| p.val_mean.map(|w| (p.epoch as f64, 100.0 * w))).collect();
    let n = run.epochs.max(1);
    // Two markers, so that the curves differ without colour too.
    let datasets = vec![
        Dataset::default()
            .name("val worst-group")
            .marker(Marker::Dot)
            .graph_type(GraphType::Line)
            .style(theme.negative())
            .data(&worst),
        Dataset::default()
            .name("val mean")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(theme.accent())
            .data(&mean),
    ];
    // The x axis names its unit in its last label: an axis title would sit on the 0% row, and
    // ratatui places a middle label a third of the way along, not at n/2.
    let x_labels = vec!["0".to_string(), format!("epoch {n}")];
    // The graph is the area less the x axis and its labels: an odd number of rows where it
    // can, so that one sits halfway up for the 50% label.
    let chart_area = match chart_area.height {
        h if h >= 6 && h.is_multiple_of(2) => Rect { y: chart_area.y + 1, height: h - 1, ..chart_area },
        _ => chart_area,
    };
    let y_labels = y_labels(chart_area.height.saturating_sub(2));
    let chart = Chart::new(datasets)
        .legend_position(None)
        .x_axis(Axis::default().style(theme.muted()).bounds([0.0, n as f64]).labels(x_labels))
        .y_axis(Axis::default().style(theme.muted()).bounds([0.0, 100.0]).labels(y_labels));
    frame.render_widget(chart, chart_area);
}

/// The y labels of a graph `rows` high: 50% only where a row is halfway up (an odd number of
/// rows; ratatui puts a middle label at row (rows − 1) / 2, rounded down).
fn y_labels(rows: u16) -> Vec<&'static str> {
    if rows >= 3 && !rows.is_multiple_of(2) { vec!["0%", "50%", "100%"] } else { vec!["0%", "100%"] }
}

/// The comparison table: the parent and this session's runs, each at its last epoch and at
/// its best val worst-group epoch. `written`: say first where the last run went. Where the
/// rows do not fit, the parent and the latest runs stay.
fn draw_comparison(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    comparison: &Comparison,
    written: bool,
    theme: &Theme,
) {
    let labels: Vec<String> = comparison
        .experiments
        .iter()
        .enumerate()
        .map(|(i, e)| {
            app.mitigation.compared.get(i).map(|c| c.label.clone()).unwrap_or_else(|| e.name.clone())
        })
        .collect();
    draw_table(frame, area, app, (comparison, &labels), written, theme)
}

/// [`draw_comparison`] with each experiment's label in the table.
pub(super) fn draw_table(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    (comparison, labels): (&Comparison, &[String]),
    written: bool,
    theme: &Theme,
) {
    let m = &app.mitigation;
    let long = "accuracy % on val and test; epoch: the last, or best = the best val worst-group";
    let legend = if long.len() <= area.width as usize {
        long
    } else {
        "% on val and test; best = best val worst-group"
    };
    let mut lines = vec![Line::styled(legend, theme.muted())];
    let finished = m.run.as_ref().filter(|r| r.state == RunState::Finished && written);
    if let Some((run, out)) = finished.and_then(|r| r.out.as_ref().map(|o| (r, o))) {
        let found = run.found.as_deref().map(|f| format!(" ({f})")).unwrap_or_default();
        let open = app.keys.label(Action::Open);
        lines.insert(0, Line::raw(format!("written to {}{found} · {open} opens it", out.display())));
    }
    let count = comparison.experiments.len();
    if wrapped_height(&lines, area.width) + 2 + 2 * count as u16 > area.height {
        lines.drain(..lines.len() - 1);
    }
    let text_height = wrapped_height(&lines, area.width);
    let [text_area, table_area] =
        Layout::vertical([Constraint::Length(text_height.min(area.height)), Constraint::Min(0)]).areas(area);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), text_area);

    let room = (table_area.height.saturating_sub(2) / 2).max(1) as usize;
    let shown: Vec<usize> = if count <= room {
        (0..count).collect()
    } else {
        std::iter::once(0).chain(count + 1 - room..count).collect()
    };
    let wide = area.width >= 70;
    let rows = comparison_rows(comparison, labels, &shown, wide);
    let (header, widths) = comparison_header(wide);
    let table = Table::new(rows, widths).header(Row::new(header).height(2).style(theme.accent()));
    frame.render_widget(table, table_area);
}

/// Two rows per experiment shown (its last and its best epoch); the run's name and group
/// labels on the first.
fn comparison_rows<'a>(
    comparison: &Comparison,
    labels: &[String],
    shown: &[usize],
    wide: bool,
) -> Vec<Row<'a>> {
    let number = |v: Option<f64>| v.map(|v| format!("{:>5.1}", 100.0 * v)).unwrap_or_else(|| "  n/a".into());
    let mut rows = Vec::new();
    for &i in shown {
        let experiment = &comparison.experiments[i];
        let label = labels.get(i).cloned().unwrap_or_else(|| experiment.name.clone());
        for (k, selected) in experiment.selected.iter().enumerate() {
            let which = match selected.selection {
                Selection::LastEpoch => "last",
                Selection::BestValWorstGroup => "best",
            };
            let first = |text: &str| Cell::from(if k == 0 { text.to_string() } else { String::new() });
            let mut cells = vec![first(&label)];
            if wide {
                cells.push(first(&experiment.labels));
            }
            cells.extend([
                Cell::from(format!("{which} {:>2}", selected.epoch)),
                Cell::from(number(selected.val.worst_group_accuracy)),
                Cell::from(number(selected.val.mean_accuracy_train_weighted)),
                Cell::from(number(selected.test.worst_group_accuracy)),
                Cell::from(number(selected.test.mean_accuracy_train_weighted)),
            ]);
            rows.push(Row::new(cells));
        }
    }
    rows
}

/// The table's two-line header and its column widths (the group labels where `wide`).
fn comparison_header<'a>(wide: bool) -> (Vec<Cell<'a>>, Vec<Constraint>) {
    let two = |a: &'static str, b: &'static str| Cell::from(Text::from(vec![Line::raw(a), Line::raw(b)]));
    let mut header = vec![two("", "run")];
    let mut widths = vec![Constraint::Min(8)];
    if wide {
        header.push(two("group", "labels"));
        widths.push(Constraint::Length(12));
    }
    header.extend([
        two("", "epoch"),
        two("  val", "worst"),
        two("  val", " mean"),
        two(" test", "worst"),
        two(" test", " mean"),
    ]);
    widths.extend([
        Constraint::Length(7),
        Constraint::Length(5),
        Constraint::Length(5),
        Constraint::Length(5),
        Constraint::Length(5),
    ]);
    (header, widths)
}
