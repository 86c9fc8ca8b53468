//! The README and the user guide (docs/*.md) against the program.
//!
//! Every ```console block is run: each `$ memscope ...` line runs the real binary on the
//! bundled demo from the repository root, and what it prints (standard output and error
//! together, as a terminal shows them) must be the text below it, where `[..]` stands for
//! any text within a line (timings, absolute paths, the last digits of a gradient score) and
//! a line `...` for any number of lines. A `? failed` line after the command says it must
//! fail. Blocks marked ```console,ignore (minutes of work, PyTorch, a GPU or the user's
//! files) are not run. The format is trycmd's, run here with snapbox's matching alone
//! (trycmd's own dependencies would change the features of crates the binary shares).
//!
//! Also: every relative link and image names a file (and heading) that exists, and the
//! README's set-up commands are the two the Makefile defines.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BIN: &str = env!("CARGO_BIN_EXE_memscope");
/// An example is something that runs in seconds; one that runs this long is stopped.
const EXAMPLE_LIMIT: Duration = Duration::from_secs(60);

/// README.md and every page of docs/, in a fixed order.
fn pages() -> Vec<PathBuf> {
    let mut guide: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    guide.sort();
    guide.insert(0, Path::new(ROOT).join("README.md"));
    guide
}

fn read(page: &Path) -> String {
    std::fs::read_to_string(page).unwrap_or_else(|e| panic!("{}: {e}", page.display()))
}

fn name(page: &Path) -> String {
    page.strip_prefix(ROOT).unwrap_or(page).display().to_string()
}

/// One `$ memscope ...` line of a console block and what it must print.
#[derive(Debug)]
struct Example {
    /// "docs/cli.md:42"
    at: String,
    args: Vec<String>,
    fails: bool,
    expected: String,
}

/// The fenced blocks of a page: (line of the opening fence, info string, body lines without
/// the fence's indentation, as in a list item).
fn fences(text: &str) -> Vec<(usize, String, Vec<&str>)> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, usize, String, Vec<&str>)> = None;
    for (i, line) in text.lines().enumerate() {
        let fence = line.trim_start().starts_with("```");
        match open.take() {
            None if fence => {
                let indent = line.len() - line.trim_start().len();
                open = Some((i + 1, indent, line.trim_start()[3..].trim().to_string(), Vec::new()));
            }
            None => {}
            Some((at, _, info, body)) if fence && line.trim() == "```" => blocks.push((at, info, body)),
            Some((at, indent, info, mut body)) => {
                let spaces = line.len() - line.trim_start_matches(' ').len();
                body.push(&line[spaces.min(indent)..]);
                open = Some((at, indent, info, body));
            }
        }
    }
    assert!(open.is_none(), "a code block is not closed");
    blocks
}

/// The examples of the page's ```console blocks (not ```console,ignore).
fn examples(page: &Path) -> Vec<Example> {
    let mut found = Vec::new();
    for (line, info, body) in fences(&read(page)) {
        if info != "console" {
            continue;
        }
        for (i, text) in body.iter().enumerate() {
            let at = format!("{}:{}", name(page), line + 1 + i);
            match text.strip_prefix("$ ") {
                Some(command) => {
                    let words = words(command);
                    assert_eq!(
                        words.first().map(String::as_str),
                        Some("memscope"),
                        "{at}: only memscope runs in a console block (mark others console,ignore)"
                    );
                    found.push(Example {
                        at,
                        args: words[1..].to_vec(),
                        fails: false,
                        expected: String::new(),
                    });
                }
                None => {
                    let example =
                        found.last_mut().unwrap_or_else(|| panic!("{at}: a console block starts with `$ `"));
                    if text.trim() == "? failed" && example.expected.is_empty() {
                        example.fails = true;
                    } else {
                        example.expected.push_str(text);
                        example.expected.push('\n');
                    }
                }
            }
        }
    }
    found
}

/// A command line split into words, with '...' and "..." quoting (no other shell syntax).
fn words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote = None;
    for c in command.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_default().push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_default();
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_default().push(c),
        }
    }
    assert!(quote.is_none(), "unclosed quote in `{command}`");
    words.extend(word);
    words
}

/// Runs memscope as the docs show it: from the repository root, on this checkout's demo,
/// standard output and error into one pipe. Returns (succeeded, what it printed).
fn run(example: &Example) -> (bool, String) {
    let (mut reader, writer) = std::io::pipe().unwrap();
    let mut command = Command::new(BIN);
    command
        .args(&example.args)
        .current_dir(ROOT)
        .env("MEMSCOPE_DEMO", Path::new(ROOT).join("checkpoints/spurious-digits"))
        .env_remove("MEMSCOPE_DATA_ROOT")
        .env_remove("MEMSCOPE_PIXEL_CACHE")
        .env_remove("MEMSCOPE_CONFIG")
        .stdin(Stdio::null())
        .stdout(writer.try_clone().unwrap())
        .stderr(writer);
    let mut child = command.spawn().unwrap();
    drop(command); // its copies of the pipe's writing end: the read below ends with the child
    let output = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).unwrap();
        String::from_utf8_lossy(&bytes).into_owned()
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > EXAMPLE_LIMIT {
            child.kill().unwrap();
            panic!("{}: still running after {EXAMPLE_LIMIT:?}; mark it console,ignore", example.at);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.success(), output.join().unwrap())
}

#[test]
fn shell_examples_print_what_the_docs_show() {
    let assert = snapbox::Assert::new();
    let mut failures = Vec::new();
    let (mut count, started) = (0, Instant::now());
    for page in pages() {
        for example in examples(&page) {
            let began = Instant::now();
            let (succeeded, output) = run(&example);
            eprintln!(
                "{:6.2} s  {}  memscope {}",
                began.elapsed().as_secs_f64(),
                example.at,
                example.args.join(" ")
            );
            count += 1;
            if succeeded == example.fails {
                let wanted = if example.fails { "fail" } else { "succeed" };
                failures
                    .push(format!("{}: expected the command to {wanted}; it printed:\n{output}", example.at));
                continue;
            }
            let expected = snapbox::Data::text(example.expected.trim_end_matches('\n'));
            let actual = snapbox::Data::text(output.trim_end_matches('\n'));
            if let Err(error) = assert.try_eq(Some(&example.at), actual, expected) {
                failures.push(format!("{}:\n{error}", example.at));
            }
        }
    }
    eprintln!("{count} examples in {:.1} s", started.elapsed().as_secs_f64());
    assert!(count > 0, "no console example found");
    assert!(
        failures.is_empty(),
        "{} of {count} examples differ:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// A heading's anchor as GitHub makes it: lower case, spaces to hyphens, punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c.to_lowercase().next().unwrap_or(c)),
            _ => None,
        })
        .collect()
}

/// The anchors of a page's headings.
fn anchors(text: &str) -> BTreeSet<String> {
    outside_code_blocks(text)
        .into_iter()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|h| anchor(&h.trim_start_matches('#').replace('`', "")))
        .collect()
}

/// A page's lines outside fenced code blocks.
fn outside_code_blocks(text: &str) -> Vec<&str> {
    let mut in_code = false;
    let mut lines = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        } else if !in_code {
            lines.push(line);
        }
    }
    lines
}

/// A page's lines outside code blocks, with inline code spans removed.
fn prose(text: &str) -> Vec<String> {
    let without_spans = |line: &str| line.split('`').step_by(2).collect::<Vec<_>>().join("");
    outside_code_blocks(text).into_iter().map(without_spans).collect()
}

/// The targets of a page's Markdown links and images: `[text](target)`, `![alt](target)`.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    for line in prose(text) {
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let end = after.find(')').unwrap_or(after.len());
            targets.push(after[..end].split_whitespace().next().unwrap_or("").to_string());
            rest = &after[end..];
        }
    }
    targets
}

#[test]
fn relative_links_and_images_name_files_and_headings_that_exist() {
    let mut broken = Vec::new();
    for page in pages() {
        for target in link_targets(&read(&page)) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, fragment) = target.split_once('#').unwrap_or((&target, ""));
            let path = if file.is_empty() { page.clone() } else { page.parent().unwrap().join(file) };
            if !path.exists() {
                broken.push(format!("{}: {target} (no such file)", name(&page)));
            } else if !fragment.is_empty() && !anchors(&read(&path)).contains(fragment) {
                broken.push(format!("{}: {target} (no such heading)", name(&page)));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_readme_names_the_two_make_targets_as_its_set_up_commands() {
    let readme = read(&Path::new(ROOT).join("README.md"));
    let set_up = fences(&readme)
        .into_iter()
        .find(|(_, info, body)| info == "sh" && body.iter().any(|l| l.starts_with("make ")))
        .expect("README: a ```sh block with the set-up commands");
    let commands: Vec<&str> = set_up.2.iter().map(|l| l.split('#').next().unwrap_or("").trim()).collect();
    assert_eq!(commands, ["make run", "make test"], "README: the set-up block");
    let makefile = read(&Path::new(ROOT).join("Makefile"));
    for target in ["run:", "test:"] {
        assert!(makefile.lines().any(|l| l.starts_with(target)), "Makefile lacks `{target}`");
    }
    let ci = read(&Path::new(ROOT).join(".ci/run"));
    assert!(ci.lines().any(|l| l.trim() == "make test"), ".ci/run must run the README's test command");
}
