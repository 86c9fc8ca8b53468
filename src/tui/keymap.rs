//! One keymap: a table of every key, the action it sends, where that action applies and what
//! it does ([`BINDINGS`], in `keymap/table.rs`). Key dispatch, the help overlay, the footer's
//! hints and the README's key list are all drawn from it; `config.ron`'s `keys` rebinds any
//! action by its name there.

mod config;
mod key;
mod table;

use crossterm::event::{KeyEvent, KeyEventKind};

pub use config::{KeyText, Keys};
pub use key::{Key, QUIT_ALWAYS};
pub use table::{BINDINGS, Binding, IDLE_HINTS, MOUSE, PROMPT_BINDINGS, Where};

use super::app::{Action, Edit, Mode};

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
pub struct KeyLine<'a> {
    pub rows: Vec<&'a (&'static Binding, Vec<Key>)>,
    pub text: &'static str,
}

impl KeyLine<'_> {
    /// The keys of every row, one row's after the other's; three or more rows in a row whose
    /// keys are single characters in order are one range (`1 … 9`; `1 … 4 / s / 6 … 9` when
    /// one of them is rebound).
    pub fn keys(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut run: Vec<char> = Vec::new();
        let flush = |run: &mut Vec<char>, parts: &mut Vec<String>| {
            match run.as_slice() {
                [first, .., last] if run.len() >= 3 => parts.push(format!("{first} … {last}")),
                chars => parts.extend(chars.iter().map(|c| Key::Char(*c).to_string())),
            }
            run.clear();
        };
        for (_, keys) in &self.rows {
            match keys.as_slice() {
                [Key::Char(c)] if run.last().is_none_or(|last| *c as u32 == *last as u32 + 1) => run.push(*c),
                [Key::Char(c)] => {
                    flush(&mut run, &mut parts);
                    run.push(*c);
                }
                keys => {
                    flush(&mut run, &mut parts);
                    parts.push(keys.iter().map(Key::to_string).collect::<Vec<_>>().join(" "));
                }
            }
        }
        flush(&mut run, &mut parts);
        parts.join(" / ")
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
            (Mode::Prompt, Key::Space) => find(true).or(Some(Action::Prompt(Edit::Type(' ')))),
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

    /// Two actions' first keys as one label: `←→` and `↑↓` for arrows, else `a/d`.
    pub fn pair(&self, first: Action, second: Action) -> String {
        let (a, b) = (self.label(first), self.label(second));
        let arrow = |k: &str| k.chars().count() == 1 && k.chars().all(|c| matches!(c, '←' | '→' | '↑' | '↓'));
        if arrow(&a) && arrow(&b) { format!("{a}{b}") } else { format!("{a}/{b}") }
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
    pub fn lines(&self) -> Vec<KeyLine<'_>> {
        let mut lines: Vec<KeyLine> = Vec::new();
        for row in &self.bound {
            match lines.last_mut() {
                Some(line) if line.text == row.0.text => line.rows.push(row),
                _ => lines.push(KeyLine { rows: vec![row], text: row.0.text }),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::app::View;

    #[test]
    fn a_run_of_single_keys_reads_as_a_range() {
        let map = Keymap::default();
        let lines = map.lines();
        let line =
            |action: Action| lines.iter().find(|l| l.rows.iter().any(|(b, _)| b.action == action)).unwrap();
        assert_eq!(line(Action::Show(View::Bars)).keys(), "1 … 9");
        assert_eq!(line(Action::Up).keys(), "↑ k / ↓ j");
        assert_eq!(line(Action::Help).keys(), "?");
        let rebound = Keymap::new(&Keys(vec![("sensitivity".into(), vec![KeyText::Char('s')])])).unwrap();
        let lines = rebound.lines();
        let views = lines.iter().find(|l| l.rows.iter().any(|(b, _)| b.action == Action::Show(View::Bars)));
        assert_eq!(views.unwrap().keys(), "1 … 4 / s / 6 … 9");
    }
}
