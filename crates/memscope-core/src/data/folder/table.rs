//! Reading metadata tables with one-line errors that name the file, the line and the field.

use std::fs::File;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use csv::StringRecord;

use crate::data::Split;

/// A CSV file with a header row. Fields are trimmed; a UTF-8 byte-order mark is accepted.
pub(crate) struct Table {
    pub file: PathBuf,
    headers: Vec<String>,
    reader: csv::Reader<File>,
}

impl Table {
    pub(crate) fn open(file: &Path) -> Result<Table> {
        let handle = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).flexible(true).from_reader(handle);
        let headers = reader
            .headers()
            .with_context(|| format!("{}: cannot read the header row", file.display()))?
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').trim().to_string())
            .collect();
        Ok(Table { file: file.to_path_buf(), headers, reader })
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

    /// The data rows, each with its line number in the file (the header is line 1).
    pub(crate) fn rows(&mut self) -> impl Iterator<Item = Result<Row>> + '_ {
        let file = self.file.clone();
        self.reader.records().map(move |r| {
            let record = r.map_err(|e| anyhow!("{}: {e}", file.display()))?;
            let line = record.position().map_or(0, |p| p.line() as usize);
            Ok(Row { file: file.clone(), line, record })
        })
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
