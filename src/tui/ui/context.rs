//! The context panels (epochs, layers, groups) and the intervention form.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState, Paragraph};

use super::block;
use crate::tui::app::{Action, App, Panel};
use crate::tui::hitmap::HitMap;
use crate::tui::text::{fit, pct};
use crate::tui::theme::Theme;

/// The epochs, layers and groups panels, each recorded in `hits`.
pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, hits: &mut HitMap) {
    let groups_height = app.groups.len() as u16 + 3;
    let [epochs, layers, groups] =
        Layout::vertical([Constraint::Percentage(45), Constraint::Min(4), Constraint::Length(groups_height)])
            .areas(area);

    let items: Vec<ListItem> = app
        .epochs
        .iter()
        .map(|e| ListItem::new(format!("{:>3}  {:>6} {:>6}", e.epoch, pct(e.val_worst), pct(e.val_mean))))
        .collect();
    let title = format!(" Epoch {}/{} · val worst mean ", app.epoch + 1, app.epochs.len());
    list(frame, epochs, items, app.epoch, (title, Panel::Epochs), (app, theme, hits));

    let shown = app.shown_layers();
    let items: Vec<ListItem> = shown
        .iter()
        .map(|&i| {
            let l = &app.layers[i];
            let shape = l.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x");
            // The shape only where it fits whole beside the name.
            let fits = l.name.chars().count() + 1 + shape.len() <= layers.width.saturating_sub(2) as usize;
            let shape = if fits { format!(" {shape}") } else { String::new() };
            let name = fit(&l.name, layers.width.saturating_sub(2) as usize);
            ListItem::new(Line::from(vec![Span::raw(name), Span::styled(shape, theme.muted())]))
        })
        .collect();
    let title = if app.layer_filter.is_empty() {
        format!(" Layers {}/{} ", app.layer + 1, app.layers.len())
    } else {
        format!(" Layers /{}: {} of {} ", app.layer_filter, shown.len(), app.layers.len())
    };
    let selected = shown.iter().position(|&l| l == app.layer).unwrap_or(0);
    list(frame, layers, items, selected, (title, Panel::Layers), (app, theme, hits));

    let baseline = app.current_baseline();
    let items: Vec<ListItem> = app
        .groups
        .iter()
        .map(|g| {
            let acc = baseline.and_then(|b| b.groups[g.group].accuracy);
            let worst = baseline.is_some_and(|b| b.worst_group == Some(g.group));
            let line = Line::from(vec![
                Span::styled(format!("G{} {:<13}", g.group, fit(&g.name, 13)), theme.group(g.group)),
                Span::styled(format!("{:>5}", g.train), theme.muted()),
                Span::styled(
                    format!(" {:>6}", pct(acc)),
                    if worst { theme.negative() } else { Style::default() },
                ),
            ]);
            ListItem::new(line)
        })
        .collect();
    let title = format!(" Groups · n train · {} ", app.form.split());
    list(frame, groups, items, app.group, (title, Panel::Groups), (app, theme, hits));
}

/// A list panel with its selection kept in view, a mark of the rows above and below when
/// they do not all fit, and its place recorded for the mouse.
fn list(
    frame: &mut Frame,
    area: Rect,
    items: Vec<ListItem>,
    selected: usize,
    (title, panel): (String, Panel),
    (app, theme, hits): (&App, &Theme, &mut HitMap),
) {
    let rows = area.height.saturating_sub(2) as usize;
    let total = items.len();
    // ratatui scrolls a fresh list just far enough to show the selection.
    let offset =
        if rows == 0 { 0 } else { selected.saturating_sub(rows - 1).min(total.saturating_sub(rows)) };
    let below = total.saturating_sub(offset + rows);
    let mut outer = block(title, app.focus == panel, theme);
    if offset > 0 || below > 0 {
        outer =
            outer.title_bottom(Line::styled(format!(" ↑{offset} ↓{below} "), theme.accent()).right_aligned());
    }
    let list = List::new(items).block(outer).highlight_style(theme.selected());
    let mut state = ListState::default().with_selected(Some(selected));
    frame.render_stateful_widget(list, area, &mut state);
    hits.add(panel, area, state.offset());
}

pub fn draw_form(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let group = app.group_label();
    let focused = app.focus == Panel::Form;
    // A value too long for the panel is cut with "…" (the result's header states it whole):
    // after the label, its 14 columns, and the marks around it (◀ ▶ where selected).
    let room = |selected: bool| (area.width as usize).saturating_sub(2 + 14 + if selected { 4 } else { 2 });
    // Only the fields that apply to the current settings.
    let lines: Vec<Line> = app
        .form
        .visible()
        .into_iter()
        .map(|field| {
            let (label, value) = app.form.describe(field, &group, app.layer_name());
            let selected = focused && field == app.form.field;
            let value = fit(&value, room(selected));
            let value_style = if selected { theme.selected() } else { Style::default() };
            Line::from(vec![
                Span::styled(format!("{label:>13} "), theme.muted()),
                Span::styled(
                    if selected { format!("◀ {value} ▶") } else { format!("  {value}  ") },
                    value_style,
                ),
            ])
        })
        .collect();
    let title = format!(
        " Intervention  ({} change, {} run) ",
        app.keys.pair(Action::Left, Action::Right),
        app.keys.label(Action::Run)
    );
    frame.render_widget(Paragraph::new(lines).block(block(title, focused, theme)), area);
}
