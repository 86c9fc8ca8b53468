//! The context panels (epochs, layers, groups) and the intervention form.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState, Paragraph};

use super::{block, pct};
use crate::tui::app::{App, Panel};
use crate::tui::form::FIELDS;
use crate::tui::theme::Theme;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let groups_height = app.groups.len() as u16 + 3;
    let [epochs, layers, groups] =
        Layout::vertical([Constraint::Percentage(45), Constraint::Min(4), Constraint::Length(groups_height)])
            .areas(area);

    let items: Vec<ListItem> = app
        .epochs
        .iter()
        .map(|e| ListItem::new(format!("{:>3}  {:>6} {:>6}", e.epoch, pct(e.val_worst), pct(e.val_mean))))
        .collect();
    let list = List::new(items)
        .block(block(
            format!(" Epoch {}/{} · val worst mean ", app.epoch + 1, app.epochs.len()),
            app.focus == Panel::Epochs,
            theme,
        ))
        .highlight_style(theme.selected());
    let mut state = ListState::default().with_selected(Some(app.epoch));
    frame.render_stateful_widget(list, epochs, &mut state);

    let items: Vec<ListItem> = app
        .layers
        .iter()
        .map(|l| {
            let shape = l.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x");
            // The shape only where it fits whole beside the name.
            let fits = l.name.chars().count() + 1 + shape.len() <= layers.width.saturating_sub(2) as usize;
            let shape = if fits { format!(" {shape}") } else { String::new() };
            ListItem::new(Line::from(vec![Span::raw(l.name.clone()), Span::styled(shape, theme.muted())]))
        })
        .collect();
    let list = List::new(items)
        .block(block(
            format!(" Layers {}/{} ", app.layer + 1, app.layers.len()),
            app.focus == Panel::Layers,
            theme,
        ))
        .highlight_style(theme.selected());
    let mut state = ListState::default().with_selected(Some(app.layer));
    frame.render_stateful_widget(list, layers, &mut state);

    let baseline = app.current_baseline();
    let items: Vec<ListItem> = app
        .groups
        .iter()
        .map(|g| {
            let acc = baseline.and_then(|b| b.groups[g.group].accuracy);
            let worst = baseline.is_some_and(|b| b.worst_group == Some(g.group));
            let line = Line::from(vec![
                Span::styled(format!("G{} {:<13.13}", g.group, g.name), theme.group(g.group)),
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
    let list = List::new(items)
        .block(block(title, app.focus == Panel::Groups, theme))
        .highlight_style(theme.selected());
    let mut state = ListState::default().with_selected(Some(app.group));
    frame.render_stateful_widget(list, groups, &mut state);
}

pub fn draw_form(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let group = app.group_label();
    let focused = app.focus == Panel::Form;
    // Only the fields that apply to the current settings.
    let lines: Vec<Line> = app
        .form
        .visible()
        .into_iter()
        .map(|i| {
            let field = FIELDS[i];
            let (label, value) = app.form.describe(field, &group, app.layer_name());
            let selected = focused && i == app.field;
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
    let title = " Intervention  (←→ change, Enter run) ";
    frame.render_widget(Paragraph::new(lines).block(block(title, focused, theme)), area);
}
