//! "Where the bytes went": a run's bytes sent by what they carried
//! (handshakes, summaries, lanes needed and not, the rest), on the run page
//! and per scenario on campaign pages. The kinds add up to the bytes sent
//! ([`ByteKind`]); records written before the breakdown existed have none,
//! and the bytes they sent show as "not broken down".

use super::campaign::thousands;
use super::table::{Cell, Column, Table, figures, text};
use crate::model::{ByteKind, Metrics};

/// What the tables show, for the note above them.
pub(super) const NOTE: &str = "Bytes sent by what they carried. Senders split each datagram into its frame (envelope, session id, status, flags), summary, lane batch and the rest (snapshot parts, need lists); receivers tell which share of each lane batch carried lanes they lacked (by the lanes' canonical bytes), and the rest of the lane bytes brought nothing new: lanes held already or refused, or batches lost on the way. The kinds add up to the bytes sent. \"Per byte missing\" divides by the canonical bytes of the lanes receivers lacked.";

/// `part` of `whole` as a percentage with no decimals, or "-" of nothing.
fn share(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".into();
    }
    format!("{:.0}%", 100.0 * part as f64 / whole as f64)
}

/// `bytes` per byte missing ("0.53x"), or "-" when nothing was missing.
fn per_missing(bytes: u64, missing: u64) -> String {
    if missing == 0 {
        return "-".into();
    }
    format!("{:.2}x", bytes as f64 / missing as f64)
}

/// Sent bytes no kind accounts for: those of records without a breakdown.
fn not_broken_down(metrics: &Metrics) -> u64 {
    let broken_down = ByteKind::ALL.iter().fold(0_u64, |sum, kind| sum.saturating_add(kind.of(metrics)));
    metrics.bytes_sent.saturating_sub(broken_down)
}

/// One run's bytes by kind: bytes, share of the bytes sent, per byte
/// missing and what each kind counts; `None` when the run sent nothing.
pub(super) fn run_table(metrics: &Metrics) -> Option<Table> {
    if metrics.bytes_sent == 0 {
        return None;
    }
    let (sent, missing) = (metrics.bytes_sent, metrics.bytes_missing);
    let mut table = Table::new(vec![
        text("carried"),
        figures("bytes"),
        figures("share"),
        figures("per byte missing"),
        text("what it counts"),
    ]);
    let row = |name: &str, bytes: u64, what: &str| {
        vec![
            Cell::Text(name.to_owned()),
            Cell::Number(thousands(bytes)),
            Cell::Number(share(bytes, sent)),
            Cell::Number(per_missing(bytes, missing)),
            Cell::Text(what.to_owned()),
        ]
    };
    for kind in ByteKind::ALL {
        table.row(row(kind.name(), kind.of(metrics), kind.description()));
    }
    let rest = not_broken_down(metrics);
    if rest > 0 {
        table.row(row("not broken down", rest, "a record written before the breakdown existed"));
    }
    table.row(row("all", sent, "datagram bytes sent"));
    Some(table)
}

/// Per scenario (the `label` cells, then the summed counters): bytes sent,
/// per byte missing, and each kind's bytes with its share.
pub(super) fn scenarios_table(label_columns: Vec<Column>, rows: Vec<(Vec<Cell>, &Metrics)>) -> Table {
    let any_rest = rows.iter().any(|(_, metrics)| not_broken_down(metrics) > 0);
    let mut columns = label_columns;
    columns.extend([figures("bytes sent"), figures("per byte missing")]);
    columns.extend(ByteKind::ALL.map(|kind| figures(kind.name())));
    if any_rest {
        columns.push(figures("not broken down"));
    }
    let mut table = Table::new(columns);
    for (mut cells, metrics) in rows {
        let sent = metrics.bytes_sent;
        let kind_cell = |bytes: u64| Cell::Number(format!("{} ({})", thousands(bytes), share(bytes, sent)));
        cells.push(Cell::Number(thousands(sent)));
        cells.push(Cell::Number(per_missing(sent, metrics.bytes_missing)));
        cells.extend(ByteKind::ALL.map(|kind| kind_cell(kind.of(metrics))));
        if any_rest {
            cells.push(kind_cell(not_broken_down(metrics)));
        }
        table.row(cells);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> Metrics {
        Metrics {
            bytes_sent: 1_000,
            bytes_missing: 400,
            bytes_sent_handshake: 300,
            bytes_sent_summary: 100,
            bytes_sent_lanes_needed: 400,
            bytes_sent_lanes_redundant: 150,
            bytes_sent_other: 50,
            ..Metrics::default()
        }
    }

    #[test]
    fn a_run_table_lists_every_kind_with_its_share_and_the_total() {
        let mut md = String::new();
        run_table(&metrics()).expect("bytes were sent").markdown(&mut md);
        assert!(md.contains("| handshakes | 300 | 30% | 0.75x |"), "{md}");
        assert!(md.contains("| lanes needed | 400 | 40% | 1.00x |"), "{md}");
        assert!(md.contains("| all | 1,000 | 100% | 2.50x |"), "{md}");
        assert!(!md.contains("not broken down"), "{md}");
    }

    #[test]
    fn an_old_record_shows_its_bytes_as_not_broken_down() {
        let old = Metrics { bytes_sent: 1_000, bytes_missing: 400, ..Metrics::default() };
        assert_eq!(old.bytes_by_kind(), None);
        let mut md = String::new();
        run_table(&old).expect("bytes were sent").markdown(&mut md);
        assert!(md.contains("| not broken down | 1,000 | 100% | 2.50x |"), "{md}");
        let mixed = [(vec![Cell::Text("a".into())], &old), (vec![Cell::Text("b".into())], &metrics())];
        let mut md = String::new();
        scenarios_table(vec![text("scenario")], mixed.into()).markdown(&mut md);
        assert!(
            md.contains("| a | 1,000 | 2.50x | 0 (0%) | 0 (0%) | 0 (0%) | 0 (0%) | 0 (0%) | 1,000 (100%) |"),
            "{md}"
        );
        assert!(md.contains("| b | 1,000 | 2.50x | 300 (30%) |"), "{md}");
    }
}
