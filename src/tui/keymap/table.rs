//! The table: every action, its default keys, where it applies and what it does. A new
//! action is a row here (and its arm in `App::update`).

use std::fmt;

use super::key::Key;
use crate::tui::app::{Action, Edit, PromptKind, VIEWS, View};

/// Where an action does something.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Where {
    /// Anywhere outside a prompt.
    Anywhere,
    /// The focused panel: a list, the form, the results.
    Panel,
    /// The form, and the results of Sensitivity (the distance) and Mitigation (the page).
    Values,
    View(View),
    /// While the tour runs.
    Tour,
    /// While a prompt is open (only these keys, Ctrl-C and typing work there).
    Prompt,
}

impl fmt::Display for Where {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Where::Anywhere => f.write_str("anywhere"),
            Where::Panel => f.write_str("the focused panel"),
            Where::Values => f.write_str("the form; Sensitivity and Mitigation results"),
            Where::View(view) => {
                let name = VIEWS.iter().find(|(v, _)| v == view).map_or("", |(_, name)| name);
                write!(f, "the {name} view")
            }
            Where::Tour => f.write_str("the tour"),
            Where::Prompt => f.write_str("a prompt"),
        }
    }
}

/// A row of the keymap.
#[derive(Debug)]
pub struct Binding {
    pub action: Action,
    /// Its field in `config.ron`'s `keys`; `None`: fixed.
    pub name: Option<&'static str>,
    pub keys: &'static [Key],
    pub applies: Where,
    /// What it does, in the help overlay and the README; consecutive rows that say the
    /// same are shown as one line.
    pub text: &'static str,
}

const fn bind(
    action: Action,
    name: &'static str,
    keys: &'static [Key],
    applies: Where,
    text: &'static str,
) -> Binding {
    Binding { action, name: Some(name), keys, applies, text }
}

const fn fixed(action: Action, keys: &'static [Key], text: &'static str) -> Binding {
    Binding { action, name: None, keys, applies: Where::Prompt, text }
}

const PANELS: &str = "next / previous panel (epochs, layers, groups, form, results)";
const MOVE: &str = "move in the panel; in the results panel scroll";
const PAGES: &str = "ten rows up / down";
const ENDS: &str = "first / last (epoch, layer, group, field, row)";
const VALUES: &str = "change a value: form field, rewind distance, Mitigation page";
const SHOW: &str = "the views, numbered in the title bar (Bars … Sweep Epochs Images)";
const RUN: &str = "run the intervention or study / cancel the running job";
const TOUR: &str = "guided tour of the paper's story: start or end / next / back";
const BY_HAND: &str = "neurons by hand: pin / unpin the Neurons view's › row / type ids";
const LETTERS: &str = "open finished mitigation run / export / quit (or Ctrl-C)";

use Key::Char;

/// Every action's keys, in the order the help and the README list them.
pub static BINDINGS: [Binding; 37] = [
    bind(Action::NextPanel, "next_panel", &[Key::Tab], Where::Anywhere, PANELS),
    bind(Action::PrevPanel, "previous_panel", &[Key::BackTab], Where::Anywhere, PANELS),
    bind(Action::Up, "up", &[Key::Up, Char('k')], Where::Panel, MOVE),
    bind(Action::Down, "down", &[Key::Down, Char('j')], Where::Panel, MOVE),
    bind(Action::PageUp, "page_up", &[Key::PageUp], Where::Panel, PAGES),
    bind(Action::PageDown, "page_down", &[Key::PageDown], Where::Panel, PAGES),
    bind(Action::First, "first", &[Key::Home, Char('g')], Where::Panel, ENDS),
    bind(Action::Last, "last", &[Key::End, Char('G')], Where::Panel, ENDS),
    bind(Action::Left, "left", &[Key::Left, Char('h')], Where::Values, VALUES),
    bind(Action::Right, "right", &[Key::Right, Char('l')], Where::Values, VALUES),
    bind(Action::Show(View::Bars), "bars", &[Char('1')], Where::Anywhere, SHOW),
    bind(Action::Show(View::Ranks), "ranks", &[Char('2')], Where::Anywhere, SHOW),
    bind(Action::Show(View::Neurons), "neurons", &[Char('3')], Where::Anywhere, SHOW),
    bind(Action::Show(View::History), "history", &[Char('4')], Where::Anywhere, SHOW),
    bind(Action::Show(View::Sensitivity), "sensitivity", &[Char('5')], Where::Anywhere, SHOW),
    bind(Action::Show(View::Mitigation), "mitigation", &[Char('6')], Where::Anywhere, SHOW),
    bind(Action::Show(View::Sweep), "sweep", &[Char('7')], Where::Anywhere, SHOW),
    bind(Action::Show(View::Epochs), "epochs", &[Char('8')], Where::Anywhere, SHOW),
    bind(Action::Show(View::Images), "images", &[Char('9')], Where::Anywhere, SHOW),
    bind(Action::Run, "run", &[Key::Enter], Where::Anywhere, RUN),
    bind(Action::Cancel, "cancel", &[Key::Esc], Where::Anywhere, RUN),
    bind(
        Action::Scale,
        "scale",
        &[Char('b')],
        Where::View(View::Bars),
        "bar scale: ±100 ±50 ±25 ±10 ±5 ±2 auto (shown as 'bars ±N')",
    ),
    bind(Action::Tour, "tour", &[Char('t')], Where::Anywhere, TOUR),
    bind(Action::TourNext, "tour_next", &[Char('n')], Where::Tour, TOUR),
    bind(Action::TourPrev, "tour_back", &[Char('N')], Where::Tour, TOUR),
    bind(
        Action::Pin,
        "pin",
        &[Char('p')],
        Where::View(View::Bars),
        "pin the result; the next is drawn beside it; again: unpin",
    ),
    bind(Action::PinNeuron, "pin_neuron", &[Key::Space], Where::View(View::Neurons), BY_HAND),
    bind(Action::Ask(PromptKind::Neurons), "type_neurons", &[Char('#')], Where::Anywhere, BY_HAND),
    bind(
        Action::Ask(PromptKind::Epoch),
        "epoch",
        &[Char(':')],
        Where::Anywhere,
        "jump to an epoch: type its number, then Enter",
    ),
    bind(
        Action::Ask(PromptKind::Filter),
        "filter",
        &[Char('/')],
        Where::Anywhere,
        "list only the layers whose name has the text typed",
    ),
    bind(
        Action::Demo,
        "demo",
        &[Char('d')],
        Where::Anywhere,
        "switch between the bundled demos: the ResNet and the ViT",
    ),
    bind(
        Action::Report,
        "report",
        &[Char('r')],
        Where::Anywhere,
        "the HTML report of this epoch and split (as memscope report)",
    ),
    bind(
        Action::Ask(PromptKind::Open),
        "open_experiment",
        &[Char('O')],
        Where::Anywhere,
        "open another experiment: type to narrow the list, Enter opens",
    ),
    bind(Action::Open, "open", &[Char('o')], Where::View(View::Mitigation), LETTERS),
    bind(Action::Export, "export", &[Char('e')], Where::Anywhere, LETTERS),
    bind(Action::Quit, "quit", &[Char('q')], Where::Anywhere, LETTERS),
    bind(Action::Help, "help", &[Char('?')], Where::Anywhere, "this help: every key and symbol"),
];

/// The prompt's own keys (anything else typed goes into it).
pub static PROMPT_BINDINGS: [Binding; 3] = [
    fixed(Action::Prompt(Edit::Accept), &[Key::Enter], "in a prompt: jump to the epoch, keep the filter"),
    fixed(Action::Prompt(Edit::Close), &[Key::Esc], "in a prompt: close it (a filter is cleared)"),
    fixed(Action::Prompt(Edit::Erase), &[Key::Backspace], "in a prompt: erase the last character"),
];

/// The mouse, beside the keys.
pub const MOUSE: &str = "click a panel or a row; the wheel moves in the panel under it";

/// The status line's hints while nothing runs.
pub const IDLE_HINTS: [(Action, &str); 3] = [
    (Action::Run, "runs the intervention"),
    (Action::NextPanel, "moves between panels"),
    (Action::Help, "lists every key"),
];
