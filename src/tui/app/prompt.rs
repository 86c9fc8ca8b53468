//! The explorer's prompts: `:` jumps to an epoch by its number, `/` filters the layers by
//! name. While one is open, keys edit it (see [`Mode::Prompt`](super::Mode)).

use super::{App, Effect, Panel};
use crate::tui::status::Status;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromptKind {
    /// `:` then an epoch number and Enter.
    Epoch,
    /// `/` then part of a layer's name; the Layers panel lists the matches as it is typed.
    Filter,
    /// `#` then neuron ids (`stem.conv:13, head:1`) and Enter: the neurons chosen by hand.
    Neurons,
    /// `O` then part of an experiment's name (or a folder) and Enter: open it (see `picker`).
    Open,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    pub kind: PromptKind,
    pub text: String,
}

/// A key while a prompt is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edit {
    /// A character typed.
    Type(char),
    /// The last character typed, removed.
    Erase,
    /// Apply: jump to the epoch, keep the filter.
    Accept,
    /// Close; a filter is cleared.
    Close,
}

/// Longest text a prompt takes.
const MAX_PROMPT: usize = 256;

impl App {
    /// `:` or `/`: opens that prompt (a filter moves the focus to the layers it filters).
    pub(super) fn ask(&mut self, kind: PromptKind) -> Vec<Effect> {
        let text = match kind {
            PromptKind::Neurons => self.form.chosen_text(),
            _ => String::new(),
        };
        if kind == PromptKind::Open {
            self.picker = self.openable();
        }
        self.prompt = Some(Prompt { kind, text });
        if kind == PromptKind::Filter {
            self.focus = Panel::Layers;
        }
        Vec::new()
    }

    /// A key while a prompt is open: typing, erasing, applying or closing it.
    pub(super) fn edit_prompt(&mut self, edit: Edit) -> Vec<Effect> {
        let Some(prompt) = self.prompt.as_mut() else { return Vec::new() };
        match edit {
            Edit::Type(c) if prompt.text.chars().count() < MAX_PROMPT && !c.is_control() => {
                if prompt.kind == PromptKind::Epoch && !c.is_ascii_digit() {
                    return Vec::new();
                }
                prompt.text.push(c);
            }
            Edit::Type(_) => return Vec::new(),
            Edit::Erase => {
                prompt.text.pop();
            }
            Edit::Close => {
                if prompt.kind == PromptKind::Filter {
                    self.layer_filter.clear();
                }
                self.prompt = None;
                self.dismiss_message();
                return Vec::new();
            }
            Edit::Accept => {
                return match self.prompt.take() {
                    Some(Prompt { kind: PromptKind::Epoch, text }) => self.jump_to_epoch(&text),
                    Some(Prompt { kind: PromptKind::Neurons, text }) => self.type_neurons(&text),
                    Some(Prompt { kind: PromptKind::Open, text }) => self.open_picked(&text),
                    _ => Vec::new(),
                };
            }
        }
        self.typed();
        Vec::new()
    }

    /// After a key typed into a prompt: a filter keeps the selection on a listed layer.
    fn typed(&mut self) {
        if let Some(Prompt { kind: PromptKind::Filter, text }) = &self.prompt {
            self.layer_filter = text.clone();
            let shown = self.shown_layers();
            if !shown.contains(&self.layer)
                && let Some(&first) = shown.first()
            {
                self.layer = first;
            }
        }
    }

    /// Enter in the `:` prompt: that epoch, or what to type when there is none (nothing typed:
    /// how the prompt works; a number without a checkpoint: the epochs there are).
    fn jump_to_epoch(&mut self, text: &str) -> Vec<Effect> {
        let wanted: Option<usize> = text.parse().ok();
        if let Some(at) = wanted.and_then(|e| self.epochs.iter().position(|row| row.epoch == e)) {
            return self.select_epoch(at);
        }
        let (first, last) =
            (self.epochs.first().map_or(0, |e| e.epoch), self.epochs.last().map_or(0, |e| e.epoch));
        self.status = if text.is_empty() {
            Status::Note(format!("type an epoch number ({first}..={last}) after : and press Enter"))
        } else {
            Status::Error(format!(
                "no checkpoint of epoch '{text}' (this experiment has epochs {first}..={last})"
            ))
        };
        Vec::new()
    }
}
