//! Lane batches on the wire: many lanes in canonical (hence causal) order,
//! delta-coded, as rows or columns, and compressed where it pays.
//!
//! Each lane field is coded against what came before: authors as the
//! difference from the previous lane's author, seqs as the difference from
//! one past the same author's previous lane in the batch, lamports as the
//! difference from one past the previous lane's. A parent that is the
//! author's previous lane, or the batch's previous lane, is implied by a
//! one-byte shape; other parents that are earlier lanes of the batch are
//! short back-references, and only parents outside the batch take their
//! 32-byte id.
//!
//! A batch goes out in the smallest of three forms (`codec` byte):
//! - rows (2): each lane's fields one after another, ops in their
//!   canonical encoding; the cheapest for the one to three lanes a running
//!   cluster's sessions carry;
//! - columns (0): lane count, a mask of the columns present, and each
//!   present column as length and bytes; ops spread their fields over
//!   [`OP_COLUMNS`] columns of like values ([`Op::encode_batched`]);
//! - compressed columns (1): the raw length, then the columns compressed
//!   with zstd, tried when they take at least [`COMPRESS_MIN_BYTES`]. A
//!   peer catching up receives long runs of like values, which compress.
//!
//! Layout: `version`, `codec`, the form's bytes. A batch of no lanes is the
//! version byte alone.
//!
//! Invariant: decoding rebuilds the exact canonical lanes (the receiver
//! recomputes every id from them; nothing is trusted), a malformed batch is
//! a typed error, never a panic, and nothing is inflated past
//! [`MAX_BATCH_BYTES`].

use super::wire::MAX_BATCH_BYTES;
use crate::bugs::Bugs;
use crate::codec::{DecodeError, DecodeErrorKind, Reader, put_signed, put_varint, varint_len};
use crate::hash::LaneId;
use crate::lane::{Dot, Lane, MAX_OPS_PER_LANE, MAX_PARENTS, NodeId, OP_COLUMNS, Op};
use std::collections::BTreeMap;

/// Format version of a lane batch.
pub const BATCH_FORMAT_VERSION: u8 = 2;
/// Most lanes in one batch.
pub(crate) const MAX_BATCH_LANES: usize = 1 << 20;
/// Smallest body worth trying to compress: below it a compressor's fixed
/// cost (about 12 µs a call) buys a few dozen bytes, and the sessions of a
/// running cluster send many small batches.
pub const COMPRESS_MIN_BYTES: usize = 1024;
/// The zstd level, chosen by measurement against deflate, lz4 and a pure
/// Rust zstd encoder (BENCHMARKS.md, "Lane batches").
const ZSTD_LEVEL: i32 = 3;

const CODEC_COLUMNS: u8 = 0;
const CODEC_ZSTD: u8 = 1;
const CODEC_ROWS: u8 = 2;

const AUTHORS: usize = 0;
const SEQS: usize = 1;
const LAMPORTS: usize = 2;
const SHAPES: usize = 3;
const REFS: usize = 4;
const IDS: usize = 5;
const OP_COUNTS: usize = 6;
const OPS: usize = 7;
const COLUMNS: usize = OPS + OP_COLUMNS;
const COLUMN_NAMES: [&str; COLUMNS] = [
    "authors column",
    "seqs column",
    "lamports column",
    "shapes column",
    "parent references column",
    "parent ids column",
    "op counts column",
    "ops column 0",
    "ops column 1",
    "ops column 2",
    "ops column 3",
];

/// Parent shape: one parent, the author's previous lane in the batch.
const SHAPE_AUTHOR_PREVIOUS: u64 = 0;
/// Parent shape: one parent, the lane just before in the batch.
const SHAPE_BATCH_PREVIOUS: u64 = 1;
/// Parent shape: this plus the count, then that many references.
const SHAPE_LIST: u64 = 2;
/// A reference of 0 means the parent's id follows in the ids column.
const REF_ID: u64 = 0;

/// A parent as a batch writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParentRef {
    /// The lane this many places earlier in the batch (at least 1).
    Back(u64),
    /// A lane outside the batch, by id.
    Id(LaneId),
}

/// One lane as a batch holds it, parents not yet resolved to ids. The
/// protocol fuzzer edits batches at this level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchLane<O> {
    /// The author.
    pub author: NodeId,
    /// The author's sequence number.
    pub seq: u64,
    /// Lamport stamp.
    pub lamport: u64,
    /// Parents, in the lane's canonical order.
    pub parents: Vec<ParentRef>,
    /// The operations.
    pub ops: Vec<O>,
}

/// What writer and reader code each lane against: the lanes before it.
#[derive(Clone, Debug, Default)]
struct Context {
    /// Lanes so far; the index of the next one.
    count: u64,
    previous_author: u32,
    previous_lamport: u64,
    /// Each author's latest lane so far: its seq and index.
    latest: BTreeMap<NodeId, (u64, u64)>,
}

impl Context {
    fn expected_seq(&self, author: NodeId) -> u64 {
        self.latest.get(&author).map_or(1, |(seq, _)| seq.wrapping_add(1))
    }

    fn author_previous(&self, author: NodeId) -> Option<u64> {
        self.latest.get(&author).map(|(_, index)| *index)
    }

    fn advance(&mut self, author: NodeId, seq: u64, lamport: u64) {
        self.latest.insert(author, (seq, self.count));
        self.previous_author = author.0;
        self.previous_lamport = lamport;
        self.count += 1;
    }
}

/// Where a lane's fields are written: the columns of a batch, or one row.
trait Sink {
    fn column(&mut self, column: usize) -> &mut Vec<u8>;
    fn write_op<O: Op>(&mut self, op: &O, lane: Dot);
}

impl Sink for [Vec<u8>; COLUMNS] {
    fn column(&mut self, column: usize) -> &mut Vec<u8> {
        &mut self[column]
    }

    fn write_op<O: Op>(&mut self, op: &O, lane: Dot) {
        let [.., op0, op1, op2, op3] = self;
        let mut columns = [std::mem::take(op0), std::mem::take(op1), std::mem::take(op2), std::mem::take(op3)];
        op.encode_batched(lane, &mut columns);
        [*op0, *op1, *op2, *op3] = columns;
    }
}

/// A row: every field of a lane in one run of bytes, ops canonical.
impl Sink for Vec<u8> {
    fn column(&mut self, _: usize) -> &mut Vec<u8> {
        self
    }

    fn write_op<O: Op>(&mut self, op: &O, _: Dot) {
        op.encode(self);
    }
}

/// Writes one lane's fields, coded against `context`, in reading order.
fn write_lane<S: Sink, O: Op>(sink: &mut S, context: &Context, lane: &LaneFields<'_, O>) {
    let LaneFields { author, seq, lamport, parents, ops } = *lane;
    put_signed(sink.column(AUTHORS), i64::from(author.0) - i64::from(context.previous_author));
    put_signed(sink.column(SEQS), seq.wrapping_sub(context.expected_seq(author)) as i64);
    put_signed(sink.column(LAMPORTS), lamport.wrapping_sub(context.previous_lamport.wrapping_add(1)) as i64);
    let index = context.count;
    let single = match parents {
        [ParentRef::Back(back)] if (1..=index).contains(back) => Some(index - back),
        _ => None,
    };
    if single.is_some() && single == context.author_previous(author) {
        put_varint(sink.column(SHAPES), SHAPE_AUTHOR_PREVIOUS);
    } else if single.is_some() && single == index.checked_sub(1) {
        put_varint(sink.column(SHAPES), SHAPE_BATCH_PREVIOUS);
    } else {
        put_varint(sink.column(SHAPES), SHAPE_LIST + parents.len() as u64);
        for parent in parents {
            match parent {
                ParentRef::Back(back) => put_varint(sink.column(REFS), *back),
                ParentRef::Id(id) => {
                    put_varint(sink.column(REFS), REF_ID);
                    sink.column(IDS).extend_from_slice(id.as_bytes());
                }
            }
        }
    }
    put_varint(sink.column(OP_COUNTS), ops.len() as u64);
    let dot = Dot { author, seq };
    for op in ops {
        sink.write_op(op, dot);
    }
}

/// A lane's fields as a batch writes them, borrowed.
struct LaneFields<'a, O> {
    author: NodeId,
    seq: u64,
    lamport: u64,
    parents: &'a [ParentRef],
    ops: &'a [O],
}

impl<O> Clone for LaneFields<'_, O> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<O> Copy for LaneFields<'_, O> {}

/// The batch of no lanes: the version byte alone.
pub(crate) const EMPTY_BATCH: [u8; 1] = [BATCH_FORMAT_VERSION];

/// Capacity of one buffer a writer keeps between batches (see
/// [`BatchWriter::take`]). The rows hold every lane and each column a part
/// of each, so a writer keeps at most a few times this.
const MAX_RETAINED_BUFFER: usize = 16 * 1024;

/// Writes lanes, in canonical order, into one batch: as columns and as
/// rows side by side, so that `finish` can send the smaller. A writer that
/// is reused (`take`) keeps its buffers' capacity, so a node's sessions do
/// not grow a dozen vectors from nothing for every batch they send.
#[derive(Clone, Debug)]
pub(crate) struct BatchWriter {
    columns: [Vec<u8>; COLUMNS],
    rows: Vec<u8>,
    /// The lane being added, until it is known to fit.
    staged_columns: [Vec<u8>; COLUMNS],
    staged_row: Vec<u8>,
    /// The staged lane's parents, as the batch refers to them.
    staged_parents: Vec<ParentRef>,
    /// The columns form's body, when it is long enough to try compressing.
    body: Vec<u8>,
    /// Position of each lane written, by id. A B-tree, not a hash table:
    /// the writer has no replica's key (`dag::ids`), and the lanes it writes
    /// may be a peer's, whose ids a peer can grind to collide under any
    /// hash it can compute.
    position: BTreeMap<LaneId, u64>,
    context: Context,
}

impl BatchWriter {
    pub(crate) fn new() -> Self {
        Self {
            columns: Default::default(),
            rows: Vec::new(),
            staged_columns: Default::default(),
            staged_row: Vec::new(),
            staged_parents: Vec::new(),
            body: Vec::new(),
            position: BTreeMap::new(),
            context: Context::default(),
        }
    }

    /// Forgets every lane written, keeping the buffers' capacity.
    fn clear(&mut self) {
        self.columns.iter_mut().for_each(Vec::clear);
        self.rows.clear();
        self.staged_columns.iter_mut().for_each(Vec::clear);
        self.staged_row.clear();
        self.staged_parents.clear();
        self.position.clear();
        self.context = Context::default();
    }

    /// A bound on the finished batch's bytes: compression is only used when
    /// it makes the batch smaller.
    pub(crate) fn len(&self) -> usize {
        self.len_with(false)
    }

    /// Bit `c` set when column `c` is not empty: the columns form's mask.
    fn column_mask(&self) -> u64 {
        let present = self.columns.iter().enumerate().filter(|(_, column)| !column.is_empty());
        present.map(|(at, _)| 1 << at).sum()
    }

    /// Lanes written so far.
    pub(crate) fn count(&self) -> u64 {
        self.context.count
    }

    /// Appends one lane unless the batch would then be longer than `limit`
    /// bytes; the first lane always goes in (a lane fits any batch limit
    /// the protocol uses). Returns whether it was appended.
    pub(crate) fn push_within<O: Op>(&mut self, id: LaneId, lane: &Lane<O>, limit: usize) -> bool {
        let index = self.context.count;
        let mut parents = std::mem::take(&mut self.staged_parents);
        parents.clear();
        parents.extend(lane.parents.iter().map(|parent| match self.position.get(parent) {
            Some(at) => ParentRef::Back(index - at),
            None => ParentRef::Id(*parent),
        }));
        self.stage(&LaneFields {
            author: lane.author,
            seq: lane.seq,
            lamport: lane.lamport,
            parents: &parents,
            ops: &lane.ops,
        });
        self.staged_parents = parents;
        if self.len_with(true) > limit && index > 0 {
            self.staged_columns.iter_mut().for_each(Vec::clear);
            self.staged_row.clear();
            return false;
        }
        self.commit(lane.author, lane.seq, lane.lamport);
        self.position.insert(id, index);
        true
    }

    /// Writes one lane into the staged columns and row.
    fn stage<O: Op>(&mut self, lane: &LaneFields<'_, O>) {
        write_lane(&mut self.staged_columns, &self.context, lane);
        write_lane(&mut self.staged_row, &self.context, lane);
    }

    fn commit(&mut self, author: NodeId, seq: u64, lamport: u64) {
        for (column, staged) in self.columns.iter_mut().zip(&mut self.staged_columns) {
            column.append(staged);
        }
        self.rows.append(&mut self.staged_row);
        self.context.advance(author, seq, lamport);
    }

    /// The smaller uncompressed form's length, counting the staged lane or not.
    fn len_with(&self, staged: bool) -> usize {
        let count = self.context.count + u64::from(staged);
        if count == 0 {
            return 1;
        }
        let rows = self.rows.len() + if staged { self.staged_row.len() } else { 0 };
        let mut mask = 0u64;
        let mut columns = 0;
        for (at, (column, extra)) in self.columns.iter().zip(&self.staged_columns).enumerate() {
            let len = column.len() + if staged { extra.len() } else { 0 };
            if len > 0 {
                mask |= 1 << at;
                columns += varint_len(len as u64) + len;
            }
        }
        2 + rows.min(varint_len(count) + varint_len(mask) + columns)
    }

    /// The batch, in the smallest of its forms.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.take()
    }

    /// The batch, in the smallest of its forms; the writer is left empty,
    /// with its buffers for the next batch unless one grew past
    /// [`MAX_RETAINED_BUFFER`] (a catch-up batch): a node keeps a writer
    /// for its whole life, and a thousand simulated nodes each holding
    /// the buffers of their largest batch held a third more memory.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        let bound = self.len();
        let out = self.smallest_form();
        debug_assert!(out.len() <= bound, "len bounds what finish writes");
        if self.outgrown() {
            *self = Self::new();
        } else {
            self.clear();
        }
        out
    }

    /// Whether a byte buffer grew past [`MAX_RETAINED_BUFFER`] (the staged
    /// parents, a lane's worth of small references, are not counted).
    fn outgrown(&self) -> bool {
        let buffers = self.columns.iter().chain(&self.staged_columns);
        buffers.chain([&self.rows, &self.staged_row, &self.body]).any(|buffer| buffer.capacity() > MAX_RETAINED_BUFFER)
    }

    /// The first smallest of the forms, in the order rows, columns,
    /// compressed columns (the last tried only when the columns' body is at
    /// least [`COMPRESS_MIN_BYTES`]). The uncompressed forms' lengths are
    /// known without writing them, so only the one sent is written (and
    /// the columns' body when it is compressed).
    fn smallest_form(&mut self) -> Vec<u8> {
        let count = self.context.count;
        if count == 0 {
            return EMPTY_BATCH.to_vec();
        }
        let rows_len = 2 + self.rows.len();
        let mask = self.column_mask();
        let present = self.columns.iter().filter(|column| !column.is_empty());
        let body_len = varint_len(count)
            + varint_len(mask)
            + present.map(|column| varint_len(column.len() as u64) + column.len()).sum::<usize>();
        let columns_len = 2 + body_len;
        if body_len >= COMPRESS_MIN_BYTES {
            let mut body = std::mem::take(&mut self.body);
            body.clear();
            self.write_body(&mut body, count, mask);
            debug_assert_eq!(body.len(), body_len, "the body is as long as counted");
            // Compressing a buffer in memory fails only on allocation failure.
            let compressed = zstd::bulk::compress(&body, ZSTD_LEVEL)
                .ok()
                .filter(|compressed| 2 + varint_len(body.len() as u64) + compressed.len() < rows_len.min(columns_len));
            let out = match compressed {
                Some(compressed) => {
                    let mut framed = Vec::with_capacity(12 + compressed.len());
                    framed.extend_from_slice(&[BATCH_FORMAT_VERSION, CODEC_ZSTD]);
                    put_varint(&mut framed, body.len() as u64);
                    framed.extend_from_slice(&compressed);
                    Some(framed)
                }
                None if columns_len < rows_len => {
                    let mut columns = Vec::with_capacity(columns_len);
                    columns.extend_from_slice(&[BATCH_FORMAT_VERSION, CODEC_COLUMNS]);
                    columns.extend_from_slice(&body);
                    Some(columns)
                }
                None => None,
            };
            self.body = body;
            if let Some(out) = out {
                return out;
            }
        } else if columns_len < rows_len {
            let mut columns = Vec::with_capacity(columns_len);
            columns.extend_from_slice(&[BATCH_FORMAT_VERSION, CODEC_COLUMNS]);
            self.write_body(&mut columns, count, mask);
            return columns;
        }
        let mut rows = Vec::with_capacity(rows_len);
        rows.extend_from_slice(&[BATCH_FORMAT_VERSION, CODEC_ROWS]);
        rows.extend_from_slice(&self.rows);
        rows
    }

    /// Every form of the batch: rows, columns, and columns compressed when
    /// they are long enough to try; none for a batch of no lanes. The
    /// definition `smallest_form` is held to (the first smallest of these).
    #[cfg(test)]
    fn forms(self) -> Vec<Vec<u8>> {
        let count = self.context.count;
        if count == 0 {
            return Vec::new();
        }
        let mut rows = vec![BATCH_FORMAT_VERSION, CODEC_ROWS];
        rows.extend_from_slice(&self.rows);
        let mut columns = vec![BATCH_FORMAT_VERSION, CODEC_COLUMNS];
        put_varint(&mut columns, count);
        let mask = self.column_mask();
        put_varint(&mut columns, mask);
        for column in self.columns.iter().filter(|column| !column.is_empty()) {
            put_varint(&mut columns, column.len() as u64);
            columns.extend_from_slice(column);
        }
        let mut forms = vec![rows];
        let body = &columns[2..];
        if body.len() >= COMPRESS_MIN_BYTES
            && let Ok(compressed) = zstd::bulk::compress(body, ZSTD_LEVEL)
        {
            let mut framed = vec![BATCH_FORMAT_VERSION, CODEC_ZSTD];
            put_varint(&mut framed, body.len() as u64);
            framed.extend_from_slice(&compressed);
            forms.insert(1, framed);
        }
        forms.insert(1, columns);
        forms
    }

    /// The columns form after its codec byte: lane count, mask of the
    /// present columns, and each present column as length and bytes.
    fn write_body(&self, out: &mut Vec<u8>, count: u64, mask: u64) {
        put_varint(out, count);
        put_varint(out, mask);
        for column in self.columns.iter().filter(|column| !column.is_empty()) {
            put_varint(out, column.len() as u64);
            out.extend_from_slice(column);
        }
    }
}

/// Encodes lanes (in canonical order) as one batch.
pub fn encode_batch<O: Op>(lanes: &[(LaneId, &Lane<O>)]) -> Vec<u8> {
    let mut writer = BatchWriter::new();
    for (id, lane) in lanes {
        writer.push_within(*id, lane, usize::MAX);
    }
    writer.finish()
}

/// Writes lanes as a batch holds them, references as given (the protocol
/// fuzzer's way to forge batches).
pub fn write_batch<O: Op>(lanes: &[BatchLane<O>]) -> Vec<u8> {
    let mut writer = BatchWriter::new();
    for lane in lanes {
        writer.stage(&LaneFields {
            author: lane.author,
            seq: lane.seq,
            lamport: lane.lamport,
            parents: &lane.parents,
            ops: &lane.ops,
        });
        writer.commit(lane.author, lane.seq, lane.lamport);
    }
    writer.finish()
}

/// Decodes a batch into canonical lane bytes, in the batch's order.
pub fn decode_batch<O: Op>(bytes: &[u8]) -> Result<Vec<Vec<u8>>, DecodeError> {
    Ok(decode_batch_lanes::<O>(bytes, &Bugs::NONE)?.into_iter().map(|(_, lane, _)| lane.to_bytes()).collect())
}

/// Decodes a batch into lanes with their ids (computed from the rebuilt
/// canonical bytes) and canonical sizes.
pub(crate) fn decode_batch_lanes<O: Op>(
    bytes: &[u8],
    bugs: &Bugs,
) -> Result<Vec<(LaneId, Lane<O>, usize)>, DecodeError> {
    let lanes = read_batch::<O>(bytes)?;
    let mut out: Vec<(LaneId, Lane<O>, usize)> = Vec::with_capacity(lanes.len());
    let mut canonical = Vec::with_capacity(128);
    for (index, lane) in lanes.into_iter().enumerate() {
        let mut parents = Vec::with_capacity(lane.parents.len());
        for parent in lane.parents {
            parents.push(match parent {
                ParentRef::Id(id) => id,
                ParentRef::Back(back) => {
                    let at = (index as u64).checked_sub(back).filter(|_| back > 0).ok_or(DecodeError {
                        offset: 0,
                        kind: DecodeErrorKind::Invalid {
                            what: "parent reference",
                            rule: "must name an earlier lane of the batch",
                        },
                    })?;
                    // Planted bug `backref_off_by_one`: the distance is counted
                    // from the lane before this one, so it names one lane earlier.
                    let at = at.saturating_sub(u64::from(bugs.backref_off_by_one()));
                    out[at as usize].0
                }
            });
        }
        let lane = Lane { parents, author: lane.author, seq: lane.seq, lamport: lane.lamport, ops: lane.ops };
        canonical.clear();
        lane.encode(&mut canonical);
        out.push((crate::hash::lane_id(&canonical), lane, canonical.len()));
    }
    Ok(out)
}

/// Reads a batch into its lanes, parents as written: implied parents
/// become back-references, nothing is resolved to an id.
pub fn read_batch<O: Op>(bytes: &[u8]) -> Result<Vec<BatchLane<O>>, DecodeError> {
    let mut reader = Reader::new(bytes);
    let version = reader.byte("batch version")?;
    if version != BATCH_FORMAT_VERSION {
        return Err(reader.error(DecodeErrorKind::UnknownVersion { found: version, expected: BATCH_FORMAT_VERSION }));
    }
    if reader.remaining() == 0 {
        return Ok(Vec::new());
    }
    let decompressed;
    let body = match reader.byte("batch codec")? {
        CODEC_COLUMNS => reader.take(reader.remaining(), "batch body")?,
        CODEC_ROWS => return read_rows(reader.take(reader.remaining(), "batch rows")?),
        CODEC_ZSTD => {
            let raw_len = reader.varint("batch raw length")?;
            if raw_len > MAX_BATCH_BYTES as u64 {
                return Err(reader.error(DecodeErrorKind::TooLong {
                    what: "batch raw length",
                    found: raw_len,
                    limit: MAX_BATCH_BYTES as u64,
                }));
            }
            let compressed = reader.take(reader.remaining(), "batch body")?;
            // Decompression writes into a buffer of the stated raw length
            // and fails past it, so no frame can inflate further.
            decompressed = zstd::bulk::decompress(compressed, raw_len as usize)
                .ok()
                .filter(|body| body.len() as u64 == raw_len)
                .ok_or_else(|| {
                    reader.error(DecodeErrorKind::Invalid {
                        what: "batch body",
                        rule: "must decompress to exactly its raw length",
                    })
                })?;
            &decompressed[..]
        }
        codec => return Err(reader.error(DecodeErrorKind::UnknownTag { what: "batch codec", tag: codec })),
    };
    read_body(body)
}

/// Reads the columns of a batch body, then its lanes from them.
fn read_body<O: Op>(body: &[u8]) -> Result<Vec<BatchLane<O>>, DecodeError> {
    let mut reader = Reader::new(body);
    let count = reader.count("batch lanes", MAX_BATCH_LANES as u64, 1)?;
    let mask = reader.varint("batch columns")?;
    if count == 0 || mask >= 1 << COLUMNS {
        return Err(reader.error(DecodeErrorKind::Invalid {
            what: "batch header",
            rule: "a batch body has lanes and names only known columns",
        }));
    }
    let mut columns: [Reader<'_>; COLUMNS] = std::array::from_fn(|_| Reader::new(&[]));
    for (at, column) in columns.iter_mut().enumerate() {
        if mask & 1 << at != 0 {
            let len = reader.count(COLUMN_NAMES[at], MAX_BATCH_BYTES as u64, 1)?;
            if len == 0 {
                return Err(reader.error(DecodeErrorKind::Invalid {
                    what: COLUMN_NAMES[at],
                    rule: "a column present is not empty",
                }));
            }
            *column = Reader::new(reader.take(len, COLUMN_NAMES[at])?);
        }
    }
    reader.finish()?;
    // Every lane writes at least a byte into the authors column.
    if count > columns[AUTHORS].remaining() {
        return Err(columns[AUTHORS].error(DecodeErrorKind::Truncated { what: "lane author" }));
    }
    let mut context = Context::default();
    let mut lanes = Vec::with_capacity(count);
    for _ in 0..count {
        lanes.push(read_lane(&mut columns, &mut context)?);
    }
    for column in &columns {
        column.finish()?;
    }
    Ok(lanes)
}

/// Reads a batch written as rows: lanes one after another to the end.
fn read_rows<O: Op>(rows: &[u8]) -> Result<Vec<BatchLane<O>>, DecodeError> {
    let mut row = Row(Reader::new(rows));
    if row.0.remaining() == 0 {
        return Err(row
            .0
            .error(DecodeErrorKind::Invalid { what: "batch rows", rule: "an empty batch is the version byte alone" }));
    }
    let mut context = Context::default();
    let mut lanes = Vec::new();
    while row.0.remaining() > 0 {
        if lanes.len() >= MAX_BATCH_LANES {
            return Err(row.0.error(DecodeErrorKind::TooLong {
                what: "batch lanes",
                found: lanes.len() as u64 + 1,
                limit: MAX_BATCH_LANES as u64,
            }));
        }
        lanes.push(read_lane(&mut row, &mut context)?);
    }
    Ok(lanes)
}

/// Where a lane's fields are read from: a batch's columns, or one row.
trait Fields<'a> {
    fn column(&mut self, column: usize) -> &mut Reader<'a>;
    /// Bytes left for ops: a bound on how many a lane can hold.
    fn op_bytes(&self) -> usize;
    fn read_op<O: Op>(&mut self, lane: Dot) -> Result<O, DecodeError>;
}

impl<'a> Fields<'a> for [Reader<'a>; COLUMNS] {
    fn column(&mut self, column: usize) -> &mut Reader<'a> {
        &mut self[column]
    }

    fn op_bytes(&self) -> usize {
        self[OPS..].iter().map(Reader::remaining).sum()
    }

    fn read_op<O: Op>(&mut self, lane: Dot) -> Result<O, DecodeError> {
        let [.., op0, op1, op2, op3] = self;
        let mut columns = [op0.clone(), op1.clone(), op2.clone(), op3.clone()];
        let op = O::decode_batched(lane, &mut columns)?;
        [*op0, *op1, *op2, *op3] = columns;
        Ok(op)
    }
}

/// One row of fields, ops in their canonical encoding.
struct Row<'a>(Reader<'a>);

impl<'a> Fields<'a> for Row<'a> {
    fn column(&mut self, _: usize) -> &mut Reader<'a> {
        &mut self.0
    }

    fn op_bytes(&self) -> usize {
        self.0.remaining()
    }

    fn read_op<O: Op>(&mut self, _: Dot) -> Result<O, DecodeError> {
        O::decode(&mut self.0)
    }
}

/// Reads the next lane from the columns.
fn read_lane<'a, F: Fields<'a>, O: Op>(columns: &mut F, context: &mut Context) -> Result<BatchLane<O>, DecodeError> {
    let reader = columns.column(AUTHORS);
    let author = i64::from(context.previous_author) + reader.signed("lane author")?;
    let author = NodeId(u32::try_from(author).map_err(|_| {
        reader.error(DecodeErrorKind::Invalid { what: "lane author", rule: "must be a 32-bit node id" })
    })?);
    let seq = context.expected_seq(author).wrapping_add(columns.column(SEQS).signed("lane seq")? as u64);
    let lamport =
        context.previous_lamport.wrapping_add(1).wrapping_add(columns.column(LAMPORTS).signed("lane lamport")? as u64);
    let index = context.count;
    let parents = match columns.column(SHAPES).varint("lane parent shape")? {
        SHAPE_AUTHOR_PREVIOUS => {
            let at = context.author_previous(author).ok_or_else(|| {
                columns.column(SHAPES).error(DecodeErrorKind::Invalid {
                    what: "lane parent shape",
                    rule: "the author has no earlier lane in the batch",
                })
            })?;
            vec![ParentRef::Back(index - at)]
        }
        SHAPE_BATCH_PREVIOUS if index > 0 => vec![ParentRef::Back(1)],
        SHAPE_BATCH_PREVIOUS => {
            return Err(columns.column(SHAPES).error(DecodeErrorKind::Invalid {
                what: "lane parent shape",
                rule: "the first lane has no previous lane",
            }));
        }
        shape => {
            let count = shape - SHAPE_LIST;
            if count > MAX_PARENTS as u64 {
                return Err(columns.column(SHAPES).error(DecodeErrorKind::TooLong {
                    what: "lane parents",
                    found: count,
                    limit: MAX_PARENTS as u64,
                }));
            }
            let mut parents = Vec::with_capacity(count as usize);
            for _ in 0..count {
                parents.push(match columns.column(REFS).varint("parent reference")? {
                    REF_ID => ParentRef::Id(LaneId(columns.column(IDS).array32("parent id")?)),
                    back => ParentRef::Back(back),
                });
            }
            parents
        }
    };
    let op_count = columns.column(OP_COUNTS).varint("lane ops")?;
    if op_count > MAX_OPS_PER_LANE as u64 {
        return Err(columns.column(OP_COUNTS).error(DecodeErrorKind::TooLong {
            what: "lane ops",
            found: op_count,
            limit: MAX_OPS_PER_LANE as u64,
        }));
    }
    let dot = Dot { author, seq };
    // A capacity hint only: each op reads at least one byte.
    let mut ops = Vec::with_capacity((op_count as usize).min(columns.op_bytes()));
    for _ in 0..op_count {
        ops.push(columns.read_op(dot)?);
    }
    context.advance(author, seq, lamport);
    Ok(BatchLane { author, seq, lamport, parents, ops })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::WorldOp;

    fn chain(count: u64) -> Vec<(LaneId, Lane<WorldOp>)> {
        let mut lanes: Vec<(LaneId, Lane<WorldOp>)> = Vec::new();
        for seq in 1..=count {
            let mut parents: Vec<LaneId> = lanes.last().map(|(id, _)| vec![*id]).unwrap_or_default();
            if seq % 3 == 0 {
                parents.push(LaneId([seq as u8; 32]));
            }
            let lane = Lane::new(
                NodeId((seq % 2) as u32),
                seq,
                seq + 1,
                parents,
                vec![WorldOp::Add { key: seq as u32, delta: -1 }],
            );
            lanes.push((lane.id(), lane));
        }
        lanes
    }

    #[test]
    fn batches_round_trip_to_the_canonical_bytes_and_are_smaller() {
        let lanes = chain(50);
        let refs: Vec<(LaneId, &Lane<WorldOp>)> = lanes.iter().map(|(id, lane)| (*id, lane)).collect();
        let batch = encode_batch(&refs);
        let decoded = decode_batch::<WorldOp>(&batch).unwrap();
        let canonical: Vec<Vec<u8>> = lanes.iter().map(|(_, lane)| lane.to_bytes()).collect();
        assert_eq!(decoded, canonical);
        let canonical_bytes: usize = canonical.iter().map(Vec::len).sum();
        assert!(batch.len() * 2 < canonical_bytes, "{} vs {canonical_bytes}", batch.len());
    }

    #[test]
    fn bad_batches_are_errors_not_panics() {
        for lanes in [chain(10), chain(200)] {
            let refs: Vec<(LaneId, &Lane<WorldOp>)> = lanes.iter().map(|(id, lane)| (*id, lane)).collect();
            let mut writer = BatchWriter::new();
            refs.iter().for_each(|(id, lane)| assert!(writer.push_within(*id, lane, usize::MAX)));
            for batch in writer.forms() {
                // Rows cut between lanes are a shorter batch; any other cut
                // but the bare version byte (the empty batch) is an error.
                for len in 0..batch.len() {
                    match decode_batch::<WorldOp>(&batch[..len]) {
                        Ok(decoded) if batch[1] == CODEC_ROWS => assert!(decoded.len() < lanes.len()),
                        decoded => assert_eq!(decoded.is_ok(), len == 1, "form {} cut to {len} bytes", batch[1]),
                    }
                }
                for position in 0..batch.len() {
                    let mut bad = batch.clone();
                    bad[position] ^= 0x5a;
                    let _ = decode_batch::<WorldOp>(&bad);
                }
            }
        }
        // A back-reference before the start of the batch.
        let forged = BatchLane {
            author: NodeId(1),
            seq: 1,
            lamport: 1,
            parents: vec![ParentRef::Back(3)],
            ops: vec![WorldOp::Add { key: 1, delta: 1 }],
        };
        assert!(decode_batch::<WorldOp>(&write_batch(&[forged])).is_err());
    }

    #[test]
    fn long_batches_are_compressed_and_short_ones_are_not() {
        let lanes = chain(200);
        let refs: Vec<(LaneId, &Lane<WorldOp>)> = lanes.iter().map(|(id, lane)| (*id, lane)).collect();
        let long = encode_batch(&refs);
        assert_eq!(long[1], CODEC_ZSTD);
        let short = encode_batch(&refs[..1]);
        assert_eq!(short[1], CODEC_ROWS);
        let mut writer = BatchWriter::new();
        for (id, lane) in &refs {
            assert!(writer.push_within(*id, lane, usize::MAX));
        }
        assert!(writer.len() > long.len(), "the raw length bounds the finished batch");
    }

    /// The first smallest of `forms`, as the writer chose before it wrote
    /// only the form it sends.
    fn first_smallest(writer: &BatchWriter) -> Vec<u8> {
        let forms = writer.clone().forms();
        forms
            .into_iter()
            .reduce(|best, form| if form.len() < best.len() { form } else { best })
            .unwrap_or(EMPTY_BATCH.to_vec())
    }

    #[test]
    fn a_reused_writer_sends_the_first_smallest_form_as_a_fresh_one_does() {
        let mut reused = BatchWriter::new();
        // Empty, rows, columns and compressed columns, in a mixed order.
        for count in [0, 1, 200, 3, 0, 40, 200, 10, 1] {
            let lanes = chain(count);
            let mut fresh = BatchWriter::new();
            for (id, lane) in &lanes {
                assert!(fresh.push_within(*id, lane, usize::MAX));
                assert!(reused.push_within(*id, lane, usize::MAX));
            }
            let expected = first_smallest(&fresh);
            assert_eq!(reused.clone().finish(), expected, "{count} lanes, the reused writer's clone");
            assert_eq!(reused.take(), expected, "{count} lanes, reused");
            assert_eq!(fresh.finish(), expected, "{count} lanes, fresh");
        }
        assert_eq!(reused.take(), EMPTY_BATCH, "a taken writer is empty");
        assert_eq!(BatchWriter::new().finish(), EMPTY_BATCH);
    }

    #[test]
    fn a_writer_keeps_the_buffers_of_ordinary_batches_and_drops_those_of_a_catch_up() {
        let mut writer = BatchWriter::new();
        // An ordinary batch: a hundred lanes.
        for (id, lane) in &chain(100) {
            assert!(writer.push_within(*id, lane, usize::MAX));
        }
        let rows = writer.rows.capacity();
        writer.take();
        assert!(rows > 0 && writer.rows.capacity() == rows, "a hundred lanes' rows ({rows} bytes) are kept");
        // At the bound exactly, kept.
        writer.rows = Vec::with_capacity(MAX_RETAINED_BUFFER);
        writer.take();
        assert_eq!(writer.rows.capacity(), MAX_RETAINED_BUFFER, "a buffer at the bound is kept");
        let lanes = chain(2000);
        for (id, lane) in &lanes {
            assert!(writer.push_within(*id, lane, usize::MAX));
        }
        assert!(writer.outgrown(), "2,000 lanes outgrow the kept buffers");
        let mut fresh = BatchWriter::new();
        for (id, lane) in &lanes {
            assert!(fresh.push_within(*id, lane, usize::MAX));
        }
        assert_eq!(writer.take(), fresh.finish(), "the batch is the same whatever is kept");
        assert_eq!(writer.rows.capacity(), 0, "a catch-up batch's buffers are dropped");
        assert_eq!(writer.take(), EMPTY_BATCH);
    }

    #[test]
    fn a_body_is_never_decompressed_past_its_stated_length() {
        let frame = zstd::bulk::compress(&[0; 4096], 3).unwrap();
        let mut forged = vec![BATCH_FORMAT_VERSION, CODEC_ZSTD];
        put_varint(&mut forged, MAX_BATCH_BYTES as u64 + 1);
        forged.extend_from_slice(&frame);
        let error = read_batch::<WorldOp>(&forged).unwrap_err();
        assert!(matches!(error.kind, DecodeErrorKind::TooLong { .. }), "{error}");
        // A frame longer than the raw length it states.
        let mut forged = vec![BATCH_FORMAT_VERSION, CODEC_ZSTD];
        put_varint(&mut forged, 100);
        forged.extend_from_slice(&frame);
        let error = read_batch::<WorldOp>(&forged).unwrap_err();
        assert!(matches!(error.kind, DecodeErrorKind::Invalid { what: "batch body", .. }), "{error}");
    }

    proptest::proptest! {
        /// Whatever the references a forged batch holds, reading it back
        /// gives them as written.
        #[test]
        fn written_lanes_read_back_as_written(
            lanes in proptest::collection::vec(
                (0u32..4, 0u64..6, 0u64..9, proptest::collection::vec(0u64..4, 0..3), 0usize..3),
                1..12,
            )
        ) {
            let lanes: Vec<BatchLane<WorldOp>> = lanes
                .into_iter()
                .map(|(author, seq, lamport, backs, ops)| BatchLane {
                    author: NodeId(author),
                    seq,
                    lamport,
                    parents: backs
                        .into_iter()
                        .map(|back| if back == 0 { ParentRef::Id(LaneId([7; 32])) } else { ParentRef::Back(back) })
                        .collect(),
                    ops: (0..ops).map(|key| WorldOp::Insert { key: key as u32, element: seq }).collect(),
                })
                .collect();
            let read = read_batch::<WorldOp>(&write_batch(&lanes)).unwrap();
            proptest::prop_assert_eq!(&read, &lanes);
            let mut writer = BatchWriter::new();
            for lane in &lanes {
                writer.stage(&LaneFields { author: lane.author, seq: lane.seq, lamport: lane.lamport, parents: &lane.parents, ops: &lane.ops });
                writer.commit(lane.author, lane.seq, lane.lamport);
            }
            proptest::prop_assert_eq!(writer.clone().take(), first_smallest(&writer));
            for form in writer.forms() {
                proptest::prop_assert_eq!(&read_batch::<WorldOp>(&form).unwrap(), &lanes, "form {}", form[1]);
            }
        }
    }
}
