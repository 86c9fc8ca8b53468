//! Keys as the explorer reads them from the terminal, names them on screen and reads them
//! from the config file.

use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// A key as the explorer reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Char(char),
    /// The space bar (a space typed into a prompt is a character).
    Space,
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
const NAMED: [(Key, &str, &[&str]); 14] = [
    (Key::Space, "Space", &[]),
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
pub(super) const KEY_NAMES: &str = "a character such as 'x', or Tab, Shift-Tab, Enter, Esc, Backspace, Up, Down, Left, \
                         Right, PgUp, PgDn, Home, End, Space, F1 to F12, Ctrl-x";

impl Key {
    /// The key of a terminal key press (`None`: one the explorer never binds).
    pub fn of(event: KeyEvent) -> Option<Key> {
        let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
        Some(match event.code {
            KeyCode::Char(c) if ctrl => Key::Ctrl(c.to_ascii_lowercase()),
            KeyCode::Char(' ') => Key::Space,
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

    /// A key named in the config file: a name of [`KEY_NAMES`] (the arrows too), or one
    /// character.
    pub(super) fn parse(text: &str) -> Option<Key> {
        let named = NAMED.iter().find(|(_, shown, also)| {
            shown.eq_ignore_ascii_case(text) || also.iter().any(|a| a.eq_ignore_ascii_case(text))
        });
        if let Some((key, ..)) = named {
            return Some(*key);
        }
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
        let n = lower.strip_prefix('f').and_then(|n| n.parse::<u8>().ok())?;
        (1..=12).contains(&n).then_some(Key::F(n))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_read_back_as_the_same_keys() {
        for (key, shown, also) in NAMED {
            assert_eq!(Key::parse(shown), Some(key));
            assert_eq!(Key::parse(&key.to_string()), Some(key));
            assert!(also.iter().all(|a| Key::parse(a) == Some(key)), "{shown}");
        }
        assert_eq!(Key::parse("x"), Some(Key::Char('x')));
        assert_eq!(Key::parse("ctrl-R"), Some(Key::Ctrl('r')));
        assert_eq!(Key::parse("F5"), Some(Key::F(5)));
        assert_eq!((Key::parse("F13"), Key::parse("Hyper")), (None, None));
        assert_eq!(Key::Ctrl('r').to_string(), "Ctrl-R");
    }
}
