//! The report's page: one self-contained HTML file (figures as inline SVG, no scripts, no
//! links out), a section per study.

use anyhow::Result;

use super::ReportData;
use super::claims;
use crate::figure::{self, Figure};
use crate::render::Provenance;

/// The sections, in order (the test checks that each is on the page).
pub const SECTIONS: [&str; 8] = [
    "Data and groups",
    "ERM accuracy per group",
    "Interventions on the critical neurons",
    "Rank histograms",
    "Sensitive layers",
    "Control: random neurons",
    "The paper's claims on this experiment",
    "Provenance",
];

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A figure as an inline `<svg>` (no XML declaration, no namespace URL: HTML needs neither).
fn inline(figure: &Figure, provenance: &Provenance) -> Result<String> {
    let svg = figure::svg(figure, Some(provenance))?;
    let start = svg.find("<svg").unwrap_or(0);
    Ok(svg[start..].replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1))
}

fn figure_block(figure: &Figure, provenance: &Provenance) -> Result<String> {
    let (title, caption) = figure.title_and_caption();
    Ok(format!(
        "<figure>{}<figcaption><b>{}</b><br>{}</figcaption></figure>\n",
        inline(figure, provenance)?,
        escape(&title),
        escape(&caption.join(" "))
    ))
}

fn percent(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{:.1}%", 100.0 * v))
}

fn signed(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{:+.1}", 100.0 * v))
}

fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let head: String = header.iter().map(|h| format!("<th>{}</th>", escape(h))).collect();
    let body: String = rows
        .iter()
        .map(|r| {
            format!("<tr>{}</tr>", r.iter().map(|c| format!("<td>{}</td>", escape(c))).collect::<String>())
        })
        .collect();
    format!("<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>\n")
}

const STYLE: &str = "body{font-family:'DejaVu Sans',sans-serif;max-width:1120px;margin:2em auto;padding:0 1em;color:#000;line-height:1.45}\
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #999;padding-bottom:.2em;margin-top:2em}\
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #999;padding:.2em .6em;text-align:right}\
td:first-child,th:first-child{text-align:left}figure{margin:1em 0}svg{max-width:100%;height:auto}\
figcaption{font-size:.9em}.holds{color:#0072B2}.does-not-hold{color:#D55E00}.cannot-say{color:#555}\
li{margin:.4em 0}.settings{color:#555;font-size:.9em}code{font-size:.9em}";

/// The page.
pub fn html(d: &ReportData) -> Result<String> {
    let p = &d.provenance;
    // The per-group columns of the intervention and control tables.
    let groups: Vec<String> = d.erm.groups.iter().map(|g| format!("G{} Δ (pp)", g.group)).collect();
    let mut out = head(d);
    out += &data_and_groups(d);
    out += &erm_accuracy(d)?;
    out += &interventions(d, &groups)?;
    out += &format!("<h2>{}</h2>\n", SECTIONS[3]);
    out += &figure_block(&Figure::Ranks(d.ranks.clone()), p)?;
    out += &format!("<h2>{}</h2>\n", SECTIONS[4]);
    out += &figure_block(&Figure::Sensitivity(d.sensitivity.clone()), p)?;
    out += &control(d, &groups);
    out += &verdicts(d);
    out += &provenance(d);
    out += "</body></html>\n";
    Ok(out)
}

/// The document's head, title and opening paragraph.
fn head(d: &ReportData) -> String {
    let p = &d.provenance;
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>memscope report: {}</title>\
         <style>{STYLE}</style></head><body>\n<h1>Spurious memorization on {}: the Stage 1 story</h1>\n\
         <p>Experiment <code>{}</code>, epoch {} on {}. Every number below comes from memscope {}; the commands \
         <code>memscope info</code>, <code>intervene</code>, <code>ranks</code>, <code>sensitivity</code> and \
         <code>control</code> with the settings in each caption give the same numbers.</p>\n",
        escape(&p.name),
        escape(&p.name),
        escape(&p.experiment),
        p.epoch,
        d.erm.split,
        escape(&p.memscope)
    )
}

/// The groups with their training share and role.
fn data_and_groups(d: &ReportData) -> String {
    let minority = claims::minority(&d.train_counts);
    let total: usize = d.train_counts.iter().sum();
    let mut out = format!("<h2>{}</h2>\n<p>Data set: {}. ", SECTIONS[0], escape(&d.dataset));
    out += &format!(
        "A group is a <b>minority</b> when it has fewer than {:.0}% of the training examples (the explorer's \
         definition too).</p>\n",
        100.0 * crate::data::MINORITY_SHARE
    );
    let rows: Vec<Vec<String>> = d
        .erm
        .groups
        .iter()
        .map(|g| {
            let train = d.train_counts.get(g.group).copied().unwrap_or(0);
            vec![
                format!("G{} {}", g.group, g.name),
                format!("{train} ({:.1}%)", 100.0 * train as f64 / total.max(1) as f64),
                g.examples.to_string(),
                if minority.get(g.group) == Some(&true) { "minority" } else { "majority" }.to_string(),
            ]
        })
        .collect();
    out += &table(&["group", "train examples", &format!("{} examples", d.erm.split), "role"], &rows);
    out
}

/// Every group's accuracy at the epoch studied, and the timeline.
fn erm_accuracy(d: &ReportData) -> Result<String> {
    let mut out = format!("<h2>{}</h2>\n", SECTIONS[1]);
    let rows: Vec<Vec<String>> = d
        .erm
        .groups
        .iter()
        .map(|g| {
            vec![
                format!("G{} {}", g.group, g.name),
                percent(g.accuracy),
                format!("{} of {}", g.correct, g.examples),
            ]
        })
        .collect();
    out += &table(&["group", "accuracy", "correct"], &rows);
    out += &format!(
        "<p>Worst group: {} ({}); mean accuracy weighted by the training group proportions: {}.</p>\n",
        d.erm.worst_group.map_or("–".into(), |g| format!("G{g}")),
        percent(d.erm.worst_group_accuracy),
        percent(d.erm.mean_accuracy_train_weighted)
    );
    out += &figure_block(&Figure::Timeline(d.timeline.clone()), &d.provenance)?;
    Ok(out)
}

/// The bars figure and its numbers.
fn interventions(d: &ReportData, groups: &[String]) -> Result<String> {
    let mut out = format!("<h2>{}</h2>\n", SECTIONS[2]);
    out += &figure_block(&Figure::Bars(d.bars.clone()), &d.provenance)?;
    let mut rows = Vec::new();
    for (i, iv) in d.bars.interventions.iter().enumerate() {
        for (j, k) in d.bars.ks.iter().enumerate() {
            if let Some(r) = d.bars.get(i, j) {
                let mut row = vec![format!("{iv}, k = {k}")];
                row.extend(r.groups.iter().map(|g| signed(g.change)));
                row.push(r.boundary_shift.as_ref().map_or("–".into(), |s| s.sentence()));
                rows.push(row);
            }
        }
    }
    let mut header = vec!["intervention"];
    header.extend(groups.iter().map(String::as_str));
    header.push("boundary-shift control");
    out += &table(&header, &rows);
    out += "<p>Boundary-shift control: the one constant added to the logit margin (with more classes, \
            to the logits) that reproduces the most of an intervention's changed predictions; \
            \"explains N of M flips\" counts the changed predictions it reproduces (means over runs).</p>\n";
    Ok(out)
}

/// The control table.
fn control(d: &ReportData, groups: &[String]) -> String {
    let mut out = format!(
        "<h2>{}</h2>\n<p>Zeroing the top neurons by {} beside as many random neurons from outside the top \
         fraction ({} draws, seed {}): signed Δ accuracy, percentage points.</p>\n",
        SECTIONS[5],
        escape(&d.control.spec.criterion.to_string()),
        d.control.spec.repeats,
        d.control.spec.seed
    );
    let mut rows = Vec::new();
    for r in &d.control.rows {
        for (which, changes) in [("critical", &r.critical), ("random", &r.control)] {
            let mut row = vec![format!("{}, {which}", claims::row_label(r))];
            row.extend(changes.iter().map(|g| signed(g.change)));
            rows.push(row);
        }
    }
    let mut header = vec!["zeroed"];
    header.extend(groups.iter().map(String::as_str));
    out += &table(&header, &rows);
    if let Some(note) = claims::repeated_rows(d) {
        out += &format!("<p>{}</p>\n", escape(&note));
    }
    out
}

/// A line per claim of the paper with its verdict.
fn verdicts(d: &ReportData) -> String {
    let mut out = format!("<h2>{}</h2>\n<ul>\n", SECTIONS[6]);
    for c in claims::assess(d) {
        let class = match c.verdict {
            claims::Verdict::Holds => "holds",
            claims::Verdict::DoesNotHold => "does-not-hold",
            claims::Verdict::CannotSay => "cannot-say",
        };
        out += &format!(
            "<li><b>{}</b> <span class=\"{class}\">[{}]</span> {} <span class=\"settings\">Settings: {}.</span></li>\n",
            escape(c.claim),
            c.verdict.word(),
            escape(&c.evidence),
            escape(&c.settings)
        );
    }
    out += "</ul>\n";
    out
}

/// What the page was computed from: the request and every checkpoint read.
fn provenance(d: &ReportData) -> String {
    let p = &d.provenance;
    let mut out = format!(
        "<h2>{}</h2>\n<p>memscope {}; experiment <code>{}</code> ({}). Request of the epoch studied: <code>{}</code>.</p>\n",
        SECTIONS[7],
        escape(&p.memscope),
        escape(&p.experiment),
        escape(&p.name),
        escape(&p.spec.to_string())
    );
    let rows: Vec<Vec<String>> =
        d.checkpoints.iter().map(|(e, f, s)| vec![e.to_string(), f.clone(), s.clone()]).collect();
    out += &table(&["epoch", "checkpoint", "sha256"], &rows);
    out
}
