//! The explorer's prompts (`:` jumps to an epoch by its number, `/` filters the layers by
//! name) and the mouse (a click focuses a panel and picks its row; the wheel moves in the
//! panel under the pointer).

use crossterm::event::KeyCode;

use super::{App, Effect, Panel};
use crate::tui::status::Status;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromptKind {
    /// `:` then an epoch number and Enter.
    Epoch,
    /// `/` then part of a layer's name; the Layers panel lists the matches as it is typed.
    Filter,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    pub kind: PromptKind,
    pub text: String,
}

/// Longest text a prompt takes.
const MAX_PROMPT: usize = 64;

impl App {
    /// A key while a prompt is open: typing, Backspace, Enter (apply) or Esc (close; a
    /// filter is cleared).
    pub fn prompt_key(&mut self, code: KeyCode) -> Vec<Effect> {
        let Some(prompt) = self.prompt.as_mut() else { return Vec::new() };
        match code {
            KeyCode::Char(c) if prompt.text.chars().count() < MAX_PROMPT && !c.is_control() => {
                if prompt.kind == PromptKind::Epoch && !c.is_ascii_digit() {
                    return Vec::new();
                }
                prompt.text.push(c);
            }
            KeyCode::Backspace => {
                prompt.text.pop();
            }
            KeyCode::Esc => {
                if prompt.kind == PromptKind::Filter {
                    self.layer_filter.clear();
                }
                self.prompt = None;
                return Vec::new();
            }
            KeyCode::Enter => {
                let prompt = self.prompt.take();
                return match prompt {
                    Some(Prompt { kind: PromptKind::Epoch, text }) => self.jump_to_epoch(&text),
                    _ => Vec::new(),
                };
            }
            _ => return Vec::new(),
        }
        let effects = self.typed();
        self.follow_layer();
        effects
    }

    /// After a key typed into a prompt: a filter keeps the selection on a listed layer.
    fn typed(&mut self) -> Vec<Effect> {
        if let Some(Prompt { kind: PromptKind::Filter, text }) = &self.prompt {
            self.layer_filter = text.clone();
            // Keep the selection on a listed layer.
            let shown = self.shown_layers();
            if !shown.contains(&self.layer)
                && let Some(&first) = shown.first()
            {
                self.layer = first;
            }
        }
        Vec::new()
    }

    fn jump_to_epoch(&mut self, text: &str) -> Vec<Effect> {
        let wanted: Option<usize> = text.parse().ok();
        match wanted.and_then(|e| self.epochs.iter().position(|row| row.epoch == e)) {
            Some(at) => self.select_epoch(at),
            None => {
                let (first, last) =
                    (self.epochs.first().map_or(0, |e| e.epoch), self.epochs.last().map_or(0, |e| e.epoch));
                self.status = Status::Error(format!(
                    "no checkpoint of epoch '{text}' (this experiment has epochs {first}..={last})"
                ));
                Vec::new()
            }
        }
    }

    /// Moves to the `at`-th checkpoint and asks for what it needs.
    pub(super) fn select_epoch(&mut self, at: usize) -> Vec<Effect> {
        if at == self.epoch || at >= self.epochs.len() {
            return Vec::new();
        }
        self.epoch = at;
        let mut effects = vec![Effect::Submit(self.baseline_job())];
        effects.extend(self.view_job().map(Effect::Submit));
        effects.push(Effect::Submit(self.prepare_job()));
        effects
    }

    /// The panel drawn at (x, y), if any.
    pub(super) fn panel_at(&self, x: u16, y: u16) -> Option<Panel> {
        self.hitbox_at(x, y).map(|(panel, _)| panel)
    }

    /// The panel at (x, y) and the list row there (counted from the list's first row), if on one.
    fn hitbox_at(&self, x: u16, y: u16) -> Option<(Panel, Option<usize>)> {
        let boxes = self.hitboxes.borrow();
        let (panel, rect, offset) = boxes.iter().find(|(_, r, _)| {
            x >= r.x && x < r.x.saturating_add(r.width) && y >= r.y && y < r.y.saturating_add(r.height)
        })?;
        // Inside the border: a row of the list.
        let inside = y > rect.y && y + 1 < rect.y.saturating_add(rect.height);
        Some((*panel, inside.then(|| offset + (y - rect.y - 1) as usize)))
    }

    /// A click: focus the panel; on a list row, select it (an epoch or a group loads as
    /// with the arrows).
    pub(super) fn click(&mut self, x: u16, y: u16) -> Vec<Effect> {
        let Some((panel, row)) = self.hitbox_at(x, y) else { return Vec::new() };
        self.focus = panel;
        let Some(row) = row else { return Vec::new() };
        match panel {
            Panel::Epochs => self.select_epoch(row),
            Panel::Layers => {
                if let Some(&layer) = self.shown_layers().get(row) {
                    self.layer = layer;
                }
                Vec::new()
            }
            Panel::Groups if row < self.groups.len() && row != self.group => {
                self.group = row;
                vec![Effect::Submit(self.prepare_job())]
            }
            _ => Vec::new(),
        }
    }
}
