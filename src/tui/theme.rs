//! Colours and keys: defaults, the optional config file, and NO_COLOR.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use ratatui::style::{Color, Modifier, Style};
use serde::{Deserialize, Serialize};

/// `~/.config/memscope/config.ron` (or `$XDG_CONFIG_HOME/memscope/config.ron`, or
/// `$MEMSCOPE_CONFIG`). Every field is optional.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub colors: Colors,
    pub keys: Keys,
}

/// Colour names as ratatui reads them: `red`, `lightgreen`, `#ff8800`, `208`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Colors {
    pub accent: String,
    pub positive: String,
    pub negative: String,
    pub muted: String,
}

impl Default for Colors {
    fn default() -> Self {
        Colors {
            accent: "cyan".into(),
            positive: "green".into(),
            negative: "red".into(),
            muted: "darkgray".into(),
        }
    }
}

/// Letters for the commands that have one (arrows, Tab, Enter and Esc are fixed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Keys {
    pub quit: char,
    pub help: char,
    pub export: char,
}

impl Default for Keys {
    fn default() -> Self {
        Keys { quit: 'q', help: '?', export: 'e' }
    }
}

impl Config {
    pub fn path() -> Option<PathBuf> {
        if let Some(path) = std::env::var_os("MEMSCOPE_CONFIG") {
            return Some(PathBuf::from(path));
        }
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
        Some(base.join("memscope").join("config.ron"))
    }

    /// The config file at `path` if there is one, else the defaults. A file that does not
    /// parse, or names an unknown field or colour, is an error.
    pub fn load(path: &Path) -> Result<Config> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(anyhow!("cannot read {}: {e}", path.display())),
        };
        let config: Config = ron::from_str(&text).map_err(|e| anyhow!("{}:{e}", path.display()))?;
        Theme::new(&config, false).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        let k = &config.keys;
        if k.quit == k.help || k.quit == k.export || k.help == k.export {
            bail!("{}: keys.quit, keys.help and keys.export must differ", path.display());
        }
        Ok(config)
    }
}

/// Resolved styles.
#[derive(Clone, Debug)]
pub struct Theme {
    pub color: bool,
    pub accent: Color,
    pub positive: Color,
    pub negative: Color,
    pub muted: Color,
}

fn color(name: &str, field: &str) -> Result<Color> {
    name.parse::<Color>()
        .map_err(|_| anyhow!("colors.{field} '{name}' is not a colour (e.g. red, lightgreen, #ff8800, 208)"))
}

impl Theme {
    /// `no_color` (the NO_COLOR convention) keeps every colour at the terminal's default.
    pub fn new(config: &Config, no_color: bool) -> Result<Theme> {
        let c = &config.colors;
        Ok(Theme {
            color: !no_color,
            accent: color(&c.accent, "accent")?,
            positive: color(&c.positive, "positive")?,
            negative: color(&c.negative, "negative")?,
            muted: color(&c.muted, "muted")?,
        })
    }

    fn fg(&self, c: Color) -> Style {
        if self.color { Style::default().fg(c) } else { Style::default() }
    }

    pub fn accent(&self) -> Style {
        self.fg(self.accent).add_modifier(Modifier::BOLD)
    }

    pub fn positive(&self) -> Style {
        self.fg(self.positive)
    }

    pub fn negative(&self) -> Style {
        self.fg(self.negative)
    }

    pub fn muted(&self) -> Style {
        if self.color { self.fg(self.muted) } else { Style::default().add_modifier(Modifier::DIM) }
    }

    pub fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    pub fn border(&self, focused: bool) -> Style {
        if focused { self.accent() } else { self.muted() }
    }
}
