//! Reading report inputs: a run's trace (one JSON object) or a fuzz
//! results file (JSON lines). A results file is streamed one line at a
//! time into a [`CampaignAggregate`], so its size never reaches memory; a
//! bad line is a located error (file:line), and an unparsable last line
//! without a newline is reported as probably torn.
//!
//! Invariant: memory while reading results is one line (at most
//! [`MAX_LINE_BYTES`]) plus the aggregate, whatever the file's size.

use crate::aggregate::CampaignAggregate;
use crate::model::{CampaignManifest, ManifestLine, RunRecord, Trace};
use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};

/// The longest line a results file may have. A record is a few kilobytes;
/// a longer line is damage, not a record, and must not fill memory.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// Bytes read from the start of a file to tell a trace from results.
const SNIFF_BYTES: u64 = 4096;

/// Why a report could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A line of a results file is not a result record.
    #[error("{path}:{line}: not a result record: {reason}")]
    BadLine {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The parser's reason.
        reason: String,
    },
    /// The last line of a results file has no newline and does not parse:
    /// the writer probably stopped in the middle of it.
    #[error(
        "{path}:{line}: the last line is not a result record and has no newline, so it is probably torn \
         (the writer stopped mid-line; every line before it was read): {reason}"
    )]
    TornLastLine {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The parser's reason.
        reason: String,
    },
    /// A line is longer than [`MAX_LINE_BYTES`].
    #[error("{path}:{line}: the line is longer than {limit} bytes: not a result record")]
    LineTooLong {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// A trace file does not parse.
    #[error("{path}:{line}:{column}: not a trace: {reason}")]
    BadTrace {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's reason.
        reason: String,
    },
    /// The file holds no record.
    #[error("{path}: no result records in the file")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A chart could not be drawn.
    #[error("drawing the chart `{chart}`: {reason}")]
    Chart {
        /// Which chart.
        chart: String,
        /// Why.
        reason: String,
    },
}

/// One report input.
#[derive(Clone, Debug)]
pub enum Input {
    /// A single run's trace.
    Trace(Box<Trace>),
    /// A results file's runs, aggregated; named by the file's path.
    Results(Box<CampaignAggregate>),
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io { path: path.to_path_buf(), source }
}

/// The records of a JSON-lines results file, one line at a time. Blank
/// lines are skipped; the first error ends the iteration.
pub struct ResultsReader<R> {
    reader: R,
    path: PathBuf,
    line: usize,
    buffer: Vec<u8>,
    done: bool,
    manifests: Vec<CampaignManifest>,
}

/// Distinct campaign manifests a reader keeps (concatenated shards repeat
/// one; more than this many campaigns in one file keep the first ones).
const MAX_MANIFESTS: usize = 64;

impl ResultsReader<BufReader<File>> {
    /// Opens a results file.
    pub fn open(path: &Path) -> Result<Self, ReportError> {
        let file = File::open(path).map_err(io_error(path))?;
        Ok(Self::new(BufReader::with_capacity(1 << 16, file), path))
    }
}

impl<R: BufRead> ResultsReader<R> {
    /// Reads records from `reader`; `path` names it in errors.
    pub fn new(reader: R, path: impl Into<PathBuf>) -> Self {
        Self { reader, path: path.into(), line: 0, buffer: Vec::new(), done: false, manifests: Vec::new() }
    }

    /// The campaign manifests read so far, each once.
    pub fn manifests(&self) -> &[CampaignManifest] {
        &self.manifests
    }

    /// Lines read so far.
    pub fn lines_read(&self) -> usize {
        self.line
    }

    fn next_record(&mut self) -> Option<Result<RunRecord, ReportError>> {
        loop {
            self.buffer.clear();
            let limit = MAX_LINE_BYTES as u64 + 1;
            match (&mut self.reader).take(limit).read_until(b'\n', &mut self.buffer) {
                Err(source) => return Some(Err(ReportError::Io { path: self.path.clone(), source })),
                Ok(0) => return None,
                Ok(_) => {}
            }
            self.line += 1;
            let ended = self.buffer.last() == Some(&b'\n');
            if !ended && self.buffer.len() > MAX_LINE_BYTES {
                return Some(Err(ReportError::LineTooLong {
                    path: self.path.clone(),
                    line: self.line,
                    limit: MAX_LINE_BYTES,
                }));
            }
            let text = self.buffer.trim_ascii();
            if text.is_empty() {
                continue;
            }
            let record = serde_json::from_slice::<RunRecord>(text);
            // A campaign manifest heads every results file (and several
            // sit inside concatenated shards): it describes, not reports.
            if record.is_err()
                && let Ok(manifest) = serde_json::from_slice::<ManifestLine>(text)
            {
                if self.manifests.len() < MAX_MANIFESTS && !self.manifests.contains(&manifest.campaign) {
                    self.manifests.push(manifest.campaign);
                }
                continue;
            }
            return Some(record.map_err(|error| {
                let (path, line, reason) = (self.path.clone(), self.line, error.to_string());
                // Without a newline, read_until stopped at the end of the file.
                if ended {
                    ReportError::BadLine { path, line, reason }
                } else {
                    ReportError::TornLastLine { path, line, reason }
                }
            }));
        }
    }
}

impl<R: BufRead> Iterator for ResultsReader<R> {
    type Item = Result<RunRecord, ReportError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.next_record();
        self.done = !matches!(next, Some(Ok(_)));
        next
    }
}

/// Streams every record of `reader` into `aggregate`; returns how many.
fn aggregate_from(reader: impl BufRead, path: &Path, aggregate: &mut CampaignAggregate) -> Result<u64, ReportError> {
    let mut records = 0u64;
    let mut reader = ResultsReader::new(reader, path);
    for record in reader.by_ref() {
        aggregate.add(&record?);
        records += 1;
    }
    for manifest in reader.manifests() {
        aggregate.add_manifest(manifest);
    }
    if records == 0 {
        return Err(ReportError::Empty { path: path.to_path_buf() });
    }
    Ok(records)
}

/// Reads a JSON-lines results file line by line into `aggregate`;
/// returns the number of records. A file with none is an error.
pub fn read_results_into(path: &Path, aggregate: &mut CampaignAggregate) -> Result<u64, ReportError> {
    let file = File::open(path).map_err(io_error(path))?;
    aggregate_from(BufReader::with_capacity(1 << 16, file), path, aggregate)
}

fn parse_trace(reader: impl Read, path: &Path) -> Result<Trace, ReportError> {
    serde_json::from_reader(reader).map_err(|error| ReportError::BadTrace {
        path: path.to_path_buf(),
        line: error.line(),
        column: error.column(),
        reason: error.to_string(),
    })
}

/// Reads a trace file written by `scx run --trace`.
pub fn read_trace(path: &Path) -> Result<Trace, ReportError> {
    let file = File::open(path).map_err(io_error(path))?;
    parse_trace(BufReader::new(file), path)
}

/// Whether the first bytes of a file open a trace: a JSON object whose
/// first key is `record` (as `scx run --trace` writes it, compact or
/// pretty). A results line opens with `{"scx_version"`.
fn opens_a_trace(prefix: &[u8]) -> bool {
    let significant: Vec<u8> = prefix.iter().copied().filter(|byte| !byte.is_ascii_whitespace()).take(9).collect();
    significant == b"{\"record\""
}

/// Reads either kind of input, telling them apart by the first bytes of
/// the file. Results are streamed into an aggregate named by the path.
pub fn read_input(path: &Path) -> Result<Input, ReportError> {
    let mut file = BufReader::with_capacity(1 << 16, File::open(path).map_err(io_error(path))?);
    let mut prefix = Vec::new();
    (&mut file).take(SNIFF_BYTES).read_to_end(&mut prefix).map_err(io_error(path))?;
    let is_trace = opens_a_trace(&prefix);
    let whole = Cursor::new(prefix).chain(file);
    if is_trace {
        return parse_trace(whole, path).map(|trace| Input::Trace(Box::new(trace)));
    }
    let mut aggregate = CampaignAggregate::new(path.display().to_string());
    aggregate_from(whole, path, &mut aggregate)?;
    Ok(Input::Results(Box::new(aggregate)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_are_told_from_results_by_their_first_key() {
        assert!(opens_a_trace(b"{\"record\":{\"scx_version\":\"0.1.0\""));
        assert!(opens_a_trace(b"\n\n{\n  \"record\": {\n"));
        assert!(!opens_a_trace(b"{\"scx_version\":\"0.1.0\",\"record\":1}"));
        assert!(!opens_a_trace(b""));
        assert!(!opens_a_trace(b"{\"rec"));
    }

    #[test]
    fn lines_over_the_limit_are_refused_without_reading_them_whole() {
        let long = vec![b'x'; MAX_LINE_BYTES + 10];
        let mut reader = ResultsReader::new(Cursor::new(long), "big.jsonl");
        let error = reader.next().unwrap().unwrap_err().to_string();
        assert_eq!(error, format!("big.jsonl:1: the line is longer than {MAX_LINE_BYTES} bytes: not a result record"));
        assert!(reader.next().is_none(), "the first error ends the iteration");
    }
}
