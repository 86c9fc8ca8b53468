//! CelebA: `img_align_celeba/` + `list_attr_celeba.csv` (or the original `.txt`) +
//! `list_eval_partition.csv` (or `.txt`), as group_DRO, JTT and WILDS read it; or the
//! Waterbirds-style `metadata.csv` of DFR and the authors' code.
//!
//! Label = the target attribute, spurious attribute = another column (default Blond_Hair x
//! Male, the paper's); attributes are -1/1 (0/1 accepted); group = 2 * target + spurious.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use super::table::{Table, inside_root, parse_split, words};
use super::{Entry, Manifest, split_index, waterbirds};
use crate::data::Split;

/// The target and spurious attributes, by column name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CelebaAttributes {
    pub target: String,
    pub spurious: String,
}

impl Default for CelebaAttributes {
    fn default() -> Self {
        CelebaAttributes { target: "Blond_Hair".into(), spurious: "Male".into() }
    }
}

impl CelebaAttributes {
    fn names(&self) -> (Vec<String>, Vec<String>) {
        if *self == CelebaAttributes::default() {
            let groups = ["non-blond female", "non-blond male", "blond female", "blond male"];
            return (vec!["non-blond".into(), "blond".into()], groups.map(String::from).to_vec());
        }
        let (t, s) = (&self.target, &self.spurious);
        let classes = vec![format!("not {t}"), t.clone()];
        let groups = [(false, false), (false, true), (true, false), (true, true)]
            .map(|(a, b)| format!("{}{t}, {}{s}", if a { "" } else { "not " }, if b { "" } else { "not " }));
        (classes, groups.to_vec())
    }
}

const IMAGES: &str = "img_align_celeba";

/// Reads a CelebA folder in either layout.
pub(crate) fn read(dir: &Path, attributes: &CelebaAttributes) -> Result<Manifest> {
    let attr_file = first_existing(dir, "list_attr_celeba");
    if attr_file.is_none() && dir.join("metadata.csv").is_file() {
        if *attributes != CelebaAttributes::default() {
            bail!(
                "{}: a Waterbirds-style metadata.csv fixes the attributes to Blond_Hair x Male",
                dir.display()
            );
        }
        let (classes, groups) = attributes.names();
        let mut m = waterbirds::read_metadata(
            dir,
            "celeba",
            ["y (Blond_Hair)", "place (Male)"],
            [&classes[0], &classes[1]],
            [&groups[0], &groups[1], &groups[2], &groups[3]],
        )?;
        // DFR's file names images relative to img_align_celeba/; accept both.
        for e in m.splits.iter_mut().flatten() {
            if !dir.join(&e.path).is_file() && dir.join(IMAGES).join(&e.path).is_file() {
                e.path = Path::new(IMAGES).join(&e.path);
            }
        }
        return Ok(m);
    }
    let attr_file = attr_file.ok_or_else(|| {
        anyhow!("{}: no list_attr_celeba.csv, list_attr_celeba.txt or metadata.csv", dir.display())
    })?;
    let part_file = first_existing(dir, "list_eval_partition")
        .ok_or_else(|| anyhow!("{}: no list_eval_partition.csv or .txt", dir.display()))?;
    let partition = read_partition(&part_file)?;
    let (classes, groups) = attributes.names();
    let mut splits: [Vec<Entry>; 3] = Default::default();
    for (line, id, target, spurious) in read_attributes(&attr_file, attributes)? {
        let fail = |m: String| anyhow!("{} line {line}: {m}", attr_file.display());
        let split = *partition
            .get(&id)
            .ok_or_else(|| fail(format!("image {id} has no row in {}", part_file.display())))?;
        let path =
            Path::new(IMAGES).join(inside_root(&id).map_err(|why| fail(format!("image id '{id}' {why}")))?);
        splits[split_index(split)].push(Entry { path, label: target, group: 2 * target + spurious, line });
    }
    Ok(Manifest {
        name: "celeba".into(),
        root: dir.to_path_buf(),
        source: attr_file,
        class_names: classes,
        group_names: groups,
        splits,
    })
}

fn first_existing(dir: &Path, stem: &str) -> Option<PathBuf> {
    ["csv", "txt"].iter().map(|ext| dir.join(format!("{stem}.{ext}"))).find(|p| p.is_file())
}

fn binary(v: &str) -> Option<usize> {
    match v {
        "1" => Some(1),
        "-1" | "0" => Some(0),
        _ => None,
    }
}

type AttrRow = (usize, String, usize, usize);

/// (line, image id, target, spurious) per row of the attribute list.
fn read_attributes(file: &Path, attributes: &CelebaAttributes) -> Result<Vec<AttrRow>> {
    let names = [attributes.target.as_str(), attributes.spurious.as_str()];
    let bad = |line: usize, name: &str, v: &str| {
        anyhow!("{} line {line}: attribute {name} is '{v}', expected -1, 0 or 1", file.display())
    };
    let mut out = Vec::new();
    if file.extension().is_some_and(|e| e == "csv") {
        let mut table = Table::open(file)?;
        let id = table.column("image_id")?;
        let cols = [table.column(names[0])?, table.column(names[1])?];
        for row in table.rows() {
            let row = row?;
            let mut v = [0; 2];
            for k in 0..2 {
                let s = row.get(cols[k], names[k])?;
                v[k] = binary(s).ok_or_else(|| bad(row.line, names[k], s))?;
            }
            out.push((row.line, row.get(id, "image_id")?.to_string(), v[0], v[1]));
        }
        return Ok(out);
    }
    // The original text list: a count, the attribute names, then "000001.jpg -1  1 ...".
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut lines = text.lines().enumerate().skip(1);
    let header = lines.next().map(|(_, l)| words(l)).unwrap_or_default();
    let col = |name: &str| {
        header.iter().position(|h| *h == name).ok_or_else(|| {
            anyhow!(
                "{}: missing attribute '{name}' on line 2 (attributes: {})",
                file.display(),
                header.join(", ")
            )
        })
    };
    let cols = [col(names[0])?, col(names[1])?];
    for (i, l) in lines.filter(|(_, l)| !l.trim().is_empty()) {
        let w = words(l);
        if w.len() != header.len() + 1 {
            bail!("{} line {}: {} fields, expected {}", file.display(), i + 1, w.len(), header.len() + 1);
        }
        let v = [0, 1].map(|k| binary(w[cols[k] + 1]).ok_or_else(|| bad(i + 1, names[k], w[cols[k] + 1])));
        let [a, b] = v;
        out.push((i + 1, w[0].to_string(), a?, b?));
    }
    Ok(out)
}

/// Image id → split, from `list_eval_partition.csv` (`image_id,partition`) or `.txt`.
fn read_partition(file: &Path) -> Result<HashMap<String, Split>> {
    let mut out = HashMap::new();
    if file.extension().is_some_and(|e| e == "csv") {
        let mut table = Table::open(file)?;
        let (id, part) = (table.column("image_id")?, table.column("partition")?);
        for row in table.rows() {
            let row = row?;
            out.insert(row.get(id, "image_id")?.to_string(), row.split(part, "partition")?);
        }
        return Ok(out);
    }
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    for (i, l) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let w = words(l);
        let split = match w.as_slice() {
            [_, p] => parse_split(p),
            _ => None,
        };
        let split = split.ok_or_else(|| {
            anyhow!(
                "{} line {}: expected 'IMAGE SPLIT' with split 0, 1 or 2, found '{l}'",
                file.display(),
                i + 1
            )
        })?;
        out.insert(w[0].to_string(), split);
    }
    Ok(out)
}
