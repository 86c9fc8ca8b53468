//! One keymap: a table of every key, the action it sends, where that action applies and what
//! it does. Key dispatch, the help overlay, the footer's hints and the README's key list are
//! all drawn from [`BINDINGS`]; `config.ron`'s `keys` rebinds any action by its name there.
//!
//! A new action is one row here (and its arm in `App::update`).

use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use super::app::{Action, Edit, Mode, PromptKind, VIEWS, View};

/// A key as the explorer reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Char(char),
    /// A letter with Ctrl held (always lower case).
    Ctrl(char),
    Tab,
    BackTab,
    Enter,
    Esc,
    Backspace,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Home,
    End,
    F(u8),
}

/// Ctrl-C quits whatever is open, a prompt too; it cannot be rebound.
pub const QUIT_ALWAYS: Key = Key::Ctrl('c');

/// Names of the keys that are not characters, as the config file and the help write them.
const NAMED: [(Key, &str, &[&str]); 13] = [
    (Key::Tab, "Tab", &[]),
    (Key::BackTab, "Shift-Tab", &["BackTab"]),
    (Key::Enter, "Enter", &["Return"]),
    (Key::Esc, "Esc", &["Escape"]),
    (Key::Backspace, "Backspace", &[]),
    (Key::Up, "↑", &["Up"]),
    (Key::Down, "↓", &["Down"]),
    (Key::Left, "←", &["Left"]),
    (Key::Right, "→", &["Right"]),
    (Key::PageUp, "PgUp", &["PageUp"]),
    (Key::PageDown, "PgDn", &["PageDown"]),
    (Key::Home, "Home", &[]),
    (Key::End, "End", &[]),
];

/// What `Key::parse` reads, for its error message.
const KEY_NAMES: &str = "a character such as 'x', or Tab, Shift-Tab, Enter, Esc, Backspace, Up, Down, Left, \
                         Right, PgUp, PgDn, Home, End, F1 to F12, Ctrl-x";

impl Key {
    /// The key of a terminal key press (`None`: one the explorer never binds).
    pub fn of(event: KeyEvent) -> Option<Key> {
        let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
        Some(match event.code {
            KeyCode::Char(c) if ctrl => Key::Ctrl(c.to_ascii_lowercase()),
            KeyCode::Char(c) => Key::Char(c),
            KeyCode::Tab => Key::Tab,
            KeyCode::BackTab => Key::BackTab,
            KeyCode::Enter => Key::Enter,
            KeyCode::Esc => Key::Esc,
            KeyCode::Backspace => Key::Backspace,
            KeyCode::Up => Key::Up,
            KeyCode::Down => Key::Down,
            KeyCode::Left => Key::Left,
            KeyCode::Right => Key::Right,
            KeyCode::PageUp => Key::PageUp,
            KeyCode::PageDown => Key::PageDown,
            KeyCode::Home => Key::Home,
            KeyCode::End => Key::End,
            KeyCode::F(n) => Key::F(n),
            _ => return None,
        })
    }

    /// A key named in the config file: one character, or a name of [`KEY_NAMES`].
    fn parse(text: &str) -> Option<Key> {
        let mut chars = text.chars();
        if let (Some(c), None) = (chars.next(), chars.next()) {
            return Some(Key::Char(c));
        }
        let lower = text.to_ascii_lowercase();
        if let Some(rest) = lower.strip_prefix("ctrl-").or_else(|| lower.strip_prefix("ctrl+")) {
            let mut chars = rest.chars();
            return match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii_alphanumeric() => Some(Key::Ctrl(c)),
                _ => None,
            };
        }
        if let Some(n) = lower.strip_prefix('f').and_then(|n| n.parse::<u8>().ok()) {
            return (1..=12).contains(&n).then_some(Key::F(n));
        }
        NAMED
            .iter()
            .find(|(_, shown, also)| {
                shown.eq_ignore_ascii_case(text) || also.iter().any(|a| a.eq_ignore_ascii_case(text))
            })
            .map(|(key, ..)| *key)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Char(c) => write!(f, "{c}"),
            Key::Ctrl(c) => write!(f, "Ctrl-{}", c.to_ascii_uppercase()),
            Key::F(n) => write!(f, "F{n}"),
            named => {
                let name = NAMED.iter().find(|(k, ..)| k == named).map_or("?", |(_, shown, _)| shown);
                f.write_str(name)
            }
        }
    }
}

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
const LETTERS: &str = "open finished mitigation run / export / quit (or Ctrl-C)";

use Key::Char;

/// Every action's keys, in the order the help and the README list them.
pub static BINDINGS: [Binding; 33] = [
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

/// The keys in effect: the table's, with the config file's rebindings.
#[derive(Clone, Debug)]
pub struct Keymap {
    /// Each row of [`BINDINGS`] then [`PROMPT_BINDINGS`], with its keys now.
    bound: Vec<(&'static Binding, Vec<Key>)>,
}

impl Default for Keymap {
    fn default() -> Self {
        let rows = BINDINGS.iter().chain(PROMPT_BINDINGS.iter());
        Keymap { bound: rows.map(|b| (b, b.keys.to_vec())).collect() }
    }
}

/// A merged line of the help or the README: rows that say the same, with their keys.
pub struct Line<'a> {
    pub rows: Vec<&'a (&'static Binding, Vec<Key>)>,
    pub text: &'static str,
}

impl Line<'_> {
    /// The keys of every row, one row's after the other's (`1 … 9` for a run of single
    /// characters in order).
    pub fn keys(&self) -> String {
        let singles: Option<Vec<char>> = self
            .rows
            .iter()
            .map(|(_, keys)| match keys.as_slice() {
                [Key::Char(c)] => Some(*c),
                _ => None,
            })
            .collect();
        if let Some(chars) = singles.filter(|c| c.len() >= 3)
            && chars.windows(2).all(|w| w[1] as u32 == w[0] as u32 + 1)
        {
            return format!("{} … {}", chars[0], chars[chars.len() - 1]);
        }
        let each = |keys: &Vec<Key>| keys.iter().map(Key::to_string).collect::<Vec<_>>().join(" ");
        self.rows.iter().map(|(_, keys)| each(keys)).collect::<Vec<_>>().join(" / ")
    }
}

impl Keymap {
    /// The table with `keys`' rebindings. Refused, with a line naming the field and the key:
    /// an unknown action, a key that is not one, a fixed key (Ctrl-C), and a key another
    /// action already has.
    pub fn new(keys: &Keys) -> Result<Keymap, String> {
        let mut map = Keymap::default();
        for (at, (name, given)) in keys.0.iter().enumerate() {
            if keys.0[..at].iter().any(|(n, _)| n == name) {
                return Err(format!("keys.{name} is given twice"));
            }
            let Some(row) = map.bound.iter_mut().find(|(b, _)| b.name == Some(name.as_str())) else {
                let names: Vec<&str> = BINDINGS.iter().filter_map(|b| b.name).collect();
                return Err(format!("keys.{name} is not an action (the actions: {})", names.join(", ")));
            };
            row.1 = given.iter().map(|k| k.key(name)).collect::<Result<_, _>>()?;
            row.1.dedup();
            if row.1.is_empty() {
                return Err(format!("keys.{name} names no key; give one or more"));
            }
        }
        for (name, _) in &keys.0 {
            map.check(name)?;
        }
        Ok(map)
    }

    /// The action `name`'s keys must be free: not Ctrl-C, not another action's.
    fn check(&self, name: &str) -> Result<(), String> {
        let Some((binding, keys)) = self.bound.iter().find(|(b, _)| b.name == Some(name)) else {
            return Ok(());
        };
        for key in keys {
            let shown = match key {
                Key::Char(c) => format!("'{}'", c.escape_default()),
                other => format!("'{other}'"),
            };
            if *key == QUIT_ALWAYS {
                return Err(format!(
                    "keys.{name} {shown} is taken by a fixed key ({QUIT_ALWAYS} always quits); choose another"
                ));
            }
            let other = self.bound.iter().find(|(b, k)| {
                !std::ptr::eq(*b, *binding)
                    && (b.applies == Where::Prompt) == (binding.applies == Where::Prompt)
                    && k.contains(key)
            });
            if let Some((other, _)) = other {
                let other = other.name.unwrap_or("a fixed key");
                return Err(format!(
                    "keys.{name} {shown} is already the key of {other} (keys.{other}); choose another, or rebind \
                     {other} too"
                ));
            }
        }
        Ok(())
    }

    /// The action a key press sends in `mode`: in a prompt its own keys, else what is typed;
    /// over the help any key (one no action has closes it); Ctrl-C always quits.
    pub fn action(&self, event: KeyEvent, mode: Mode) -> Option<Action> {
        if event.kind != KeyEventKind::Press {
            return None;
        }
        let key = Key::of(event)?;
        if key == QUIT_ALWAYS {
            return Some(Action::Quit);
        }
        let find = |prompt: bool| {
            self.bound
                .iter()
                .find(|(b, keys)| (b.applies == Where::Prompt) == prompt && keys.contains(&key))
                .map(|(b, _)| b.action)
        };
        match (mode, key) {
            (Mode::Prompt, Key::Char(c)) => find(true).or(Some(Action::Prompt(Edit::Type(c)))),
            (Mode::Prompt, _) => find(true),
            (Mode::Help, _) => Some(find(false).unwrap_or(Action::Help)),
            (Mode::Normal, _) => find(false),
        }
    }

    /// The keys `action` has now.
    pub fn keys(&self, action: Action) -> &[Key] {
        self.bound.iter().find(|(b, _)| b.action == action).map_or(&[], |(_, keys)| keys.as_slice())
    }

    /// The first key of `action`, as the screen names it.
    pub fn label(&self, action: Action) -> String {
        self.keys(action).first().map(Key::to_string).unwrap_or_default()
    }

    /// `hints` as `key what · key what`.
    pub fn hint(&self, hints: &[(Action, &str)]) -> String {
        hints
            .iter()
            .map(|(action, what)| format!("{} {what}", self.label(*action)))
            .collect::<Vec<_>>()
            .join(" · ")
    }

    /// The rows, consecutive ones that say the same merged into one line.
    pub fn lines(&self) -> Vec<Line<'_>> {
        let mut lines: Vec<Line> = Vec::new();
        for row in &self.bound {
            match lines.last_mut() {
                Some(line) if line.text == row.0.text => line.rows.push(row),
                _ => lines.push(Line { rows: vec![row], text: row.0.text }),
            }
        }
        lines
    }

    /// The README's key list (between its `<!-- keys:start -->` and `<!-- keys:end -->`
    /// lines): a Markdown table of every line, the mouse and Ctrl-C.
    pub fn readme(&self) -> String {
        let cell = |text: &str| text.replace('|', "\\|");
        let mut out =
            String::from("| key | `keys` field in config.ron | where | what it does |\n|---|---|---|---|\n");
        for line in self.lines() {
            let names: Vec<String> =
                line.rows.iter().filter_map(|(b, _)| b.name).map(|n| format!("`{n}`")).collect();
            let mut wheres: Vec<String> = Vec::new();
            for (b, _) in &line.rows {
                let w = b.applies.to_string();
                if !wheres.contains(&w) {
                    wheres.push(w);
                }
            }
            let names = if names.is_empty() { "(fixed)".to_string() } else { names.join(" / ") };
            out.push_str(&format!(
                "| {} | {names} | {} | {} |\n",
                cell(&line.keys()),
                wheres.join(" / "),
                cell(line.text)
            ));
        }
        out.push_str(&format!("| {QUIT_ALWAYS} | (fixed) | anywhere, a prompt too | quit |\n"));
        out.push_str(&format!("| mouse | | the panel under the pointer | {MOUSE} |\n"));
        out.push_str(
            "\nAny action's keys can be rebound in the config file's `keys`, by the field named above: \
             one key or a list, each a character or a quoted name (`keys: (quit: 'x', up: [\"Up\", 'w'], run: \"F5\")`). \
             A field replaces that action's keys; a key another action has, or Ctrl-C, is refused.\n",
        );
        out
    }
}

/// `config.ron`'s `keys`: rebindings by action name, each one key or a list
/// (`keys: (quit: 'x', up: ["Up", 'w'], run: "F5")`), in the order written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Keys(pub Vec<(String, Vec<KeyText>)>);

/// A key as the config file writes it: a character, or a name.
#[derive(Clone, Debug, PartialEq)]
pub enum KeyText {
    Char(char),
    Name(String),
}

impl KeyText {
    fn key(&self, field: &str) -> Result<Key, String> {
        let key = match self {
            KeyText::Char(c) => Some(Key::Char(*c)),
            KeyText::Name(name) => Key::parse(name),
        };
        match key {
            Some(Key::Char(c)) if c.is_control() || c.is_whitespace() => Err(format!(
                "keys.{field} '{}' cannot be bound (no spaces or control characters)",
                c.escape_default()
            )),
            Some(key) => Ok(key),
            None => Err(format!("keys.{field} '{self}' is not a key ({KEY_NAMES})")),
        }
    }
}

impl fmt::Display for KeyText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyText::Char(c) => write!(f, "{}", c.escape_default()),
            KeyText::Name(name) => f.write_str(name),
        }
    }
}

impl<'de> Deserialize<'de> for Keys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = Keys;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("keys by action, as (quit: 'q', up: [\"Up\", 'k'])")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                let mut keys = Vec::new();
                while let Some((name, given)) = map.next_entry::<String, OneOrMore>()? {
                    keys.push((name, given.0));
                }
                Ok(Keys(keys))
            }
        }
        // Any field name: `Keymap::new` checks each against the table.
        deserializer.deserialize_struct("Keys", &[], Fields)
    }
}

/// One key or a list of them.
struct OneOrMore(Vec<KeyText>);

impl<'de> Deserialize<'de> for OneOrMore {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Given;
        impl<'de> Visitor<'de> for Given {
            type Value = OneOrMore;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key ('x', \"Tab\", \"F5\") or a list of keys")
            }
            fn visit_char<E: de::Error>(self, c: char) -> Result<OneOrMore, E> {
                Ok(OneOrMore(vec![KeyText::Char(c)]))
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<OneOrMore, E> {
                Ok(OneOrMore(vec![KeyText::Name(name.to_string())]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMore, A::Error> {
                let mut keys = Vec::new();
                while let Some(OneOrMore(more)) = seq.next_element::<OneOrMore>()? {
                    keys.extend(more);
                }
                Ok(OneOrMore(keys))
            }
        }
        deserializer.deserialize_any(Given)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_read_back_as_the_same_keys() {
        for (key, shown, also) in NAMED {
            assert_eq!(Key::parse(shown), Some(key));
            assert!(also.iter().all(|a| Key::parse(a) == Some(key)), "{shown}");
        }
        assert_eq!(Key::parse("x"), Some(Key::Char('x')));
        assert_eq!(Key::parse("ctrl-R"), Some(Key::Ctrl('r')));
        assert_eq!(Key::parse("F5"), Some(Key::F(5)));
        assert_eq!((Key::parse("F13"), Key::parse("Hyper")), (None, None));
        assert_eq!(Key::Ctrl('r').to_string(), "Ctrl-R");
    }

    #[test]
    fn a_run_of_single_keys_reads_as_a_range() {
        let map = Keymap::default();
        let lines = map.lines();
        let views = lines.iter().find(|l| l.text == SHOW).unwrap();
        assert_eq!(views.keys(), "1 … 9");
        let moving = lines.iter().find(|l| l.text == MOVE).unwrap();
        assert_eq!(moving.keys(), "↑ k / ↓ j");
    }
}
