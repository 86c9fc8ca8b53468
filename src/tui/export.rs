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

/// The time now in UTC, readable and without colons (`2026-12-07T10-31-05`), which keeps one
/// export's files apart from the next.
fn stamp() -> String {
    let seconds =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    utc_stamp(seconds)
}

/// `seconds` since 1970-01-01 UTC as `YYYY-MM-DDTHH-MM-SS` (the proleptic Gregorian calendar,
/// by Howard Hinnant's `civil_from_days`).
pub fn utc_stamp(seconds: u64) -> String {
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    // Days since 0000-03-01, so that a year's leap day comes last.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    let (hour, minute, second) = (rest / 3600, rest % 3600 / 60, rest % 60);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}-{minute:02}-{second:02}")
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

#[cfg(test)]
mod tests {
    use super::utc_stamp;

    /// Against Python's `datetime.fromtimestamp(s, timezone.utc)`: the epoch, a leap day, a
    /// day in 2026, and the last second before a century that is not a leap year.
    #[test]
    fn stamps_are_utc_without_colons() {
        assert_eq!(utc_stamp(0), "1970-01-01T00-00-00");
        assert_eq!(utc_stamp(951_782_400), "2000-02-29T00-00-00");
        assert_eq!(utc_stamp(1_796_639_465), "2026-12-07T10-31-05");
        assert_eq!(utc_stamp(4_107_542_399), "2100-02-28T23-59-59");
    }
}
