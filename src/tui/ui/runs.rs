//! The Mitigation view before this session has started a run: the runs folder's finished
//! runs and `compare` results, a cursor on one, and that one shown as a run of this session
//! is (its recorded val curves, or the comparison table), read-only.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use super::block;
use super::mitigation::{draw_curves, draw_table};
use crate::tui::app::{Action, App};
use crate::tui::mitigation::Run;
use crate::tui::runs::{Entry, short_labels};
use crate::tui::theme::Theme;

pub fn draw_finished(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, focused: bool) {
    let m = &app.mitigation;
    let Some(listing) = &m.listing else { return };
    let entries = listing.finished();
    let title = format!(
        " Finished runs {}/{} ({} pick, {} opens) ",
        m.picked + 1,
        entries.len(),
        app.keys.pair(Action::Up, Action::Down),
        app.keys.label(Action::Open)
    );
    let outer = block(title, focused, theme);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    // The list takes up to a third of the panel, scrolled to keep the cursor in sight.
    let rows = entries.len().min((inner.height as usize / 3).max(2));
    let first = m.picked.saturating_sub(rows - 1).min(entries.len().saturating_sub(rows));
    let lines: Vec<Line> = entries
        .iter()
        .enumerate()
        .skip(first)
        .take(rows)
        .map(|(i, entry)| {
            let text = format!("{} {}", if i == m.picked { "▶" } else { " " }, describe(entry, &listing.dir));
            if i == m.picked { Line::styled(text, theme.selected()) } else { Line::raw(text) }
        })
        .collect();
    let [list, shown] = Layout::vertical([Constraint::Length(rows as u16), Constraint::Min(0)]).areas(inner);
    frame.render_widget(Paragraph::new(lines), list);
    match entries.get(m.picked) {
        Some(Entry::Run(found)) => {
            if let Some(run) = Run::recorded(found) {
                draw_curves(frame, shown, &run, &app.keys, theme);
            }
        }
        Some(Entry::Comparison(c)) => {
            let labels = short_labels(&c.comparison);
            draw_table(frame, shown, app, (&c.comparison, &labels), false, theme);
        }
        None => {}
    }
}

/// A listed entry in one line: its path in the runs folder and what it is.
fn describe(entry: &Entry, dir: &std::path::Path) -> String {
    let short = |p: &std::path::Path| p.strip_prefix(dir).unwrap_or(p).display().to_string();
    match entry {
        Entry::Run(run) => match &run.lineage {
            Some(l) => format!("{} from epoch {} · {}", l.method.label(), l.start_epoch, short(&run.dir)),
            None => short(&run.dir),
        },
        Entry::Comparison(c) => {
            format!("{} · compare of {} experiments", short(&c.file), c.comparison.experiments.len())
        }
    }
}

/// The `O` prompt's list over the bottom of `body`: the experiments whose name or folder has
/// what is typed, the first (which Enter opens) highlighted.
pub fn draw_picker(frame: &mut Frame, body: Rect, app: &App, theme: &Theme) {
    let Some(prompt) = &app.prompt else { return };
    let matches = app.open_matches(&prompt.text);
    let rows = (matches.len().max(1) as u16 + 2).min(body.height.saturating_sub(2)).min(12);
    let area = Rect { y: body.bottom().saturating_sub(rows), height: rows, ..body };
    let lines: Vec<Line> = if matches.is_empty() {
        vec![Line::styled("nothing listed matches: type a folder, or erase", theme.muted())]
    } else {
        matches
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let other =
                    if o.same_data { "" } else { " · other data: open it with explore --experiment" };
                let text = format!("{} · {}{other} · {}", o.name, o.what, o.dir.display());
                match (i, o.same_data) {
                    (0, _) => Line::styled(text, theme.selected()),
                    (_, true) => Line::raw(text),
                    (_, false) => Line::styled(text, theme.muted()),
                }
            })
            .collect()
    };
    let title = format!(" Open an experiment: {} listed ", matches.len());
    frame.render_widget(ratatui::widgets::Clear, area);
    frame.render_widget(Paragraph::new(lines).block(block(title, true, theme)), area);
}
