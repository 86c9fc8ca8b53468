//! Waterbirds (`waterbird_complete95_forest2water2`, WILDS `waterbirds_v1.0`): `metadata.csv`
//! with `img_filename, y, split, place` (`img_id` and `place_filename` are ignored).
//! y: 1 = waterbird; place: 1 = water; split 0/1/2 = train/val/test; group = 2y + place.
//!
//! The same reader takes the Waterbirds-style `metadata.csv` that DFR and the authors' code
//! use for CelebA (y = Blond_Hair, place = Male).

use std::path::Path;

use anyhow::Result;

use super::table::Table;
use super::{Entry, Manifest, split_index};

pub(crate) const CLASS_NAMES: [&str; 2] = ["landbird", "waterbird"];
pub(crate) const GROUP_NAMES: [&str; 4] =
    ["landbird on land", "landbird on water", "waterbird on land", "waterbird on water"];

/// Reads `dir/metadata.csv` as Waterbirds.
pub(crate) fn read(dir: &Path) -> Result<Manifest> {
    read_metadata(dir, "waterbirds", ["y", "place"], CLASS_NAMES, GROUP_NAMES)
}

/// Reads `dir/metadata.csv`: binary label `y`, binary attribute `place`, group 2y + place.
/// `meaning` names the two columns in errors (e.g. `["y (Blond_Hair)", "place (Male)"]`).
pub(crate) fn read_metadata(
    dir: &Path,
    name: &str,
    meaning: [&str; 2],
    class_names: [&str; 2],
    group_names: [&str; 4],
) -> Result<Manifest> {
    let file = dir.join("metadata.csv");
    let mut table = Table::open(&file)?;
    let path_col = table.column("img_filename")?;
    let y_col = table.column("y")?;
    let split_col = table.column("split")?;
    let place_col = table.column("place")?;
    let classes = format!("the classes 0 ({}), 1 ({})", class_names[0], class_names[1]);
    let places = format!("0, 1 ({} is binary)", meaning[1]);
    let mut splits: [Vec<Entry>; 3] = Default::default();
    for row in table.rows() {
        let row = row?;
        let path = row.relative_path(path_col, "img_filename")?;
        let label = row.index(y_col, meaning[0], 2, &classes)?;
        let place = row.index(place_col, meaning[1], 2, &places)?;
        let split = row.split(split_col, "split")?;
        let entry = Entry { path, label, group: 2 * label + place, line: row.line };
        splits[split_index(split)].push(entry);
    }
    Ok(Manifest {
        name: name.to_string(),
        root: dir.to_path_buf(),
        source: file,
        class_names: class_names.iter().map(|s| s.to_string()).collect(),
        group_names: group_names.iter().map(|s| s.to_string()).collect(),
        splits,
    })
}
