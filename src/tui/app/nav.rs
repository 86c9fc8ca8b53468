//! Navigation: which panel has the focus, the epoch, layer and group selected on the left,
//! the view, the results' scroll, and the mouse (a click focuses a panel and picks its row;
//! the wheel moves in the panel under the pointer).

use super::{Action, App, Effect, FAR, PANELS, Panel, View};
use crate::tui::status::Status;

impl App {
    /// Tab / Shift-Tab: the next (`1`) or previous (`-1`) panel.
    pub(super) fn cycle_focus(&mut self, d: isize) -> Vec<Effect> {
        let i = PANELS.iter().position(|&p| p == self.focus).unwrap_or(0) as isize;
        self.focus = PANELS[(i + d).rem_euclid(PANELS.len() as isize) as usize];
        Vec::new()
    }

    /// ↑↓, pages, Home/End and the wheel: move in the focused panel.
    pub(super) fn move_in(&mut self, action: Action) -> Vec<Effect> {
        let delta = action.rows().unwrap_or(0);
        let step = |value: usize, len: usize| {
            if len == 0 { value } else { (value as isize + delta).clamp(0, len as isize - 1) as usize }
        };
        match self.focus {
            Panel::Epochs => return self.select_epoch(step(self.epoch, self.epochs.len())),
            Panel::Layers => {
                let shown = self.shown_layers();
                if !shown.is_empty() {
                    let at = shown.iter().position(|&l| l >= self.layer).unwrap_or(0);
                    self.layer = shown[step(at, shown.len())];
                }
            }
            Panel::Groups => return self.select_group(step(self.group, self.groups.len())),
            Panel::Form if self.view == View::Mitigation => self.mitigation.update(action, Panel::Form),
            Panel::Form => self.form.move_by(delta),
            Panel::Results if self.view == View::Mitigation && self.mitigation.lists_runs() => {
                self.mitigation.pick(delta)
            }
            // The drawing clamps the scroll to the last page.
            Panel::Results => self.scroll = (self.scroll as isize + delta).clamp(0, FAR) as usize,
        }
        Vec::new()
    }

    /// Positions in `layers` of the layers the filter leaves listed, in order.
    pub fn shown_layers(&self) -> Vec<usize> {
        let filter = self.layer_filter.to_lowercase();
        (0..self.layers.len()).filter(|&i| self.layers[i].name.to_lowercase().contains(&filter)).collect()
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

    /// Moves to group `group` and prepares its gradient.
    fn select_group(&mut self, group: usize) -> Vec<Effect> {
        if group == self.group || group >= self.groups.len() {
            return Vec::new();
        }
        self.group = group;
        vec![Effect::Submit(self.prepare_job())]
    }

    /// A number key: that view, and the study it needs if it has none of this epoch.
    pub(super) fn show(&mut self, view: View) -> Vec<Effect> {
        if view != self.view {
            self.scroll = 0;
        }
        self.view = view;
        if view == View::Mitigation {
            let train: Vec<usize> = self.groups.iter().map(|g| g.train).collect();
            self.mitigation.rescan(&self.experiment.manifest.groups, &train);
        }
        if view == View::Sensitivity && self.epoch_number() < 5 {
            self.status =
                Status::Note("sensitive layers need an epoch >= 5 (the shortest rewind is 5 epochs)".into());
        }
        self.view_job().map(Effect::Submit).into_iter().collect()
    }

    /// A click: focus the panel; on a list row, select it (an epoch or a group loads as with
    /// the arrows).
    pub(super) fn click(&mut self, panel: Panel, row: Option<usize>) -> Vec<Effect> {
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
            Panel::Groups => self.select_group(row),
            Panel::Form | Panel::Results => Vec::new(),
        }
    }
}
