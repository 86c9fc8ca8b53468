//! Where each panel was drawn, as the last draw returned it: the loop keeps it and turns a
//! click or a turn of the wheel into an action on the panel (and list row) under the pointer.

use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Rect;

use super::app::{Action, Panel};

/// The panels of one frame: each one's area and, for a list, the row drawn at its top.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HitMap {
    boxes: Vec<(Panel, Rect, usize)>,
}

/// Rows a notch of the wheel moves, as terminals scroll.
const WHEEL_ROWS: isize = 3;

impl HitMap {
    /// Records that `panel` was drawn at `area` with list row `offset` at its top.
    pub fn add(&mut self, panel: Panel, area: Rect, offset: usize) {
        self.boxes.push((panel, area, offset));
    }

    /// Where `panel` was drawn.
    pub fn area(&self, panel: Panel) -> Option<Rect> {
        self.boxes.iter().find(|(p, ..)| *p == panel).map(|(_, r, _)| *r)
    }

    /// The panel at (x, y) and the list row there (counted from the list's first row), if on one.
    pub fn at(&self, x: u16, y: u16) -> Option<(Panel, Option<usize>)> {
        let (panel, rect, offset) = self.boxes.iter().find(|(_, r, _)| {
            x >= r.x && x < r.x.saturating_add(r.width) && y >= r.y && y < r.y.saturating_add(r.height)
        })?;
        // Inside the border: a row of the list.
        let inside = y > rect.y && y + 1 < rect.y.saturating_add(rect.height);
        Some((*panel, inside.then(|| offset + (y - rect.y - 1) as usize)))
    }

    /// A click on a panel, or a turn of the wheel (over a panel or not).
    pub fn action(&self, mouse: MouseEvent) -> Option<Action> {
        let under = self.at(mouse.column, mouse.row);
        match mouse.kind {
            MouseEventKind::Down(MouseButton::Left) => under.map(|(panel, row)| Action::Click { panel, row }),
            MouseEventKind::ScrollUp => Some(Action::Wheel { panel: under.map(|u| u.0), delta: -WHEEL_ROWS }),
            MouseEventKind::ScrollDown => {
                Some(Action::Wheel { panel: under.map(|u| u.0), delta: WHEEL_ROWS })
            }
            _ => None,
        }
    }
}
