//! Reading metadata tables with one-line errors that name the file, the line and the field.

use std::io::Cursor;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use csv::StringRecord;

use crate::data::Split;

/// A CSV file with a header row. Fields are trimmed; a UTF-8 byte-order mark is accepted.
pub(crate) struct Table {
    pub file: PathBuf,
    headers: Vec<String>,
    reader: csv::Reader<Cursor<Arc<[u8]>>>,
    lines: LineCounter,
}

impl Table {
    pub(crate) fn open(file: &Path) -> Result<Table> {
        let bytes: Arc<[u8]> =
            std::fs::read(file).with_context(|| format!("cannot open {}", file.display()))?.into();
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .flexible(true)
            .from_reader(Cursor::new(Arc::clone(&bytes)));
        let headers = reader
            .headers()
            .with_context(|| format!("{}: cannot read the header row", file.display()))?
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').trim().to_string())
            .collect();
        Ok(Table { file: file.to_path_buf(), headers, reader, lines: LineCounter::new(bytes) })
    }

    /// The index of a required column.
    pub(crate) fn column(&self, name: &str) -> Result<usize> {
        self.optional_column(name).ok_or_else(|| {
            anyhow!("{}: missing column '{name}' (columns: {})", self.file.display(), self.headers.join(", "))
        })
    }

    pub(crate) fn optional_column(&self, name: &str) -> Option<usize> {
        self.headers.iter().position(|h| h == name)
    }

    /// The data rows, each with its line number in the file as an editor shows it (the header
    /// is line 1).
    pub(crate) fn rows(&mut self) -> impl Iterator<Item = Result<Row>> + '_ {
        let file = self.file.clone();
        let lines = &mut self.lines;
        self.reader.records().map(move |r| match r {
            Ok(record) => {
                let line = record.position().map_or(0, |p| lines.line_at(p.byte() as usize));
                Ok(Row { file: file.clone(), line, record })
            }
            Err(e) => Err(match (e.kind(), e.position()) {
                (csv::ErrorKind::Utf8 { err, .. }, Some(p)) => {
                    anyhow!("{} line {}: {err}", file.display(), lines.line_at(p.byte() as usize))
                }
                _ => anyhow!("{}: {e}", file.display()),
            }),
        })
    }
}

/// Line numbers as an editor counts them, for records met in file order. The csv crate's own
/// count takes only `\n` as a line end and counts a `\r\n` with the record after it (and a
/// blank line with the record after it), so a Windows file's rows were one line short.
struct LineCounter {
    text: Arc<[u8]>,
    /// The line of byte `at`, which starts a record (or the file).
    at: usize,
    line: usize,
}

impl LineCounter {
    fn new(text: Arc<[u8]>) -> LineCounter {
        LineCounter { text, at: 0, line: 1 }
    }

    /// The line of the record whose reading began at `byte` (the end of the one before it):
    /// the line of its first byte past any line ends and blank lines. `\r\n`, `\n` and a lone
    /// `\r` each end a line. Records come in file order.
    fn line_at(&mut self, byte: usize) -> usize {
        let is_end = |b: &u8| *b == b'\n' || *b == b'\r';
        let start =
            byte + self.text.get(byte..).map_or(0, |rest| rest.iter().take_while(|b| is_end(b)).count());
        if start < self.at {
            return self.line;
        }
        let span = &self.text[self.at..start.min(self.text.len())];
        let ends = span
            .iter()
            .enumerate()
            .filter(|&(i, &b)| b == b'\n' || b == b'\r' && span.get(i + 1) != Some(&b'\n'))
            .count();
        self.line += ends;
        self.at = start;
        self.line
    }
}

/// One data row of a table, for field access with errors that point at it.
pub(crate) struct Row {
    pub file: PathBuf,
    pub line: usize,
    pub record: StringRecord,
}

impl Row {
    /// A one-line error about this row.
    pub(crate) fn error(&self, message: impl std::fmt::Display) -> anyhow::Error {
        anyhow!("{} line {}: {message}", self.file.display(), self.line)
    }

    pub(crate) fn get(&self, column: usize, name: &str) -> Result<&str> {
        match self.record.get(column) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(self.error(format_args!("field '{name}' is empty or missing"))),
        }
    }

    /// An integer field.
    pub(crate) fn int(&self, column: usize, name: &str) -> Result<i64> {
        let v = self.get(column, name)?;
        v.parse().map_err(|_| self.error(format_args!("field '{name}' is '{v}', not an integer")))
    }

    /// An integer field that must lie in `0..n`; `what` names the values for the message.
    pub(crate) fn index(&self, column: usize, name: &str, n: usize, what: &str) -> Result<usize> {
        let v = self.int(column, name)?;
        if v < 0 || v as usize >= n {
            return Err(self.error(format_args!("{name} {v} is outside {what}")));
        }
        Ok(v as usize)
    }

    /// A split given as 0/1/2 (Waterbirds, CelebA) or train/val/test.
    pub(crate) fn split(&self, column: usize, name: &str) -> Result<Split> {
        let v = self.get(column, name)?;
        parse_split(v).ok_or_else(|| {
            self.error(format_args!("unknown split '{v}' (expected 0, 1, 2, train, val or test)"))
        })
    }

    /// A path relative to the data root that stays inside it.
    pub(crate) fn relative_path(&self, column: usize, name: &str) -> Result<PathBuf> {
        let v = self.get(column, name)?;
        inside_root(v).map_err(|why| self.error(format_args!("path '{v}' {why}")))
    }
}

pub(crate) fn parse_split(v: &str) -> Option<Split> {
    match v {
        "0" => Some(Split::Train),
        "1" => Some(Split::Val),
        "2" => Some(Split::Test),
        other => other.parse().ok(),
    }
}

/// `v` as a relative path without `..`, so it cannot leave the data root (checked on the
/// text; a symbolic link inside the root is followed like any file).
pub(crate) fn inside_root(v: &str) -> std::result::Result<PathBuf, &'static str> {
    let path = PathBuf::from(v);
    for c in path.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Err("escapes the data root (contains '..')"),
            Component::RootDir | Component::Prefix(_) => {
                return Err("is absolute; paths must be relative to the data root");
            }
        }
    }
    Ok(path)
}

/// Splits a whitespace-separated text line (CelebA's original `.txt` lists).
pub(crate) fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// Fails on the first row whose image file is missing under `root`.
pub(crate) fn check_files<'a>(
    root: &Path,
    source: &Path,
    files: impl Iterator<Item = (&'a Path, usize)>,
) -> Result<()> {
    for (path, line) in files {
        if !root.join(path).is_file() {
            bail!(
                "{} line {line}: image {} not found under {} (--skip-bad-images leaves missing and \
                 corrupt images out)",
                source.display(),
                path.display(),
                root.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (line, first field) of every row of `text`, or the first error.
    fn lines_of(text: &[u8]) -> Result<Vec<(usize, String)>> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("t.csv");
        std::fs::write(&file, text)?;
        let mut table = Table::open(&file)?;
        table.rows().map(|r| r.map(|row| (row.line, row.record[0].to_string()))).collect()
    }

    #[test]
    fn rows_are_numbered_as_an_editor_numbers_lines() {
        let want = vec![(2, "a".to_string()), (5, "b".to_string()), (6, "c".to_string())];
        for end in ["\n", "\r\n", "\r"] {
            // A field spanning two lines, then a blank line, before b.
            let text = ["h,k", "a,\"1", "2\"", "", "b,3", "c,4", ""].join(end);
            assert_eq!(lines_of(text.as_bytes()).unwrap(), want, "{end:?}");
        }
        let e = lines_of(b"h,k\r\na,1\r\n\r\nb,\xff\r\n").unwrap_err().to_string();
        assert!(e.contains("t.csv line 4: invalid utf-8"), "{e}");
    }
}
