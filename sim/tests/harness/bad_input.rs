//! Goal: bad scenario input exits 2 with the location of the value at
//! fault, its message printed once, a caret and a help line.
//! Method: run the built `scx` on fixtures in `sim/tests/fixtures/bad/` and
//! read its standard error.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scx(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scx")).args(args).current_dir(workspace()).output().expect("the scx binary runs")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("sim sits in the workspace").to_path_buf()
}

/// Runs `scx run` on fixture `name` and checks the exit code, the first
/// line (`error: file:line:column: message`), that the message is printed
/// once, and the caret and help line below it.
fn assert_refused(name: &str, at: &str, message: &str) {
    let path = format!("sim/tests/fixtures/bad/{name}.toml");
    let out = scx(&["run", &path]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
    let first = stderr.lines().next().unwrap_or_default();
    assert!(first.starts_with(&format!("error: {path}:{at}: ")), "{name}: {first}");
    assert!(first.contains(message), "{name}: {first}");
    let full_message = first.split_once(&format!("{at}: ")).map_or("", |(_, message)| message);
    assert_eq!(stderr.matches(full_message).count(), 1, "{name}: the message is printed once:\n{stderr}");
    let (line, column) = at.split_once(':').unwrap();
    let caret_line = stderr
        .lines()
        .skip_while(|text| !text.trim_start().starts_with(&format!("{line} |")) && !text.contains(&format!("{line} │")))
        .nth(1)
        .unwrap_or_default();
    assert!(
        caret_line.contains('^') || caret_line.contains('┬') || caret_line.contains('─'),
        "{name}: no caret under line {line}:\n{stderr}"
    );
    let caret_column = caret_line.find(['^', '┬', '─']).unwrap_or_default();
    let source_line =
        stderr.lines().find(|text| text.trim_start().starts_with(&format!("{line} "))).unwrap_or_default();
    let gutter = source_line.find(['|', '│']).unwrap_or_default() + 2;
    assert_eq!(
        caret_column + 1 - gutter,
        column.parse::<usize>().unwrap(),
        "{name}: the caret is under column {column}:\n{stderr}"
    );
    assert!(stderr.contains("help: "), "{name}: no help line:\n{stderr}");
}

#[test]
fn a_scenario_error_is_printed_once_with_its_caret_and_help() {
    assert_refused("node-range", "12:9", "node index 7 out of range (cluster has 3 nodes)");
    assert_refused("unknown-key", "10:1", "unknown field `latncy`");
}

#[test]
fn a_path_is_named_the_same_way_however_it_is_written() {
    for written in ["./sim/tests/fixtures/bad/node-range.toml", "sim/./tests/../tests/fixtures/bad/node-range.toml"] {
        let out = scx(&["run", written]);
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("error: sim/tests/fixtures/bad/node-range.toml:12:9: "), "{written}: {stderr}");
    }
}
