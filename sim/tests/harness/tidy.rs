//! Goal: the architecture invariants in ARCHITECTURE.md hold mechanically,
//! as rust-analyzer's tidy test keeps its own. Method: read the sources and
//! manifests of the workspace and look for what must be absent.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("sim sits in the workspace").to_path_buf()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn code_lines(path: &Path) -> Vec<(usize, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .map(|(number, line)| (number + 1, line.to_owned()))
        .collect()
}

#[test]
fn the_engine_depends_on_nothing_async_simulated_or_file_bound() {
    let manifest = std::fs::read_to_string(workspace().join("engine/Cargo.toml")).unwrap();
    let dependencies = manifest.split("[dev-dependencies]").next().unwrap();
    // `scx-store` does file IO: the engine's tests may use it, the engine may not.
    for forbidden in ["madsim", "tokio", "async-std", "futures", "smol", "scx-store", "tempfile"] {
        assert!(!dependencies.contains(forbidden), "the engine must not depend on {forbidden}");
    }
    for (path, line) in rust_files(&workspace().join("engine/src"))
        .iter()
        .flat_map(|p| code_lines(p).into_iter().map(move |l| (p.clone(), l)))
    {
        for forbidden in ["async fn", ".await", "std::thread", "madsim", "std::fs", "File::", "OpenOptions", "std::net"]
        {
            assert!(!line.1.contains(forbidden), "{}:{}: the engine is sans-IO: `{forbidden}`", path.display(), line.0);
        }
    }
}

#[test]
fn no_std_hash_collections_in_engine_or_sim_state() {
    for dir in ["engine/src", "sim/src"] {
        for path in rust_files(&workspace().join(dir)) {
            for (number, line) in code_lines(&path) {
                for forbidden in
                    ["std::collections::HashMap", "std::collections::HashSet", "collections::{HashMap", "RandomState"]
                {
                    assert!(
                        !line.contains(forbidden),
                        "{}:{number}: iteration order of std hash maps changes between runs of one seed; use BTreeMap or engine::dag::IdMap",
                        path.display()
                    );
                }
            }
        }
    }
}

#[test]
fn wall_clock_reads_are_explained() {
    for dir in ["engine/src", "sim/src"] {
        for path in rust_files(&workspace().join(dir)) {
            let text = std::fs::read_to_string(&path).unwrap();
            let reads = ["Instant::now()", "SystemTime::now()", "thread_rng()", "OsRng"];
            if reads.iter().any(|read| text.contains(read)) {
                let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
                assert!(
                    compact.contains("allow(clippy::disallowed_methods,reason="),
                    "{} reads the wall clock or OS randomness without an allow that says why",
                    path.display()
                );
                assert!(
                    path.ends_with("cli/output.rs") || path.ends_with("real/clock.rs"),
                    "{}: only the campaign's progress and real mode's clock may read the wall clock",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn tokio_and_nix_stay_in_real_mode() {
    // The simulator runs on madsim alone; real processes are `sim/src/real/`'s.
    let real = workspace().join("sim/src/real");
    for path in rust_files(&workspace().join("sim/src")) {
        if path.starts_with(&real) {
            continue;
        }
        for (number, line) in code_lines(&path) {
            for forbidden in ["tokio::", "tokio_util::", "nix::"] {
                // As a path of its own, not the tail of another (`unix::`).
                let named = line
                    .match_indices(forbidden)
                    .any(|(at, _)| !line[..at].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_'));
                assert!(!named, "{}:{number}: `{forbidden}` belongs in sim/src/real/ only", path.display());
            }
        }
    }
}

#[test]
fn every_module_opens_with_its_job() {
    for dir in ["engine/src", "sim/src", "reports/src"] {
        for path in rust_files(&workspace().join(dir)) {
            let text = std::fs::read_to_string(&path).unwrap();
            let first = text.lines().find(|line| !line.starts_with("#!")).unwrap_or_default();
            assert!(first.starts_with("//!"), "{} must open with a //! paragraph on its job", path.display());
        }
    }
}
