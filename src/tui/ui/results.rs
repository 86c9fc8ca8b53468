//! Results of interventions: signed accuracy-change bars, the selected neurons, history.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Padding, Paragraph, Wrap};

use super::{block, scrolled};
use crate::tui::app::{Action, App, BAR_SCALES, HISTORY};
use crate::tui::caption;
use crate::tui::text::{describe_run, pct, pts};
use crate::tui::theme::Theme;
use memscope_core::neurons::NeuronId;
use memscope_core::studies::GroupChange;
use memscope_core::studies::intervention::{ALL_CANDIDATES, InterventionResult};

/// Scales a bar's half-width covers, in points: the smallest that fits the largest change.
const SCALES: [f64; 6] = [2.0, 5.0, 10.0, 25.0, 50.0, 100.0];

/// The smallest scale that fits a change of `max` points (100 beyond it: bars clip there).
pub fn scale_for(max: f64) -> f64 {
    SCALES.iter().copied().find(|&s| s >= max).unwrap_or(100.0)
}

/// Left-aligned blocks by eighths of a cell (index 0: empty).
const EIGHTHS: [char; 9] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉', '█'];

/// The marks at a bar's end when its change is beyond the scale (cut at the edge).
pub const OVERFLOW: (char, char) = ('◀', '▶');

/// What a cell of a bar shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    Blank,
    Axis,
    Fill,
    /// The outer cell of a bar, filled in eighths from the axis side: a positive bar's glyph
    /// as it stands, a negative bar's drawn reversed (its glyph is the empty part, on the
    /// left: Unicode has no right-aligned eighths).
    Part {
        reversed: bool,
    },
    /// The mark at the edge of a bar cut by the scale.
    Overflow,
    /// Fill within ±1 std of the mean.
    FillSpread,
    /// ±1 std beyond the fill.
    Whisker,
}

/// A bar of exactly `width` cells centred on zero (│), drawn in eighths of a cell: negative
/// changes fill to the left, positive to the right; a change beyond `scale` fills its side
/// and ends in an overflow mark. A change too small for an eighth still shows one.
pub fn signed_bar(change: f64, scale: f64, width: usize) -> Vec<(char, Cell)> {
    let half = width / 2;
    let side = if change < 0.0 { half } else { width.saturating_sub(half + 1) };
    let eighths = ((change.abs() / scale) * half as f64 * 8.0).round() as usize;
    let eighths = if change != 0.0 { eighths.max(1) } else { 0 };
    // Outward from the axis: whole cells, then the part of one.
    let mut out: Vec<(char, Cell)> = if change.abs() > scale || eighths > side * 8 {
        let mark = if change < 0.0 { OVERFLOW.0 } else { OVERFLOW.1 };
        let mut cells = vec![('█', Cell::Fill); side.saturating_sub(1)];
        cells.extend((side > 0).then_some((mark, Cell::Overflow)));
        cells
    } else {
        let mut cells = vec![('█', Cell::Fill); eighths / 8];
        match (eighths % 8, change < 0.0) {
            (0, _) => {}
            (part, false) => cells.push((EIGHTHS[part], Cell::Part { reversed: false })),
            (part, true) => cells.push((EIGHTHS[8 - part], Cell::Part { reversed: true })),
        }
        cells
    };
    out.resize(side, (' ', Cell::Blank));
    let axis = ('│', Cell::Axis);
    if change < 0.0 {
        out.reverse();
        out.push(axis);
        out.extend(std::iter::repeat_n((' ', Cell::Blank), width.saturating_sub(half + 1)));
        out
    } else {
        let mut cells = vec![(' ', Cell::Blank); half];
        cells.push(axis);
        cells.extend(out);
        cells
    }
}

/// The cells of a bar of `width` for a mean `change` with spread `std` (both in points):
/// the fill as [`signed_bar`] draws it, and the cells within mean ± std marked.
pub fn bar_cells(change: f64, std: f64, scale: f64, width: usize) -> Vec<(char, Cell)> {
    let mut cells = signed_bar(change, scale, width);
    if std <= 0.0 || width == 0 {
        return cells;
    }
    // A value's cell: the last cell its bar would fill (the axis for 0).
    let half = (width / 2) as f64;
    let cell = |v: f64| {
        let n = ((v.abs() / scale) * half).round().min(half) as isize;
        let at = if v < 0.0 { width as isize / 2 - n } else { width as isize / 2 + n };
        at.clamp(0, width as isize - 1) as usize
    };
    let (lo, hi) = (cell(change - std), cell(change + std));
    for (i, c) in cells.iter_mut().enumerate().take(hi + 1).skip(lo) {
        *c = match c.1 {
            Cell::Fill => ('▓', Cell::FillSpread),
            Cell::Axis | Cell::Part { .. } | Cell::Overflow => *c,
            _ if i == lo => ('├', Cell::Whisker),
            _ if i == hi => ('┤', Cell::Whisker),
            _ => ('─', Cell::Whisker),
        };
    }
    cells
}

/// An accuracy in percent with one decimal, without the sign (the header says %).
fn acc(v: Option<f64>) -> String {
    v.map(|v| format!("{:.1}", 100.0 * v)).unwrap_or_else(|| "n/a".into())
}

/// The bar scale in use: the locked one, or the smallest that fits `r` (auto).
pub fn scale_of(app: &App, r: &InterventionResult) -> (f64, bool) {
    match BAR_SCALES.get(app.bars.scale).copied().flatten() {
        Some(s) => (s, false),
        None => {
            let max = r.groups.iter().filter_map(|g| g.change).fold(0.0f64, |m, c| m.max(100.0 * c.abs()));
            (scale_for(max), true)
        }
    }
}

/// The examples per group when every group has as many, and a line saying so (else each
/// group's count).
fn examples(r: &InterventionResult) -> (Option<usize>, String) {
    let counts: Vec<usize> = r.groups.iter().map(|g| g.examples).collect();
    match counts.first() {
        Some(&n) if counts.iter().all(|&c| c == n) && n > 0 => (
            Some(n),
            format!("{}: {n} examples per group, so 1 example = {:.1} pp", r.spec.split, 100.0 / n as f64),
        ),
        _ => {
            let each: Vec<String> = r.groups.iter().map(|g| format!("G{} {}", g.group, g.examples)).collect();
            (None, format!("examples on {}: {}", r.spec.split, each.join(", ")))
        }
    }
}

/// The header above the bars: the scale's ends and zero where they fit.
fn bar_header(scale: f64, width: usize) -> String {
    let (left, right) = (format!("-{scale}"), format!("+{scale}"));
    let half = width / 2;
    if half < left.len() + 2 || width - half - 1 < right.len() + 1 {
        return format!("{:^width$}", format!("±{scale}"));
    }
    let mut cells = vec![' '; width];
    for (i, ch) in left.chars().enumerate() {
        cells[i] = ch;
    }
    cells[half] = '0';
    for (i, ch) in right.chars().enumerate() {
        cells[width - right.len() + i] = ch;
    }
    cells.into_iter().collect()
}

fn bar_spans<'a>(cells: &[(char, Cell)], fill: Style, theme: &Theme) -> Vec<Span<'a>> {
    let style = |c: Cell| match c {
        Cell::Fill | Cell::FillSpread | Cell::Overflow | Cell::Part { reversed: false } => fill,
        Cell::Part { reversed: true } => fill.add_modifier(Modifier::REVERSED),
        Cell::Whisker => Style::default(),
        Cell::Blank | Cell::Axis => theme.muted(),
    };
    let mut spans: Vec<Span> = Vec::new();
    let mut run = String::new();
    let mut current = None;
    for &(ch, kind) in cells {
        if current.is_some_and(|k| style(k) != style(kind)) {
            spans.push(Span::styled(std::mem::take(&mut run), style(current.unwrap_or(kind))));
        }
        current = Some(kind);
        run.push(ch);
    }
    if let Some(kind) = current {
        spans.push(Span::styled(run, style(kind)));
    }
    spans
}

pub fn draw_bars(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, focused: bool) {
    let Some(r) = &app.bars.result else {
        let text = vec![
            Line::raw(""),
            Line::raw(format!(
                "No intervention yet. Pick a layer and a group on the left, set the form above, and press {}.",
                app.keys.label(Action::Run)
            )),
        ];
        // Wrapped, so a narrow panel shows every word.
        let paragraph = Paragraph::new(text).wrap(Wrap { trim: true });
        frame.render_widget(
            paragraph.block(block(" Accuracy change ", focused, theme).padding(Padding::horizontal(1))),
            area,
        );
        return;
    };
    let pinned = app.bars.pinned.as_ref().filter(|p| *p != r);
    let wide = area.width >= 110;
    match pinned {
        // A pinned result beside the current one where the panel is wide.
        Some(pin) if wide => {
            let [now, then] =
                Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
            bars_panel(frame, now, app, (r, None), false, theme, focused);
            bars_panel(frame, then, app, (pin, None), true, theme, focused);
        }
        // Narrow: the pinned result's change as a column beside the current one's.
        Some(pin) => bars_panel(frame, area, app, (r, Some(pin)), false, theme, focused),
        // The selected neurons beside the bars where the screen has room for both.
        None if wide && area.height >= 20 && !r.neurons.is_empty() => {
            let [bars, neurons] =
                Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)]).areas(area);
            bars_panel(frame, bars, app, (r, None), false, theme, focused);
            draw_neurons(frame, neurons, app, theme, false);
        }
        None => bars_panel(frame, area, app, (r, None), false, theme, focused),
    }
}

/// One result's bars, with a pinned result's changes as a column (`pin`); `pinned` draws a
/// pinned result (never stale: kept as it was).
fn bars_panel(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    (r, pin): (&InterventionResult, Option<&InterventionResult>),
    pinned: bool,
    theme: &Theme,
    focused: bool,
) {
    let (scale, auto) = scale_of(app, r);
    let inner = area.width.saturating_sub(2) as usize;
    // Group names only where there is room; the groups panel always shows them.
    let label = if inner >= 76 { 17 } else { 3 };
    let pin_width = if pin.is_some() { 7 } else { 0 };
    // Name, before→after, Δ, |Δ|, the worst mark and the pinned Δ around the bar; narrow with
    // a pinned column, |Δ| gives way so that a group's row (its mark included) fits one line.
    let fixed = label + 13 + 7 + 6 + 6 + pin_width;
    let abs = pin.is_none() || inner >= fixed + 8;
    let bar_width = inner.saturating_sub(if abs { fixed } else { fixed - 6 }).max(8);
    let mut spec = Vec::new();
    if pinned {
        spec.push(Span::styled(
            format!("pinned ({} unpins) · ", app.keys.label(Action::Pin)),
            theme.accent(),
        ));
    } else if app.result_stale() {
        spec.push(Span::styled(
            format!("stale: press {} · shown: ", app.keys.label(Action::Run)),
            theme.negative().add_modifier(Modifier::BOLD),
        ));
    }
    spec.push(Span::styled(describe_run(r), theme.muted()));
    let mut lines = vec![
        Line::from(spec),
        Line::styled(
            format!(
                "{:<label$}{:<13}{}{:>7}{:>w$}{}",
                "",
                "before→after",
                bar_header(scale, bar_width),
                "Δ",
                if abs { "|Δ|" } else { "" },
                if pin.is_some() { format!("{:>7}", "pin Δ") } else { String::new() },
                w = if abs { 6 } else { 0 }
            ),
            theme.muted(),
        ),
    ];
    let bar = Bar { scale, width: bar_width, label, abs };
    lines.extend(r.groups.iter().map(|g| group_line(r, g, pin, bar, theme)));
    lines.extend(summary_lines(app, r, pin, inner, theme));
    let (per_group, examples) = examples(r);
    lines.push(Line::styled(examples, theme.muted()));
    let title = format!(
        " {}Δ acc, pp · {} · bars ±{scale}{} ({}) ",
        if pinned { "Pinned: " } else { "" },
        per_group.map(|n| format!("{n}/group")).unwrap_or_else(|| "n below".into()),
        if auto { " auto" } else { "" },
        app.keys.label(Action::Scale)
    );
    scrolled(frame, area, block(title, focused, theme), lines, app.scroll, theme);
}

/// How a panel's bars are drawn: the scale (points at either end), the bar's width, the
/// width of the group's label, whether the |Δ| column is shown.
#[derive(Clone, Copy)]
struct Bar {
    scale: f64,
    width: usize,
    label: usize,
    abs: bool,
}

/// A group's row: its name, accuracy before and after, its bar, Δ, |Δ|, the pinned Δ, and
/// whether it was the worst group before the change.
fn group_line<'a>(
    r: &InterventionResult,
    g: &GroupChange,
    pin: Option<&InterventionResult>,
    Bar { scale, width, label, abs: show_abs }: Bar,
    theme: &Theme,
) -> Line<'a> {
    // The worst group before the change, as the CLI's "(worst)" marks it: the group the
    // Groups panel shows in red, the same for every run on this epoch and split.
    let marker = if r.before.worst_group == Some(g.group) { " worst" } else { "" };
    let change = g.change.map(|c| 100.0 * c).unwrap_or(0.0);
    let std = if r.runs > 1 { 100.0 * g.after_std.unwrap_or(0.0) } else { 0.0 };
    let fill_style = if change < 0.0 { theme.negative() } else { theme.positive() };
    // Narrow: the group's number alone (the Groups panel names it); wide: its name, cut with "…".
    let name = match label {
        ..=4 => format!("G{}", g.group),
        _ => crate::tui::text::fit(&format!("G{} {}", g.group, g.name), label - 1),
    };
    let mut spans = vec![
        Span::styled(format!("{name:<label$}"), theme.group(g.group)),
        Span::raw(format!("{:>5}→{:<5}  ", acc(g.before), acc(g.after))),
    ];
    spans.extend(bar_spans(&bar_cells(change, std, scale, width), fill_style, theme));
    spans.push(Span::styled(format!(" {:>6}", pts(g.change)), fill_style));
    if show_abs {
        let abs = g.abs_change.map(|a| format!("{:.1}", 100.0 * a)).unwrap_or_else(|| "n/a".into());
        spans.push(Span::raw(format!(" {abs:>5}")));
    }
    if let Some(pin) = pin {
        let then = pin.groups.iter().find(|p| p.group == g.group).and_then(|p| p.change);
        spans.push(Span::styled(format!(" {:>6}", pts(then)), theme.accent()));
    }
    spans.push(Span::styled(marker, theme.negative()));
    Line::from(spans)
}

/// Under the bars: the caption and the boundary-shift control (in `width` columns), the worst-group and mean accuracy before and after, what
/// repeats mean, and what the pinned column is.
fn summary_lines<'a>(
    app: &App,
    r: &InterventionResult,
    pin: Option<&InterventionResult>,
    width: usize,
    theme: &Theme,
) -> Vec<Line<'a>> {
    let train: Vec<usize> = app.groups.iter().map(|g| g.train).collect();
    let caption = caption::intervention(r, &app.layers, &train, &app.keys);
    let mut lines = vec![Line::styled(caption, theme.accent())];
    if let Some(shift) = caption::boundary_shift(r, &train, width) {
        lines.push(Line::styled(shift, theme.accent()));
    }
    let (b, a) = (&r.before_summary, &r.after_summary);
    // Over repeats: the mean over runs of each run's worst group, whichever group that was.
    let (worst, width) = if r.runs > 1 { ("mean of each run's worst", 25) } else { ("worst-group", 22) };
    lines.push(Line::raw(format!(
        "{worst:<width$}{} → {}",
        pct(b.worst_group_accuracy),
        pct(a.worst_group_accuracy)
    )));
    lines.push(Line::raw(format!(
        "{:<width$}{} → {}",
        "mean (train-weighted)",
        pct(b.mean_accuracy_train_weighted),
        pct(a.mean_accuracy_train_weighted)
    )));
    if r.runs > 1 {
        lines.push(Line::styled(
            format!("{} runs: Δ mean change, |Δ| mean |change|, ├─┤ ±1 std", r.runs),
            theme.muted(),
        ));
    }
    if let Some(pin) = pin {
        let unpin = app.keys.label(Action::Pin);
        lines.push(Line::styled(format!("pin Δ ({unpin} unpins): {}", describe_run(pin)), theme.accent()));
    }
    lines
}

pub fn draw_neurons(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, focused: bool) {
    let Some(r) = app.bars.result.as_ref().filter(|r| !r.neurons.is_empty()) else {
        let text = if app.bars.result.is_some() {
            "  a layer rewind selects no neurons".to_string()
        } else {
            format!("  none yet: press {}", app.keys.label(Action::Run))
        };
        frame.render_widget(Paragraph::new(text).block(block(" Selected neurons ", focused, theme)), area);
        return;
    };
    // With --normalize-layers the ranking sorts score / layer mean: shown beside the raw score.
    let normalized = r.spec.query.normalize_layers;
    let numbers = |n: &memscope_core::studies::intervention::SelectedNeuron| {
        let mut cells = vec![format!("{:>9}", format!("{:.3e}", n.score))];
        if normalized {
            cells.push(format!("{:>8}", format!("{:.3}", n.ranking_score)));
        }
        cells.extend([
            format!("{:>6.1}", n.score_percentile),
            format!("{:>7}", format!("{:.3}", n.magnitude)),
            format!("{:>7.1}", n.magnitude_percentile),
        ]);
        cells.concat()
    };
    let mut header = format!("{:>9}", "score");
    if normalized {
        header.push_str(&format!("{:>8}", "÷mean"));
    }
    header.push_str(&format!("{:>6}{:>7}{:>7}", "pct", "|w|", "|w|pct"));
    let inner = area.width.saturating_sub(2) as usize;
    let marks = neuron_marks(app, focused);
    let name_width = r.neurons.iter().map(|n| n.id.to_string().chars().count()).max().unwrap_or(6).max(6)
        + if marks.is_some() { 2 } else { 0 };
    let name = |i: usize, n: &memscope_core::studies::intervention::SelectedNeuron| match &marks {
        Some(mark) => format!("{}{}", mark(i, &n.id), n.id),
        None => n.id.to_string(),
    };
    // Names on their own line where a row cannot hold them beside the numbers (never cut).
    let one_line = name_width + 1 + header.chars().count() <= inner;
    let mut lines = Vec::new();
    if app.result_stale() {
        let stale = format!("stale: press {}", app.keys.label(Action::Run));
        lines.push(Line::styled(stale, theme.negative().add_modifier(Modifier::BOLD)));
    }
    lines.push(Line::styled(describe_run(r), theme.muted()));
    if one_line {
        lines.push(Line::styled(format!("{:<name_width$} {header}", "neuron"), theme.accent()));
        lines.extend(
            r.neurons
                .iter()
                .enumerate()
                .map(|(i, n)| Line::raw(format!("{:<name_width$} {}", name(i, n), numbers(n)))),
        );
    } else {
        lines.push(Line::styled(format!("neuron / {}", header.trim_start()), theme.accent()));
        for (i, n) in r.neurons.iter().enumerate() {
            lines.push(Line::raw(name(i, n)));
            lines.push(Line::raw(numbers(n)));
        }
    }
    let scope = r.neurons.first().map(|n| n.score_percentile_scope.as_str()).unwrap_or_default();
    lines.push(Line::styled(format!("pct: {scope}; |w|pct: {ALL_CANDIDATES}"), theme.muted()));
    if normalized {
        lines.push(Line::styled("ranked by ÷mean = score / layer mean", theme.muted()));
    }
    if marks.is_some() {
        let pin = app.keys.label(Action::PinNeuron);
        let text = format!(
            "› cursor (↑↓) · ● chosen by hand ({pin} pins, {} runs them)",
            app.keys.label(Action::Run)
        );
        lines.push(Line::styled(text, theme.muted()));
    }
    let title = " Selected neurons (pct: 100 = top) ";
    scrolled(frame, area, block(title, focused, theme), lines, app.scroll, theme);
}

/// The marks before each neuron's name (`›` the cursor, `●` chosen by hand), drawn while the
/// results panel has the focus or some neurons are chosen; `None` otherwise (the list as it
/// always was).
fn neuron_marks<'a>(app: &'a App, focused: bool) -> Option<impl Fn(usize, &NeuronId) -> String + 'a> {
    let chosen = &app.form.chosen;
    (focused || !chosen.is_empty()).then(|| {
        let cursor = app.neuron_cursor().filter(|_| focused);
        move |i: usize, id: &NeuronId| {
            let at = if cursor == Some(i) { '›' } else { ' ' };
            let pinned = if chosen.contains(id) { '●' } else { ' ' };
            format!("{at}{pinned}")
        }
    })
}

pub fn draw_history(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, focused: bool) {
    let groups = app.groups.len();
    let mut header = format!("{:<3}", "#");
    for g in 0..groups {
        header.push_str(&format!("{:>7}", format!("ΔG{g}")));
    }
    header.push_str(&format!("{:>8}", "worst"));
    let mut lines = vec![Line::styled(header, theme.accent())];
    if app.bars.history.is_empty() {
        lines.push(Line::raw(format!("none yet: each {} adds its run here", app.keys.label(Action::Run))));
    }
    for (i, r) in app.bars.history.iter().enumerate() {
        let mut row = format!("{:<3}", i + 1);
        for g in &r.groups {
            row.push_str(&format!("{:>7}", pts(g.change)));
        }
        row.push_str(&format!("{:>8}", pct(r.after_summary.worst_group_accuracy)));
        lines.push(Line::raw(row));
        // Every setting, wrapped under the numbers.
        lines.push(Line::styled(format!("   {}", describe_run(r)), theme.muted()));
    }
    let runs = app.bars.history.len();
    let runs = format!("{runs} run{}", if runs == 1 { "" } else { "s" });
    // "newest first" where the border has room for it.
    let title = [
        format!(" History: {runs}, keeps {HISTORY}, newest first; Δ in pp "),
        format!(" History: {runs}, keeps {HISTORY}; Δ in pp "),
    ]
    .into_iter()
    .find(|t| t.chars().count() + 2 <= area.width as usize)
    .unwrap_or_else(|| format!(" History: {runs} "));
    scrolled(frame, area, block(title, focused, theme), lines, app.scroll, theme);
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

    fn text(cells: Vec<(char, Cell)>) -> String {
        cells.into_iter().map(|c| c.0).collect()
    }

    #[test]
    fn bars_fill_away_from_zero_in_eighths_and_keep_their_width() {
        // Half-width 5 cells on each side of the axis: 1 cell = 20 points at ±100.
        assert_eq!(text(signed_bar(-40.0, 100.0, 11)), "   ██│     ");
        assert_eq!(text(signed_bar(100.0, 100.0, 11)), "     │█████");
        assert_eq!(text(signed_bar(0.0, 100.0, 11)), "     │     ");
        // 45 points: two cells and 2/8 of a third (2.25 cells).
        assert_eq!(text(signed_bar(45.0, 100.0, 11)), "     │██▎  ");
        // Negative: the part cell is drawn reversed, so its glyph is the empty 6/8 on the left.
        let cells = signed_bar(-45.0, 100.0, 11);
        assert_eq!(text(cells.clone()), "  ▊██│     ");
        assert_eq!(cells[2].1, Cell::Part { reversed: true });
        // −1 point at ±50 is a tenth of a cell, 0.8 of an eighth: one eighth, not a whole cell.
        assert_eq!(text(signed_bar(-1.0, 50.0, 11)), "    ▉│     ");
        assert_eq!(text(signed_bar(1.0, 50.0, 11)), "     │▏    ");
        // A change too small for an eighth still shows one.
        assert_eq!(text(signed_bar(0.1, 100.0, 11)), "     │▏    ");
        for change in [-300.0, -1.0, 0.0, 0.4, 7.0, 300.0] {
            for width in [8, 9, 30, 31] {
                assert_eq!(signed_bar(change, 5.0, width).len(), width, "{change} {width}");
            }
        }
    }

    #[test]
    fn a_bar_beyond_the_scale_ends_in_an_overflow_mark() {
        // 46 points at a zoomed ±10: cut at the edge, and marked so.
        assert_eq!(text(signed_bar(46.0, 10.0, 11)), "     │████▶");
        assert_eq!(text(signed_bar(-46.0, 10.0, 11)), "◀████│     ");
        assert_eq!(signed_bar(-46.0, 10.0, 11)[0].1, Cell::Overflow);
        // Exactly the scale fills the side with no mark.
        assert_eq!(text(signed_bar(-10.0, 10.0, 11)), "█████│     ");
    }

    #[test]
    fn whiskers_mark_one_std_around_the_mean() {
        // Half-width 5 cells: −40 ± 20 points on a ±100 scale: −60 one cell beyond the fill.
        assert_eq!(text(bar_cells(-40.0, 20.0, 100.0, 11)), "  ├▓▓│     ");
        assert_eq!(text(bar_cells(20.0, 20.0, 100.0, 11)), "     │▓┤   ");
        assert_eq!(text(bar_cells(0.0, 40.0, 100.0, 11)), "   ├─│─┤   ");
        assert_eq!(text(bar_cells(-40.0, 0.0, 100.0, 11)), "   ██│     ");
        for (change, std) in [(-300.0, 50.0), (90.0, 30.0), (0.0, 0.0)] {
            assert_eq!(bar_cells(change, std, 100.0, 11).len(), 11);
        }
    }
}
