//! Goal: a multi-scenario campaign page has one section per scenario,
//! keyed by content hash, and groups failures that differ only in their
//! numbers into one row. Method: a small campaign of three scenarios (one
//! name under two contents) written as a report; its Markdown is held by
//! an `insta` snapshot (`INSTA_UPDATE=always cargo test -p scx-reports`
//! rewrites it after an intended change; review the diff), and the
//! sections of the same name are checked apart in both pages.

use crate::support::{THREE_SCENARIOS, temp, three_scenarios};
use scx_reports::{ReportOptions, write_campaign_report};

/// The Markdown section of the scenario whose heading names `hash`.
fn section<'a>(markdown: &'a str, hash: &str) -> &'a str {
    let start = markdown
        .find(&format!("### Scenario: mesh ({hash})"))
        .or_else(|| markdown.find(&format!("### Scenario: gossip ({hash})")));
    let rest = &markdown[start.unwrap_or_else(|| panic!("no section for {hash}:\n{markdown}"))..];
    let end = rest[4..].find("\n### ").map_or(rest.len(), |end| end + 4);
    &rest[..end]
}

#[test]
fn a_three_scenario_campaign_has_a_section_each_and_one_row_per_failure_kind() {
    let dir = temp("sections");
    let files = write_campaign_report(&[three_scenarios()], &dir, &ReportOptions::default()).unwrap();
    let markdown = std::fs::read_to_string(&files.markdown).unwrap();
    assert_eq!(markdown.matches("\n### Scenario: ").count(), THREE_SCENARIOS.len(), "{markdown}");
    // mesh v2 fails from seed 10 on: seeds 10, 13, 16, 19 and 22, five
    // times "at N ms" with five different N, one row.
    let grouped = "| fail | convergence | live nodes did not converge within the settle bound of # ms after the last heal at # ms | 5 | 10, 13, 16 |";
    assert!(section(&markdown, "bbbb000000000000").contains(grouped), "{markdown}");
    assert!(!section(&markdown, "aaaa000000000000").contains("| fail | convergence |"), "{markdown}");
    insta::assert_snapshot!("three_scenarios_markdown", markdown);
}

#[test]
fn two_scenarios_with_one_name_and_two_hashes_get_two_sections() {
    let dir = temp("same-name-sections");
    let files = write_campaign_report(&[three_scenarios()], &dir, &ReportOptions::default()).unwrap();
    let markdown = std::fs::read_to_string(&files.markdown).unwrap();
    let html = std::fs::read_to_string(&files.html).unwrap();
    for (index, (_, hash, path)) in THREE_SCENARIOS.iter().enumerate().take(2) {
        let mine = section(&markdown, hash);
        // Seeds 0..24 run scenario seed mod 3: eight runs each.
        assert!(mine.contains(&format!("File `{path}`. 8 runs:")), "{mine}");
        assert!(mine.contains(&format!("network: loss = {}", ["0.01", "0.05"][index])), "its own parameters: {mine}");
        let anchor = format!("scenario-{}-mesh-{}", if index == 0 { 2 } else { 3 }, &hash[..8]);
        assert!(html.contains(&format!("<section id=\"{anchor}\">")), "{anchor} in the page");
        assert!(html.contains(&format!("href=\"#{anchor}\"")), "the summary links {anchor}");
        assert!(dir.join(format!("{anchor}-cdf.csv")).exists(), "{anchor} has its own chart data");
    }
    assert!(markdown.contains("### Scenario: gossip (cccc000000000000)"));
}
