//! Drawing the explorer from its state: one module per kind of panel.

mod context;
mod images;
mod mitigation;
mod results;
mod runs;
mod studies;

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Gauge, Paragraph, Wrap};

use super::app::{Action, App, Edit, Panel, PromptKind, VIEWS, View};
use super::hitmap::HitMap;
use super::keymap::MOUSE;
use super::status::Tone;
use super::text::fit;
use super::theme::Theme;

/// Draws `lines` wrapped inside `outer`, from row `scroll` on (clamped to the last page).
/// When they do not fit, the bottom border says how many rows lie above and below.
pub fn scrolled(frame: &mut Frame, area: Rect, outer: Block, lines: Vec<Line>, scroll: usize, theme: &Theme) {
    let inner = outer.inner(area);
    let paragraph = Paragraph::new(lines).wrap(Wrap { trim: false });
    let total = paragraph.line_count(inner.width);
    let offset = scroll.min(total.saturating_sub(inner.height as usize));
    let below = total.saturating_sub(offset + inner.height as usize);
    let outer = if offset > 0 || below > 0 {
        outer.title_bottom(Line::styled(format!(" ↑{offset} ↓{below} more "), theme.accent()).right_aligned())
    } else {
        outer
    };
    frame.render_widget(paragraph.scroll((offset as u16, 0)).block(outer), area);
}

pub fn block<'a>(title: impl Into<Line<'a>>, focused: bool, theme: &Theme) -> Block<'a> {
    Block::default().borders(Borders::ALL).border_style(theme.border(focused)).title(title)
}

/// Above a result shown for other settings than the form's: the key that runs it again.
pub fn stale_line<'a>(app: &App, theme: &Theme) -> Line<'a> {
    let text = format!("stale: press {} · shown:", app.keys.label(Action::Run));
    Line::styled(text, theme.negative().add_modifier(ratatui::style::Modifier::BOLD))
}

/// Draws the whole screen from `app`, naming keys as `app.keys` binds them; returns where each
/// panel went, for the mouse.
pub fn draw(frame: &mut Frame, app: &App, theme: &Theme) -> HitMap {
    let mut hits = HitMap::default();
    let [title, body, status] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(10), Constraint::Length(1)])
            .areas(frame.area());
    draw_title(frame, title, app, theme);
    let left_width = if body.width < 100 { 32 } else { (body.width * 34 / 100).min(44) };
    let [left, right] = Layout::horizontal([Constraint::Length(left_width), Constraint::Min(40)]).areas(body);
    context::draw(frame, left, app, theme, &mut hits);
    if app.view == View::Mitigation {
        let [form, results] = Layout::vertical([
            Constraint::Length(mitigation::form_height(app, theme, right.width)),
            Constraint::Min(6),
        ])
        .areas(right);
        mitigation::draw_form(frame, form, app, theme);
        mitigation::draw(frame, results, app, theme, app.focus == Panel::Results);
    } else {
        draw_right(frame, right, app, theme, &mut hits);
    }
    draw_status(frame, status, app, theme);
    if app.prompt.as_ref().is_some_and(|p| p.kind == PromptKind::Open) {
        runs::draw_picker(frame, body, app, theme);
    }
    if app.help.open {
        draw_help(frame, app, theme);
    }
    hits
}

/// The form (or on the tour its words) over the current view's results.
fn draw_right(frame: &mut Frame, right: Rect, app: &App, theme: &Theme, hits: &mut HitMap) {
    // On the tour its words take the form's place (the result's header states every setting).
    let tour = app.tour_text().map(|(at, title, text)| {
        let paragraph = Paragraph::new(text).wrap(Wrap { trim: true });
        let height = (paragraph.line_count(right.width.saturating_sub(2)) as u16 + 2).clamp(3, 8);
        (at, title, paragraph, height)
    });
    let form_height = match &tour {
        Some((.., height)) => *height,
        None => app.form.visible().len() as u16 + 2,
    };
    let [form, results] =
        Layout::vertical([Constraint::Length(form_height), Constraint::Min(6)]).areas(right);
    match tour {
        Some((at, title, paragraph, _)) => {
            let title = format!(" Tour {}/{}: {title} ", at + 1, crate::tui::app::tour::STEPS.len());
            let hint = app.keys.hint(&[
                (Action::TourNext, "next"),
                (Action::TourPrev, "back"),
                (Action::Tour, "ends"),
            ]);
            let outer = block(title, true, theme)
                .title_bottom(Line::styled(format!(" {hint} "), theme.accent()).right_aligned());
            frame.render_widget(paragraph.block(outer), form);
        }
        None => context::draw_form(frame, form, app, theme),
    }
    hits.add(Panel::Form, form, 0);
    hits.add(Panel::Results, results, 0);
    let focused = app.focus == Panel::Results;
    match app.view {
        View::Epochs => studies::draw_epochs(frame, results, app, theme, focused),
        View::Images => images::draw(frame, results, app, theme, focused),
        View::Bars => results::draw_bars(frame, results, app, theme, focused),
        View::Neurons => results::draw_neurons(frame, results, app, theme, focused),
        View::History => results::draw_history(frame, results, app, theme, focused),
        View::Ranks => studies::draw_ranks(frame, results, app, theme, focused),
        View::Sensitivity => studies::draw_sensitivity(frame, results, app, theme, focused),
        View::Sweep => studies::draw_sweep(frame, results, app, theme, focused),
        View::Mitigation => {}
    }
}

fn draw_title(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let keymap = &app.keys;
    let wide = area.width >= 110;
    let mut spans = Vec::new();
    for (view, name) in VIEWS.iter() {
        let style = if *view == app.view { theme.selected() } else { theme.muted() };
        // Narrow: every view's number, the current one's name (a name is never cut short).
        let name = if wide || *view == app.view { name.to_string() } else { String::new() };
        spans.push(Span::raw(" "));
        spans.push(Span::styled(format!("{}{name}", keymap.label(Action::Show(*view))), style));
    }
    let (help, quit) = (keymap.label(Action::Help), keymap.label(Action::Quit));
    let keys_hint = if wide { format!("  {help}:help {quit}:quit") } else { format!("  {help} {quit}") };
    spans.push(Span::styled(keys_hint, theme.muted()));
    // The experiment's name gives way (a run's name is long) so that the views and keys show.
    let rest = format!(" · epoch {} · {} ", app.epoch_number(), app.form.split());
    let used: usize =
        spans.iter().map(|s| s.width()).sum::<usize>() + " memscope ".len() + rest.chars().count();
    let room = (area.width as usize).saturating_sub(used).max(8);
    let name = fit(&app.name, room);
    spans.splice(0..0, [Span::styled(" memscope ", theme.accent()), Span::raw(format!("{name}{rest}"))]);
    // The device and libtorch, right-aligned where the line has room: in full, without the
    // libtorch, or not at all (the help overlay always names both).
    let used: usize = spans.iter().map(|s| s.width()).sum();
    let room = (area.width as usize).saturating_sub(used + 2);
    let device = app.device.as_ref().map(|d| [d.to_string(), d.short(), d.device.clone()]);
    let device = device.into_iter().flatten().find(|text| text.chars().count() <= room);
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
    if let Some(device) = device {
        let line = Line::styled(format!("{device} "), theme.muted()).right_aligned();
        frame.render_widget(Paragraph::new(line), area);
    }
}

/// The footer: an open prompt, the running job's gauge, or the status with the keys to begin.
fn draw_status(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let keymap = &app.keys;
    let width = area.width as usize;
    if let Some(prompt) = &app.prompt {
        let (accept, close) =
            (keymap.label(Action::Prompt(Edit::Accept)), keymap.label(Action::Prompt(Edit::Close)));
        let line = match prompt.kind {
            PromptKind::Epoch => format!(
                ":epoch {}▏  {accept} jumps to it ({}..={}), {close} closes",
                prompt.text,
                app.epochs.first().map_or(0, |e| e.epoch),
                app.epochs.last().map_or(0, |e| e.epoch)
            ),
            PromptKind::Neurons => format!(
                "#neurons {}▏  {accept} runs them from now on (empty: the ranking again), {close} closes",
                prompt.text
            ),
            PromptKind::Open => format!(
                "open {}▏  {} of {} listed · {accept} opens the first (or the folder typed), {close} closes",
                prompt.text,
                app.open_matches(&prompt.text).len(),
                app.picker.len()
            ),
            PromptKind::Filter => format!(
                "/{}▏  {} of {} layers · {accept} keeps the filter, {close} clears it",
                prompt.text,
                app.shown_layers().len(),
                app.layers.len()
            ),
        };
        frame.render_widget(Paragraph::new(Span::styled(fit(&line, width), theme.accent())), area);
        return;
    }
    match &app.running {
        Some(run) => {
            let ratio = if run.total > 0 { run.done as f64 / run.total as f64 } else { 0.0 };
            let next = match &app.opening {
                Some(name) => format!("stopping after this batch, then opening {name}…"),
                None => format!("({} cancels)", keymap.label(Action::Cancel)),
            };
            let label = format!(
                "{} {:.1}s{}  {next}",
                run.label,
                run.started.elapsed().as_secs_f64(),
                if run.total > 0 { format!("  {}/{}", run.done, run.total) } else { String::new() },
            );
            let gauge = Gauge::default()
                .gauge_style(theme.accent())
                .ratio(ratio.clamp(0.0, 1.0))
                .label(fit(&label, width));
            frame.render_widget(gauge, area);
        }
        None => {
            let style = match app.status.tone() {
                Tone::Bad => theme.negative(),
                Tone::Plain => Style::default(),
            };
            // A subset or skipped images: every number on screen is of that data, so its note
            // keeps its place and the message gives way.
            let note = app.data_changes.short().map(|note| format!("  · data: {note}"));
            let room = width.saturating_sub(note.as_ref().map_or(0, |n| n.chars().count()));
            let mut spans = vec![Span::styled(fit(&app.status.text(keymap), room), style)];
            if let Some(note) = note {
                spans.push(Span::styled(fit(&note, width), theme.accent()));
            }
            frame.render_widget(Paragraph::new(Line::from(spans)), area);
        }
    }
}

/// The help overlay: the keymap's lines, the mouse, where exports go, the data, the symbols.
fn draw_help(frame: &mut Frame, app: &App, theme: &Theme) {
    let keymap = &app.keys;
    let scroll = keymap.pair(Action::Up, Action::Down);
    let stale = format!("the form or epoch changed since this result: press {}", keymap.label(Action::Run));
    let rows_more = format!("rows above and below: scroll with {scroll} in that panel");
    let symbols = [
        ("Δ  |Δ|", "signed change in pp; mean |change| over runs (slides' Δacc)"),
        ("├─┤ ▓", "±1 std over repeats (▓ where it overlaps the bar)"),
        ("▏▌█  ◀ ▶", "bars fill eighths of a cell; ◀ ▶: cut at the scale"),
        ("worst", "the worst group before the change, as the CLI's (worst)"),
        ("100/group", "examples per group: 100 means 1 example = 1 pp"),
        ("stale", stale.as_str()),
        ("* (Sensitivity)", "|change| ≥ 1 pp: the layer is sensitive for that group"),
        ("pct", "percentile rank, 100 = the largest score of its scope"),
        ("↑N ↓M more", rows_more.as_str()),
        ("✗ ✓ (Images)", "right before, wrong after / wrong before, right after"),
        ("pin", "a pinned result, kept as it was when pinned"),
    ];
    let lines = keymap.lines();
    let width = lines.iter().map(|l| l.keys().chars().count() + 1).max().unwrap_or(0).max(17);
    let row = |k: &str, v: &str, style| {
        Line::from(vec![Span::styled(format!("{k:<width$}"), style), Span::raw(v.to_string())])
    };
    let mut text: Vec<Line> = lines.iter().map(|l| row(&l.keys(), l.text, theme.accent())).collect();
    text.push(row("mouse", MOUSE, theme.accent()));
    let (export, report) = (keymap.label(Action::Export), keymap.label(Action::Report));
    let exports = format!(
        "{export} writes JSON and CSV (History: every run), {report} the report, to {}",
        app.export_dir.display()
    );
    text.push(Line::styled(exports, theme.muted()));
    // Which data and transform every number here is measured on.
    text.push(Line::styled(format!("data: {}", app.experiment.manifest.dataset.describe()), theme.muted()));
    if let Some(device) = &app.device {
        text.push(Line::styled(format!("device: {device}"), theme.muted()));
    }
    text.push(Line::styled("Symbols", theme.accent()));
    text.extend(symbols.iter().map(|(k, v)| row(k, v, theme.positive())));
    text.push(Line::styled(
        format!("{scroll} scroll this help, any other key closes it · mean: weighted by training shares"),
        theme.muted(),
    ));
    let area = frame.area();
    let width = area.width.min(84);
    let count = Paragraph::new(text.clone()).wrap(Wrap { trim: false }).line_count(width.saturating_sub(2));
    // Wrapped lines counted, so the last one is never cut while the screen has room; where it
    // has not, the scroll keys move it and the border says how many rows lie above and below.
    let height = (count as u16 + 2).min(area.height);
    let [popup] = Layout::horizontal([Constraint::Length(width)]).flex(Flex::Center).areas(area);
    let [popup] = Layout::vertical([Constraint::Length(height)]).flex(Flex::Center).areas(popup);
    frame.render_widget(Clear, popup);
    let title = format!(" Keys and symbols ({scroll} scroll) ");
    scrolled(frame, popup, block(title, true, theme), text, app.help.scroll, theme);
}
