//! The generic manifest `csv:FILE` for any grouped image data:
//!
//! ```text
//! path,label,group,split,group_name,class_name
//! images/a.jpg,0,0,train,cat indoors,cat
//! ```
//!
//! `path`, `label` and `group` are required; paths are relative to the manifest's folder.
//! Labels and groups are integers from 0; the classes are 0..=max label and the groups
//! 0..=max group, each of which must occur (a label past a gap is outside the classes).
//! `split` (0/1/2 or train/val/test) is optional: without it each group's rows are split by
//! order, 3 of every 5 to train, then 1 to val and 1 to test. `group_name` and `class_name`
//! are optional and must agree on every row of the group or class.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Result, bail};

use super::table::{Row, Table};
use super::{Entry, Manifest, parent_of, split_index};
use crate::data::Split;

/// Reads a manifest file.
pub(crate) fn read(file: &Path) -> Result<Manifest> {
    let mut table = Table::open(file)?;
    let path_col = table.column("path")?;
    let label_col = table.column("label")?;
    let group_col = table.column("group")?;
    let split_col = table.optional_column("split");
    let group_name_col = table.optional_column("group_name");
    let class_name_col = table.optional_column("class_name");
    let mut rows = Vec::new();
    let mut group_names = BTreeMap::new();
    let mut class_names = BTreeMap::new();
    for row in table.rows() {
        let row = row?;
        let path = row.relative_path(path_col, "path")?;
        let label = row.index(label_col, "label", usize::MAX >> 1, "the classes (labels start at 0)")?;
        let group = row.index(group_col, "group", usize::MAX >> 1, "the groups (groups start at 0)")?;
        let split = split_col.map(|c| row.split(c, "split")).transpose()?;
        name_of(&row, group_name_col, "group_name", group, &mut group_names)?;
        name_of(&row, class_name_col, "class_name", label, &mut class_names)?;
        rows.push((Entry { path, label, group, line: row.line }, split));
    }
    let n_classes = count(file, "label", rows.iter().map(|(e, _)| (e.label, e.line)))?;
    let n_groups = count(file, "group", rows.iter().map(|(e, _)| (e.group, e.line)))?;
    let mut splits: [Vec<Entry>; 3] = Default::default();
    let mut seen_in_group = vec![0usize; n_groups];
    for (entry, split) in rows {
        let split = split.unwrap_or_else(|| {
            let k = seen_in_group[entry.group];
            seen_in_group[entry.group] += 1;
            match k % 5 {
                0..=2 => Split::Train,
                3 => Split::Val,
                _ => Split::Test,
            }
        });
        splits[split_index(split)].push(entry);
    }
    let names = |map: &BTreeMap<usize, String>, n: usize, prefix: &str| -> Vec<String> {
        (0..n).map(|i| map.get(&i).cloned().unwrap_or_else(|| format!("{prefix}{i}"))).collect()
    };
    let name = file.file_stem().map_or("csv".into(), |s| s.to_string_lossy().into_owned());
    Ok(Manifest {
        name,
        root: parent_of(file),
        source: file.to_path_buf(),
        class_names: names(&class_names, n_classes, "class "),
        group_names: names(&group_names, n_groups, "G"),
        splits,
    })
}

/// Records the name column's value for `id`, failing when rows disagree.
fn name_of(
    row: &Row,
    column: Option<usize>,
    field: &str,
    id: usize,
    names: &mut BTreeMap<usize, String>,
) -> Result<()> {
    let Some(c) = column else { return Ok(()) };
    let Some(name) = row.record.get(c).filter(|v| !v.is_empty()) else { return Ok(()) };
    match names.get(&id) {
        Some(known) if known != name => {
            Err(row.error(format_args!("{field} '{name}' differs from '{known}' given earlier for {id}")))
        }
        Some(_) => Ok(()),
        None => {
            names.insert(id, name.to_string());
            Ok(())
        }
    }
}

/// The number of ids 0..=max, failing when one below the maximum never occurs.
fn count(file: &Path, field: &str, ids: impl Iterator<Item = (usize, usize)>) -> Result<usize> {
    let mut first_line: BTreeMap<usize, usize> = BTreeMap::new();
    for (id, line) in ids {
        first_line.entry(id).or_insert(line);
    }
    let Some((&max, &line)) = first_line.iter().next_back() else {
        bail!("{}: no rows", file.display());
    };
    if let Some(missing) = (0..max).find(|i| !first_line.contains_key(i)) {
        bail!(
            "{} line {line}: {field} {max} is outside the {field}s: no row has {field} {missing}, so they are not numbered 0..n-1",
            file.display()
        );
    }
    Ok(max + 1)
}
