//! The explorer's `e`: the current view's result as JSON (with provenance) and CSV, through
//! the same renderers as the CLI, and as an SVG figure where the view has one; and `r`'s
//! report, the page `memscope report` writes.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::app::{Action, App, View};
use memscope_core::figure::{self, Figure};
use memscope_core::render::{self, Format, History, Provenance, Render};
use memscope_core::report::claims::{Verdict, assess};
use memscope_core::report::{ReportData, html};
use memscope_core::studies::grid::InterventionGrid;
use memscope_core::util::fsx::write_atomic;

/// Writes the current view's result (History: every run in it) into `dir` as JSON (with
/// provenance) and as CSV, through the same renderers as the CLI, and the view's figure as SVG
/// (the bars of an intervention, the rank histograms, the sensitive layers, the sweep's grid; not
/// the history or the mitigation comparison); returns the files' common path without extension.
pub fn export(app: &App, dir: &Path) -> Result<PathBuf> {
    let stamp = stamp();
    create(dir)?;
    let stem = |what: &str| dir.join(format!("memscope-{what}-epoch{}-{stamp}", app.epoch_number()));
    match app.view {
        View::Ranks => match &app.ranks.study {
            Some(study) => write_both(study, &stem("ranks"), app, study.spec.epoch, &study.spec, || {
                Some(Figure::Ranks(study.clone()))
            }),
            None => bail!("nothing to export yet: run something first"),
        },
        View::Sensitivity => match &app.sensitivity.study {
            Some(study) => {
                write_both(study, &stem("sensitivity"), app, study.spec.epoch, &study.spec, || {
                    Some(Figure::Sensitivity(study.clone()))
                })
            }
            None => bail!("nothing to export yet: run something first"),
        },
        View::History if !app.bars.history.is_empty() => {
            let history = History { runs: app.bars.history.clone() };
            let specs: Vec<_> = app.bars.history.iter().map(|r| &r.spec).collect();
            write_both(&history, &stem("history"), app, app.epoch_number(), &specs, || None)
        }
        View::Sweep => match &app.sweep.sweep {
            Some(sweep) => write_both(sweep, &stem("sweep"), app, sweep.spec.base.epoch, &sweep.spec, || {
                Some(Figure::Sweep(sweep.clone()))
            }),
            None => bail!("nothing to export yet: run a sweep first"),
        },
        View::Epochs => match &app.series.series {
            Some(series) => {
                let epoch = series.spec.base.epoch;
                write_both(series, &stem("epochs"), app, epoch, &series.spec, || {
                    Some(Figure::Epochs(series.clone()))
                })
            }
            None => bail!("nothing to export yet: run an epoch series first"),
        },
        View::Images => match &app.images.flips {
            Some(flips) => {
                let epoch = flips.spec.intervention.epoch;
                write_both(flips, &stem("flips"), app, epoch, &flips.spec, || None)
            }
            None => {
                bail!("nothing to export yet: press {} in the Images view first", app.keys.label(Action::Run))
            }
        },
        View::Mitigation => match &app.mitigation.comparison {
            Some(comparison) => {
                let compared: Vec<String> = app
                    .mitigation
                    .compared
                    .iter()
                    .take(comparison.experiments.len())
                    .map(|c| c.dir.display().to_string())
                    .collect();
                write_both(comparison, &stem("compare"), app, app.epoch_number(), &compared, || None)
            }
            None => bail!("nothing to export yet: a finished mitigation run is compared first"),
        },
        _ => match &app.bars.result {
            Some(result) => {
                write_both(result, &stem("intervention"), app, result.spec.epoch, &result.spec, || {
                    Some(Figure::Bars(InterventionGrid::single(result.clone())))
                })
            }
            None => bail!("nothing to export yet: run something first"),
        },
    }
}

/// Writes `report` into `dir` as `memscope report` would with `--json`: the page
/// and its numbers; returns the page's path.
pub fn report(report: &ReportData, dir: &Path) -> Result<PathBuf> {
    create(dir)?;
    let page = dir.join(format!("memscope-report-epoch{}-{}.html", report.provenance.epoch, stamp()));
    let json = serde_json::to_string_pretty(report).context("cannot serialise the report's numbers")?;
    write_atomic(&page.with_extension("json"), (json + "\n").as_bytes())?;
    write_atomic(&page, html(report)?.as_bytes())?;
    Ok(page)
}

/// How many of the paper's claims hold on `report`'s numbers, do not, and cannot be judged.
pub fn verdicts(report: &ReportData) -> [usize; 3] {
    let claims = assess(report);
    [Verdict::Holds, Verdict::DoesNotHold, Verdict::CannotSay]
        .map(|v| claims.iter().filter(|c| c.verdict == v).count())
}

/// Seconds since 1970, which keeps one export's files apart from the next.
fn stamp() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn create(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create the export folder {}", dir.display()))
}

fn write_both<R: Render>(
    result: &R,
    stem: &Path,
    app: &App,
    epoch: usize,
    spec: &impl serde::Serialize,
    figure: impl FnOnce() -> Option<Figure>,
) -> Result<PathBuf> {
    let provenance = Provenance::new(&app.experiment, &app.data_changes, epoch, spec)?;
    for format in [Format::Json, Format::Csv] {
        let path = stem.with_extension(format.extension());
        write_atomic(&path, render::render(result, format, &provenance)?.as_bytes())?;
    }
    if let Some(figure) = figure() {
        write_atomic(&stem.with_extension("svg"), figure::svg(&figure, Some(&provenance))?.as_bytes())?;
    }
    Ok(stem.to_path_buf())
}
