//! The guided tour (`t`): the paper's Stage 1 story on the demo in nine steps, each setting
//! the form, the view, the layer and the group, running, and saying in two or three lines
//! what to look at (`n` next, `N` back, `t` ends). The numbers are on screen, from the runs;
//! the tour's words name no number it did not measure.

use super::{Action, App, Effect, Panel, View};
use crate::tui::form::{Form, Ranking, Reach};
use crate::tui::status::Status;
use crate::tui::text::pct;
use memscope_core::edit::Intervention;
use memscope_core::neurons::select::Selection;

/// The layer whose filters the demo's story uses (else: the middle layer of the model).
const DEMO_LAYER: &str = "stage2.block0.conv2";

/// The jobs a step cancels when the tour moves on (their labels, `worker::Job::label`).
const LONG_JOBS: [&str; 4] = ["sweeping epochs", "sweeping layers", "sensitive layers", "rank histograms"];

/// What a step sets in the form: the change, how neurons are ranked and how many; always
/// within the story's layer, over 10 repeats where they apply.
struct Setting {
    change: Intervention,
    ranking: Ranking,
    count: Selection,
}

const REPEATS: usize = 10;
const TOP_3: Selection = Selection::TopK(3);
const ZERO_OUT: Intervention = Intervention::ZeroOut;

const fn setting(change: Intervention, ranking: Ranking, count: Selection) -> Option<Setting> {
    Some(Setting { change, ranking, count })
}

/// A step: its title, what it sets, whether it runs, and its words.
pub struct Step {
    pub title: &'static str,
    view: View,
    /// The form the step sets, always ranking within the story's layer; `None`: the form is
    /// left as it is.
    form: Option<Setting>,
    run: bool,
    text: fn(&App) -> String,
}

pub static STEPS: [Step; 9] = [
    Step {
        title: "average vs worst group",
        view: View::Bars,
        form: None,
        run: false,
        text: |app| {
            let b = app.current_baseline();
            let worst = b.and_then(|b| b.worst_group);
            format!(
                "Groups panel (left): mean {} (weighted by training shares), but the worst group {} is at {}. \
                 Groups under 10% of training are the minority.",
                pct(b.and_then(|b| b.mean_accuracy_train_weighted)),
                worst.map(|g| format!("G{g}")).unwrap_or("?".into()),
                pct(b.and_then(|b| b.worst_group_accuracy)),
            )
        },
    },
    Step {
        title: "few filters carry a minority",
        view: View::Bars,
        form: setting(ZERO_OUT, Ranking::Gradient, TOP_3),
        run: true,
        text: |app| {
            format!(
                "Zero the 3 filters of {} with the largest gradient of G{}'s loss: watch G{} against the \
                 majority groups (caption: the numbers).",
                app.layer_name(),
                app.group,
                app.group
            )
        },
    },
    Step {
        title: "noise does not",
        view: View::Bars,
        form: setting(Intervention::Noise { sigma: 0.01 }, Ranking::Gradient, TOP_3),
        run: true,
        text: |app| {
            format!(
                "Small noise (σ 0.01, 10 runs) on the same 3 filters: compare G{}'s change with the zero-out's \
                 ({} pins a result beside the next).",
                app.group,
                app.keys.label(Action::Pin)
            )
        },
    },
    Step {
        title: "re-initialising does",
        view: View::Bars,
        form: setting(Intervention::Reinit { sigma: 0.02, uniform: false }, Ranking::Gradient, TOP_3),
        run: true,
        text: |app| {
            format!(
                "Re-initialise the same 3 filters (σ 0.02, 10 runs): what they held is gone; G{} moves as \
                 under the zero-out.",
                app.group
            )
        },
    },
    Step {
        title: "a random control",
        view: View::Bars,
        form: setting(ZERO_OUT, Ranking::RandomControl, TOP_3),
        run: true,
        text: |_| {
            "Zero 3 filters drawn at random outside the top, 10 draws: the signed mean Δ stays small; |Δ| and \
             the whiskers show how much single draws move."
                .into()
        },
    },
    Step {
        title: "rank histograms",
        view: View::Ranks,
        form: setting(ZERO_OUT, Ranking::Gradient, Selection::TopFraction(0.05)),
        run: true,
        text: |_| {
            "Do the top neurons by gradient also have large weights? Each bin counts them by magnitude \
             percentile (and back); the caption says whether they cluster."
                .into()
        },
    },
    Step {
        title: "sensitive layers (rewind)",
        view: View::Sensitivity,
        form: None,
        run: true,
        text: |app| {
            format!(
                "Each layer rewound to an earlier epoch: * marks a group moved by ≥1 point. {} in this panel \
                 changes the distance; the count row sums the sensitive layers.",
                app.keys.pair(Action::Left, Action::Right)
            )
        },
    },
    Step {
        title: "when memorization appears",
        view: View::Epochs,
        form: setting(ZERO_OUT, Ranking::Gradient, TOP_3),
        run: true,
        text: |app| {
            format!(
                "The step-2 zero-out at every epoch, ranked afresh each time: from which epoch do 3 filters of \
                 {} carry G{}?",
                app.layer_name(),
                app.group
            )
        },
    },
    Step {
        title: "which images flipped",
        view: View::Images,
        form: setting(ZERO_OUT, Ranking::Gradient, TOP_3),
        run: true,
        text: |app| {
            format!(
                "G{}'s examples under the step-2 zero-out: ✗ right before, wrong after; ✓ wrong before, right \
                 after. End of the tour: {} closes it.",
                app.group,
                app.keys.label(Action::Tour)
            )
        },
    },
];

impl App {
    /// The tour's words for the current step.
    pub fn tour_text(&self) -> Option<(usize, &'static str, String)> {
        let at = self.tour?;
        let step = STEPS.get(at)?;
        Some((at, step.title, (step.text)(self)))
    }

    /// Tour (`t`) starts the tour or ends it; tour_next and tour_back (`n`, `N`) move through it.
    pub(super) fn tour(&mut self, action: Action) -> Vec<Effect> {
        match (action, self.tour) {
            (Action::Tour, Some(_)) => self.end_tour("tour ended"),
            (Action::Tour, None) => self.tour_step(0),
            (Action::TourNext, Some(at)) if at + 1 >= STEPS.len() => self.end_tour("end of the tour"),
            (Action::TourNext, Some(at)) => self.tour_step(at + 1),
            (Action::TourPrev, Some(at)) => self.tour_step(at.saturating_sub(1)),
            _ => Vec::new(),
        }
    }

    /// Ends the tour, saying `why` and how to start it again.
    fn end_tour(&mut self, why: &str) -> Vec<Effect> {
        self.tour = None;
        self.status = Status::Note(format!("{why} · {} starts it again", self.keys.label(Action::Tour)));
        Vec::new()
    }

    /// Goes to step `at`: sets the last epoch, the story's layer and group, the form and the
    /// view, and runs.
    pub(super) fn tour_step(&mut self, at: usize) -> Vec<Effect> {
        let Some(step) = STEPS.get(at) else { return Vec::new() };
        self.tour = Some(at);
        self.help.open = false;
        self.prompt = None;
        let mut effects = Vec::new();
        // A long study of the step left behind would hold up this step's run.
        if self.running.as_ref().is_some_and(|r| LONG_JOBS.contains(&r.label)) {
            effects.push(Effect::Cancel);
        }
        effects.extend(self.select_epoch(self.epochs.len().saturating_sub(1)));
        if let Some(layer) = self.story_layer() {
            self.layer = layer;
        }
        if let Some(group) = self.story_group()
            && group != self.group
        {
            self.group = group;
            effects.push(Effect::Submit(self.prepare_job()));
        }
        if let Some(Setting { change, ranking, count }) = &step.form {
            self.form = Form {
                change: change.clone(),
                ranking: *ranking,
                reach: Reach::Layer,
                count: count.clone(),
                repeats: REPEATS,
                split: self.form.split,
                field: self.form.field,
                ..Form::default()
            };
        }
        if self.view != step.view {
            self.scroll = 0;
        }
        self.view = step.view;
        self.focus = Panel::Results;
        if step.run {
            effects.extend(self.update(Action::Run));
        }
        effects
    }

    /// The layer the story zeroes: the demo's, else the middle conv layer (no shortcut, no head).
    fn story_layer(&self) -> Option<usize> {
        if let Some(at) = self.layers.iter().position(|l| l.name == DEMO_LAYER) {
            return Some(at);
        }
        let inner: Vec<usize> =
            (0..self.layers.len()).filter(|&i| !self.layers[i].shortcut && !self.layers[i].head).collect();
        inner.get(inner.len() / 2).copied()
    }

    /// The minority group (under 10% of training) with the most training examples: in the
    /// demo G1 "0-4 on water"; else the smallest group.
    fn story_group(&self) -> Option<usize> {
        let total: usize = self.groups.iter().map(|g| g.train).sum();
        let share = crate::tui::caption::MINORITY_SHARE * total as f64;
        self.groups
            .iter()
            .filter(|g| (g.train as f64) < share)
            .max_by_key(|g| g.train)
            .or_else(|| self.groups.iter().min_by_key(|g| g.train))
            .map(|g| g.group)
    }
}
