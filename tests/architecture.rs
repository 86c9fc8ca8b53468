//! The map in ARCHITECTURE.md against the code: the engine's modules import only from the
//! layers below their own, as the ```layers block there lists them, and every module of the
//! engine is on the map exactly once. A new import that runs upwards, or a module missing
//! from the map, fails here with the file and the import.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The layers of ARCHITECTURE.md's ```layers block, top first: module names per row.
fn layers() -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(Path::new(ROOT).join("ARCHITECTURE.md")).unwrap();
    let start = text.find("```layers\n").expect("ARCHITECTURE.md has a ```layers block");
    let block = &text[start + "```layers\n".len()..];
    let block = &block[..block.find("```").expect("the ```layers block ends")];
    block
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default())
        .map(|row| row.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|row| !row.is_empty())
        .collect()
}

/// The engine's top-level modules with their files.
fn engine_modules() -> BTreeMap<String, Vec<PathBuf>> {
    let src = Path::new(ROOT).join("crates/memscope-core/src");
    let mut modules: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for file in common::rust_sources(&src) {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.components().next().unwrap().as_os_str().to_string_lossy().to_string();
        let module = first.trim_end_matches(".rs").to_string();
        if module != "lib" {
            modules.entry(module).or_default().push(file);
        }
    }
    modules
}

/// `crate::NAME` paths in `code`, including those inside `use crate::{a, b::c}` groups.
fn crate_imports(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            found.extend(inner.split(',').filter_map(|p| p.trim().split("::").next()).map(str::to_string));
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            found.push(name);
        }
    }
    found.retain(|n| !n.is_empty());
    found
}

#[test]
fn the_map_lists_every_engine_module_once() {
    let modules = engine_modules();
    let mut seen = BTreeMap::new();
    for (row, names) in layers().iter().enumerate() {
        for name in names {
            assert!(seen.insert(name.clone(), row).is_none(), "ARCHITECTURE.md lists {name} twice");
            assert!(
                modules.contains_key(name),
                "ARCHITECTURE.md lists {name}, which is not an engine module"
            );
        }
    }
    for name in modules.keys() {
        assert!(seen.contains_key(name), "the engine module {name} is not on ARCHITECTURE.md's map");
    }
}

#[test]
fn engine_modules_import_only_from_lower_layers() {
    let rows = layers();
    // Rows are listed top first: a larger index is a lower layer.
    let row_of = |name: &str| rows.iter().position(|row| row.iter().any(|n| n == name));
    let mut wrong = Vec::new();
    for (module, files) in engine_modules() {
        let Some(own) = row_of(&module) else { continue };
        for file in files {
            for import in crate_imports(&common::rust_code(&file)) {
                if import == module {
                    continue;
                }
                match row_of(&import) {
                    Some(row) if row > own => {}
                    _ => wrong.push(format!(
                        "{} ({module}) imports crate::{import}, which is not below it on the map",
                        file.strip_prefix(ROOT).unwrap().display()
                    )),
                }
            }
        }
    }
    assert!(wrong.is_empty(), "imports that run against ARCHITECTURE.md's layers:\n{}", wrong.join("\n"));
}

#[test]
fn the_engine_never_prints() {
    let mut printing = Vec::new();
    for files in engine_modules().values() {
        for file in files {
            for (n, line) in common::rust_code(file).lines().enumerate() {
                let line = line.trim_start();
                if ["println!", "eprintln!", "print!(", "eprint!(", "dbg!("].iter().any(|m| line.contains(m))
                {
                    printing.push(format!(
                        "{}:{}: {line}",
                        file.strip_prefix(ROOT).unwrap().display(),
                        n + 1
                    ));
                }
            }
        }
    }
    assert!(
        printing.is_empty(),
        "the engine prints (return the text, or log::warn! it):\n{}",
        printing.join("\n")
    );
}

#[test]
fn the_import_scanner_sees_grouped_and_plain_imports() {
    let code =
        "use crate::data::Split;\nuse crate::{eval, model::Network};\nlet x = crate::util::rng::seeded(1);";
    assert_eq!(crate_imports(code), ["data", "eval", "model", "util"]);
}

/// `tui::ui` (or `super::ui`) named as a path in `code`.
fn names_the_views(code: &str) -> bool {
    code.match_indices("ui::").any(|(at, _)| {
        let before = &code[..at];
        before.ends_with("tui::") || before.ends_with("super::") || before.ends_with("use ")
    })
}

#[test]
fn the_explorers_state_never_imports_its_views() {
    let tui = Path::new(ROOT).join("src/tui");
    let mut wrong = Vec::new();
    for file in common::rust_sources(&tui) {
        let relative = file.strip_prefix(&tui).unwrap();
        // The views themselves, and the loop that draws them.
        if relative.starts_with("ui") || relative == Path::new("mod.rs") {
            continue;
        }
        if names_the_views(&common::rust_code(&file)) {
            wrong.push(file.strip_prefix(ROOT).unwrap().display().to_string());
        }
    }
    assert!(wrong.is_empty(), "explorer state that imports the views (src/tui/ui): {wrong:?}");
    assert!(names_the_views("use crate::tui::ui::pct;") && names_the_views("super::super::ui::short(r)"));
    assert!(!names_the_views("use ratatui::layout::Rect;"));
}
