//! Colours and the config file (colours, keys, the export folder, presenter mode), and
//! NO_COLOR.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

use super::keymap::{Keymap, Keys};
use memscope_core::util::fsx::{clip, read_regular};

/// `~/.config/memscope/config.ron` (or `$XDG_CONFIG_HOME/memscope/config.ron`, or
/// `$MEMSCOPE_CONFIG`). Every field is optional.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub colors: Colors,
    /// Rebindings by action name (see [`keymap::BINDINGS`](super::keymap::BINDINGS)).
    pub keys: Keys,
    /// Where `e` writes (default: the current directory); shown on screen in full.
    pub export_dir: Option<PathBuf>,
    /// High contrast for a projector: no grey text, every border and hint in the terminal's
    /// own foreground, highlights bold (also `memscope explore --presenter`).
    pub presenter: bool,
}

/// Colour names as ratatui reads them: `red`, `lightgreen`, `#ff8800`, `208`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
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

impl Config {
    /// The config file to read: the one `$MEMSCOPE_CONFIG` names (it must exist: the user
    /// asked for it), else `$XDG_CONFIG_HOME/memscope/config.ron` or
    /// `~/.config/memscope/config.ron` when present.
    pub fn locate() -> Result<Option<PathBuf>> {
        if let Some(path) = std::env::var_os("MEMSCOPE_CONFIG") {
            let path = PathBuf::from(path);
            if !path.exists() {
                bail!("MEMSCOPE_CONFIG names {}, which does not exist", path.display());
            }
            return Ok(Some(path));
        }
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
        Ok(base.map(|b| b.join("memscope").join("config.ron")).filter(|p| p.exists()))
    }

    /// The config file at `path` if there is one, else the defaults. A file that does not
    /// parse, names an unknown field, colour, action or key, or gives a key that another
    /// action already uses, is an error.
    pub fn load(path: &Path) -> Result<Config> {
        if !path.exists() {
            return Ok(Config::default());
        }
        let bytes = read_regular(path, "config file", MAX_CONFIG_BYTES)?;
        let text = String::from_utf8(bytes).map_err(|_| anyhow!("{} is not UTF-8 text", path.display()))?;
        let config: Config =
            ron::from_str(&text).map_err(|e| anyhow!("{}:{}", path.display(), clip(&e.to_string(), 200)))?;
        Theme::new(&config, false).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        config.keymap().map_err(|e| anyhow!("{}: {}", path.display(), clip(&e, 400)))?;
        Ok(config)
    }

    /// The keys in effect: the keymap's table with this config's rebindings.
    pub fn keymap(&self) -> Result<Keymap, String> {
        Keymap::new(&self.keys)
    }
}
/// A config holds a few colours and keys.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Resolved styles.
#[derive(Clone, Debug)]
pub struct Theme {
    pub color: bool,
    /// No grey: muted text in the terminal's foreground.
    pub presenter: bool,
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
            presenter: config.presenter,
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

    /// Group `g`'s label: the basic colour nearest the figures' Okabe–Ito colour of that group
    /// (`figure::style::GROUP_RGB`: blue, vermillion, bluish green, reddish purple), so G0..G3
    /// look alike on screen and in figures; groups beyond four keep the default colour.
    pub fn group(&self, g: usize) -> Style {
        match [Color::Blue, Color::Red, Color::Green, Color::Magenta].get(g) {
            Some(&c) => self.fg(c),
            None => Style::default(),
        }
    }

    pub fn muted(&self) -> Style {
        if self.presenter {
            Style::default()
        } else if self.color {
            self.fg(self.muted)
        } else {
            Style::default().add_modifier(Modifier::DIM)
        }
    }

    pub fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    pub fn border(&self, focused: bool) -> Style {
        if focused { self.accent() } else { self.muted() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_presenter_theme_has_no_grey_text() {
        let presenter = Theme::new(&Config { presenter: true, ..Config::default() }, false).unwrap();
        assert_eq!(presenter.muted(), Style::default());
        assert_eq!(presenter.border(false), Style::default());
        assert!(presenter.accent().add_modifier.contains(Modifier::BOLD));
        let normal = Theme::new(&Config::default(), false).unwrap();
        assert_eq!(normal.muted().fg, Some(Color::DarkGray));
    }

    #[test]
    fn groups_take_the_figures_colours_and_none_under_no_color() {
        let theme = Theme::new(&Config::default(), false).unwrap();
        let fg: Vec<Option<Color>> = (0..5).map(|g| theme.group(g).fg).collect();
        assert_eq!(fg, [Some(Color::Blue), Some(Color::Red), Some(Color::Green), Some(Color::Magenta), None]);
        let plain = Theme::new(&Config::default(), true).unwrap();
        assert!((0..4).all(|g| plain.group(g) == Style::default()));
    }
}
