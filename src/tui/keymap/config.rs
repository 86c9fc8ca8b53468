//! `config.ron`'s `keys`: what the file says, read as written; [`Keymap::new`](super::Keymap::new)
//! checks it against the table.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use super::key::{KEY_NAMES, Key};

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
    /// The key, or why it cannot be bound to `field`.
    pub(super) fn key(&self, field: &str) -> Result<Key, String> {
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
