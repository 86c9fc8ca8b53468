//! Number formats and the table and CSV writers every renderer shares.

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{Cell, CellAlignment, Table};

/// A percentage with one decimal, or "n/a" when the value does not exist.
pub fn percent(value: Option<f64>) -> String {
    match value {
        Some(v) => format!("{:.1}%", 100.0 * v),
        None => "n/a".into(),
    }
}

/// A signed change in percentage points with one decimal, or "n/a".
pub fn points(value: Option<f64>) -> String {
    match value {
        Some(v) => format!("{:+.1}", 100.0 * v),
        None => "n/a".into(),
    }
}

/// A CSV number with six decimals; empty when the value does not exist.
pub(crate) fn fixed6(value: Option<f64>) -> String {
    value.map(|v| format!("{v:.6}")).unwrap_or_default()
}

/// A borderless table with a header; columns after the first right-aligned.
pub fn table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY).set_header(header.iter().map(Cell::new));
    for row in rows {
        table.add_row(row);
    }
    for (i, column) in table.column_iter_mut().enumerate() {
        if i > 0 {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table.to_string()
}

/// CSV with a header row; fields quoted when needed.
pub fn csv(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let quote = |s: &str| {
        if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
    };
    let mut out = header.join(",");
    out.push('\n');
    for row in rows {
        out.push_str(&row.iter().map(|s| quote(s)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_format_with_one_decimal_and_a_sign_for_changes() {
        assert_eq!(percent(Some(0.2404)), "24.0%");
        assert_eq!(percent(None), "n/a");
        assert_eq!(points(Some(-0.0123)), "-1.2");
        assert_eq!(points(Some(0.0)), "+0.0");
        assert_eq!(points(None), "n/a");
        assert_eq!(fixed6(Some(1.0 / 3.0)), "0.333333");
        assert_eq!(fixed6(None), "");
    }

    #[test]
    fn csv_quotes_only_what_needs_it() {
        let text = csv(&["a", "b"], [vec!["x,y".into(), "say \"hi\"".into()], vec!["1".into(), "2".into()]]);
        assert_eq!(text, "a,b\n\"x,y\",\"say \"\"hi\"\"\"\n1,2\n");
    }

    #[test]
    fn tables_right_align_every_column_but_the_first() {
        let text = table(&["name", "n"], [vec!["a".into(), "1".into()], vec!["long".into(), "100".into()]]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.iter().any(|l| l.contains("a    ") && l.contains("   1")), "{text}");
    }
}
