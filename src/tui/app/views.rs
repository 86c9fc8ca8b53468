//! Each view's own state: the results it shows and the few keys only it answers. The
//! Mitigation view's, larger, is in [`crate::tui::mitigation`].

use super::{Action, FAR};
use crate::tui::status::Status;
use memscope_core::studies::epochs::{EpochSeries, EpochSeriesSpec};
use memscope_core::studies::flips::{Flips, FlipsSpec};
use memscope_core::studies::intervention::{InterventionResult, InterventionSpec};
use memscope_core::studies::ranks::{RankSpec, RankStudy};
use memscope_core::studies::sensitivity::SensitivityStudy;
use memscope_core::studies::sweep::{Sweep, SweepSpec};

/// Runs kept in the history.
pub const HISTORY: usize = 12;

/// The bar scales `b` steps through, in points (half a bar's width); `None`: the smallest of
/// 2, 5, 10, 25, 50, 100 that fits the result (bars of different runs then differ in scale).
pub const BAR_SCALES: [Option<f64>; 7] =
    [Some(100.0), Some(50.0), Some(25.0), Some(10.0), Some(5.0), Some(2.0), None];

/// The interventions run: the Bars view, and the Neurons and History views of the same runs.
#[derive(Debug, Default)]
pub struct BarsState {
    pub result: Option<InterventionResult>,
    /// Most recent first.
    pub history: Vec<InterventionResult>,
    /// A result pinned with `p`, drawn beside the current one.
    pub pinned: Option<InterventionResult>,
    /// Position in [`BAR_SCALES`]: ±100 points unless changed, the same for every run.
    pub scale: usize,
}

impl BarsState {
    /// `b` steps the scale, `p` pins or unpins; returns what the status line should say.
    pub fn update(&mut self, action: Action) -> Option<Status> {
        match action {
            Action::Scale => self.scale = (self.scale + 1) % BAR_SCALES.len(),
            Action::Pin => {
                self.pinned = match (&self.pinned, &self.result) {
                    (Some(p), Some(r)) if p == r => None,
                    (_, Some(r)) => Some(r.clone()),
                    (_, None) => {
                        return Some(Status::Note("nothing to pin yet: run an intervention first".into()));
                    }
                };
            }
            _ => {}
        }
        None
    }

    /// A run finished: shown, and first in the history.
    pub fn finished(&mut self, result: InterventionResult) {
        self.history.insert(0, result.clone());
        self.history.truncate(HISTORY);
        self.result = Some(result);
    }

    /// Whether the result shown was run with other settings than `now`.
    pub fn stale(&self, now: &InterventionSpec) -> bool {
        self.result.as_ref().is_some_and(|r| r.spec != *now)
    }
}

/// The Ranks view: rank histograms of the form's top neurons.
#[derive(Debug, Default)]
pub struct RanksState {
    pub study: Option<RankStudy>,
}

impl RanksState {
    /// Whether the histograms shown were made with other settings than `now`.
    pub fn stale(&self, now: &RankSpec) -> bool {
        self.study.as_ref().is_some_and(|r| r.spec != *now)
    }

    pub fn current(&self, now: &RankSpec) -> bool {
        self.study.as_ref().is_some_and(|r| r.spec == *now)
    }
}

/// The Sensitivity view: every layer rewound, and which distance is shown.
#[derive(Debug, Default)]
pub struct SensitivityState {
    pub study: Option<SensitivityStudy>,
    /// Position of the shown distance in the study's `epochs_back`.
    pub distance: usize,
}

impl SensitivityState {
    /// ←→ in the results: the next or previous distance, clamped.
    pub fn update(&mut self, action: Action) {
        let n = self.study.as_ref().map(|s| s.spec.epochs_back.len()).unwrap_or(0);
        if let (Some(d), true) = (action.step(), n > 0) {
            self.distance = (self.distance as isize + d).clamp(0, n as isize - 1) as usize;
        }
    }

    pub fn finished(&mut self, study: SensitivityStudy) {
        self.distance = self.distance.min(study.spec.epochs_back.len().saturating_sub(1));
        self.study = Some(study);
    }
}

/// The Sweep view: the form's intervention within each layer.
#[derive(Debug, Default)]
pub struct SweepState {
    pub sweep: Option<Sweep>,
}

impl SweepState {
    /// Whether the sweep shown was run with other settings than `now` (the layer selected on
    /// the left does not matter to a sweep).
    pub fn stale(&self, now: &SweepSpec) -> bool {
        self.sweep.as_ref().is_some_and(|s| {
            s.spec.random_control != now.random_control
                || s.spec.layers.first().is_some_and(|l| s.spec.at(l) != now.at(l))
        })
    }
}

/// The Epochs view: the form's intervention at every epoch.
#[derive(Debug, Default)]
pub struct EpochsState {
    pub series: Option<EpochSeries>,
}

impl EpochsState {
    /// Whether the series shown was run with other settings than `now` (the epoch selected on
    /// the left does not matter to a series).
    pub fn stale(&self, now: &EpochSeriesSpec) -> bool {
        self.series.as_ref().is_some_and(|s| s.spec.at(0) != now.at(0))
    }
}

/// The Images view: the examples of a group an intervention flipped.
#[derive(Debug, Default)]
pub struct ImagesState {
    pub flips: Option<Flips>,
}

impl ImagesState {
    pub fn stale(&self, now: &FlipsSpec) -> bool {
        self.flips.as_ref().is_some_and(|f| f.spec != *now)
    }
}

/// The help overlay: open or not, and how far it is scrolled.
#[derive(Debug, Default)]
pub struct HelpState {
    pub open: bool,
    /// Rows scrolled where it does not fit.
    pub scroll: usize,
}

impl HelpState {
    /// ↑↓ PgUp PgDn and the wheel scroll the help where it does not fit; any other key
    /// closes it.
    pub fn update(&mut self, action: Action) {
        let delta = match action {
            Action::Wheel { delta, .. } => delta.signum(),
            Action::Up | Action::Down | Action::PageUp | Action::PageDown => action.rows().unwrap_or(0),
            _ => 0,
        };
        if delta == 0 {
            *self = HelpState::default();
        } else {
            self.scroll = (self.scroll as isize + delta).clamp(0, FAR) as usize;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_scrolls_with_the_moving_keys_and_closes_on_any_other() {
        let mut help = HelpState { open: true, scroll: 0 };
        help.update(Action::PageDown);
        help.update(Action::Up);
        help.update(Action::Wheel { panel: None, delta: 3 });
        assert_eq!((help.open, help.scroll), (true, super::super::PAGE as usize));
        help.update(Action::Right);
        assert_eq!((help.open, help.scroll), (false, 0));
    }

    #[test]
    fn the_bar_scale_cycles_back_to_100() {
        let mut bars = BarsState::default();
        for _ in 0..BAR_SCALES.len() {
            assert_eq!(bars.update(Action::Scale), None);
        }
        assert_eq!(bars.scale, 0);
        assert!(matches!(bars.update(Action::Pin), Some(Status::Note(_))), "nothing to pin");
    }
}
