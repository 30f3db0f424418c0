//! Goal: the model stays independent of the engine it judges (ARCHITECTURE.md:
//! "the model shares only the lane type and its canonical encoding with the
//! engine"). Method: read `model/src` and look for what must be absent:
//! the engine's replica, its law, its hash steps and state encoding, and
//! any engine module beyond the lane type and the hash newtypes.

use std::path::{Path, PathBuf};

fn model_sources() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("model/src is readable")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .collect();
    files.sort();
    files
}

/// Lines of code, without comments (which may name what the code avoids).
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    std::fs::read_to_string(path)
        .expect("a source file is readable")
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .map(|(number, line)| (number + 1, line.to_owned()))
        .collect()
}

/// Whether `line` holds `word` as a whole identifier.
fn names(line: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    line.match_indices(word).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// What the model may take from the engine: the lane type and its parts,
/// the op type, and the hash newtypes results are compared in.
const ALLOWED_FROM_ENGINE: [&str; 7] = ["Lane", "LaneId", "NodeId", "Dot", "WorldOp", "ChainHash", "StateDigest"];

#[test]
fn the_model_never_names_the_engines_replica_law_or_hash_steps() {
    let files = model_sources();
    assert!(files.len() >= 5, "model/src has its modules: {files:?}");
    let mut lines_read = 0;
    for path in &files {
        for (number, line) in code_lines(path) {
            lines_read += 1;
            let place = format!("{}:{number}", path.display());
            for word in ["Replica", "World", "chain_step", "encode_state", "Law", "apply_lane"] {
                assert!(!names(&line, word), "{place}: the model must not use the engine's `{word}`: {line}");
            }
            for text in ["state_digest(", "scx_engine::World", "scx_engine::hash::", "scx_engine::codec"] {
                assert!(!line.contains(text), "{place}: the model must not use the engine's `{text}`: {line}");
            }
            for module in ["dag", "replica", "snapshot", "world", "law", "node", "log", "protocol"] {
                let path = format!("scx_engine::{module}");
                assert!(!names(&line, &path), "{place}: the model must not use `{path}`: {line}");
            }
        }
    }
    assert!(lines_read > 300, "the check read the model's code ({lines_read} lines)");
}

#[test]
fn the_model_imports_only_the_lane_type_and_hash_newtypes_from_the_engine() {
    let mut imports = 0;
    for path in model_sources() {
        for (number, line) in code_lines(&path) {
            let Some(rest) = line.trim().strip_prefix("use scx_engine::") else { continue };
            imports += 1;
            let list = rest.trim_end_matches(';').trim_start_matches('{').trim_end_matches('}');
            assert!(!list.is_empty(), "{}:{number}: keep engine imports on one line", path.display());
            for item in list.split(',').map(str::trim).filter(|item| !item.is_empty()) {
                assert!(
                    ALLOWED_FROM_ENGINE.contains(&item),
                    "{}:{number}: the model imports `{item}` from the engine; allowed: {ALLOWED_FROM_ENGINE:?}",
                    path.display()
                );
            }
        }
    }
    assert!(imports >= 5, "the check saw the model's engine imports ({imports})");
}

#[test]
fn the_word_check_sees_whole_identifiers_only() {
    assert!(names("let r: Replica<World> = x;", "Replica"));
    assert!(names("use scx_engine::{Lane, World};", "World"));
    assert!(!names("use scx_engine::WorldOp;", "World"));
    assert!(!names("let replica_like = 1;", "Replica"));
}
