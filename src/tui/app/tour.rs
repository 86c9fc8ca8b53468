//! The guided tour (`t`): the paper's Stage 1 story on the demo in nine steps, each setting
//! the form, the view, the layer and the group, running, and saying in two or three lines
//! what to look at (`n` next, `N` back, `t` ends). The numbers are on screen, from the runs;
//! the tour's words name no number it did not measure.

use super::{Action, App, Effect, Panel, View};
use crate::tui::form::{Form, Ranking, Reach};
use crate::tui::status::Status;
use crate::tui::text::pct;
use memscope_core::edit::Intervention;
use memscope_core::model::LayerKind;
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
            let row = app.epochs.get(app.epoch);
            let worst = app.current_baseline().and_then(|b| b.worst_group);
            format!(
                "Epoch panel (top left), last row: val mean {} (weighted by training shares), worst {}: \
                 group {} in the Groups panel. Groups under 10% of training are the minority.",
                pct(row.and_then(|r| r.val_mean)),
                pct(row.and_then(|r| r.val_worst)),
                worst.map(|g| format!("G{g}")).unwrap_or("?".into()),
            )
        },
    },
    Step {
        title: "few neurons carry a minority",
        view: View::Bars,
        form: setting(ZERO_OUT, Ranking::Gradient, TOP_3),
        run: true,
        text: |app| {
            let mut text = format!(
                "Zero the 3 {} of {} with the largest gradient of G{}'s loss: G{} against the majority \
                 (caption).",
                app.unit_word(),
                app.layer_name(),
                app.group,
                app.group,
            );
            if let Some(sentence) = boundary_shift_sentence(app) {
                text.push(' ');
                text.push_str(&sentence);
            }
            text.push_str(&format!(" {} pins it for step 3.", app.keys.label(Action::Pin)));
            text.push_str(&nothing_moved(app));
            text
        },
    },
    Step {
        title: "noise does not",
        view: View::Bars,
        form: setting(Intervention::Noise { sigma: 0.01 }, Ranking::Gradient, TOP_3),
        run: true,
        text: |app| {
            let against = match &app.bars.pinned {
                Some(_) => "the pin Δ column (the zero-out)".to_string(),
                None => format!(
                    "the zero-out's ({} back, {} pins it, {})",
                    app.keys.label(Action::TourPrev),
                    app.keys.label(Action::Pin),
                    app.keys.label(Action::TourNext)
                ),
            };
            let units = app.unit_word();
            let text = format!(
                "Small noise (σ 0.01, 10 runs) on the same 3 {units}: G{}'s Δ against {against}.",
                app.group
            );
            text + &nothing_moved(app)
        },
    },
    Step {
        title: "re-initialising does",
        view: View::Bars,
        form: setting(Intervention::Reinit { sigma: 0.02, uniform: false }, Ranking::Gradient, TOP_3),
        run: true,
        text: |app| {
            let text = format!(
                "Re-initialise the same 3 {} (σ 0.02, 10 runs): what they held is gone; G{} moves as \
                 under the zero-out.",
                app.unit_word(),
                app.group
            );
            text + &nothing_moved(app)
        },
    },
    Step {
        title: "a random control",
        view: View::Bars,
        form: setting(ZERO_OUT, Ranking::RandomControl, TOP_3),
        run: true,
        text: |app| {
            let text = format!(
                "Zero 3 {} drawn at random outside the top, 10 draws: the signed mean Δ stays small; |Δ| and \
                 the whiskers show how much single draws move.",
                app.unit_word()
            );
            text + &nothing_moved(app)
        },
    },
    Step {
        title: "rank histograms",
        view: View::Ranks,
        form: setting(ZERO_OUT, Ranking::Gradient, Selection::TopFraction(0.05)),
        run: true,
        text: |_| {
            "Do the top neurons by gradient also have large weights? Each histogram bins them by the other \
             score's percentile; \"top 5%\" counts those in its top 5% (uniform ranks: 5%)."
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
                "The step-2 zero-out at every epoch, ranked afresh each time: from which epoch do 3 {} of \
                 {} carry G{}?",
                app.unit_word(),
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

/// Step 2's sentence on the boundary-shift control (how many of the zero-out's flips one
/// constant shift of the logit margin explains), once the result carries that number.
/// `None` without a current result: the tour names no number it did not measure.
fn boundary_shift_sentence(app: &App) -> Option<String> {
    let r = app.bars.result.as_ref().filter(|_| !app.result_stale())?;
    let shift = r.boundary_shift.as_ref().filter(|s| s.mean_flips > 0.0)?;
    let train: Vec<usize> = app.groups.iter().map(|g| g.train).collect();
    let minority = memscope_core::data::minority(&train);
    // The other minority group that rose the most, if one rose.
    let risen = r
        .groups
        .iter()
        .filter(|g| g.group != app.group && minority.get(g.group) == Some(&true))
        .filter(|g| g.change.is_some_and(|c| c > 0.0))
        .max_by(|a, b| a.change.partial_cmp(&b.change).unwrap_or(std::cmp::Ordering::Equal));
    let why = match risen {
        Some(g) => format!("G{} rises as G{} falls: ", g.group, app.group),
        None => String::new(),
    };
    let share = shift.mean_explained / shift.mean_flips;
    let reading = match share {
        s if s >= 0.5 => "most of it is the class boundary moving",
        s if s > 0.0 => "only part of it is the boundary moving",
        _ => "it is not the boundary moving",
    };
    Some(format!(
        "{why}one shift of every margin explains {} of the {} flips, so {reading}.",
        memscope_core::studies::shift::count(shift.mean_explained),
        memscope_core::studies::shift::count(shift.mean_flips),
    ))
}

/// When the result on screen is this step's and no group moved at all: says so, for a model
/// (the ViT demo) in which these neurons hold nothing the test can find. Else empty.
fn nothing_moved(app: &App) -> String {
    let Some(r) = app.bars.result.as_ref().filter(|_| !app.result_stale()) else { return String::new() };
    let still = !r.groups.is_empty() && r.groups.iter().all(|g| g.abs_change.or(g.change) == Some(0.0));
    match still {
        true => format!(" Every Δ is 0: the model memorized nothing in these {}.", app.unit_word()),
        false => String::new(),
    }
}

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

    /// What the story's layer calls its neurons: a conv's are filters, a linear layer's units.
    pub fn unit_word(&self) -> &'static str {
        match self.layers.get(self.layer).map(|l| l.kind) {
            Some(LayerKind::Conv) => "filters",
            _ => "units",
        }
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
