//! libFuzzer drives the structured protocol fuzzer: the input bytes are the
//! mutators' choices (which case, which field, which value), so coverage
//! feedback steers the structure-aware mutations, and every input gets the
//! same oracle as the deterministic driver in `engine/tests/integration/pfuzz`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

#[allow(dead_code, unreachable_pub, reason = "shared with the deterministic driver, which uses all of it")]
#[path = "../../tests/integration/pfuzz/harness/mod.rs"]
mod harness;

static CORPUS: OnceLock<harness::Corpus> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let corpus = CORPUS.get_or_init(|| harness::Corpus::build(3));
    let mut stats = harness::Stats::default();
    let checks = harness::Checks { full_every: 1 };
    if let Err(problem) = harness::run_input(corpus, &mut harness::ByteChoices::new(data), checks, &mut stats) {
        panic!("{problem}");
    }
});
