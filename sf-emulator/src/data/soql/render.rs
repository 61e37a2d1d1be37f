//! Rendering query results straight into byte buffers: REST JSON records (with `attributes`
//! and nested parent objects) and Bulk CSV rows (every value quoted, null as `""`). Written for
//! speed: no intermediate `serde_json::Value`, hand-rolled number and date formatting.

use std::io::Write;
use std::sync::Arc;

use chrono::Datelike;

use super::bind::FieldRef;
use super::eval::Fields;
use super::exec::{parent, Row};
use super::user::VirtualUser;
use crate::data::schema::{FieldType, ObjectSchema};
use crate::data::store::{Record, Store};
use crate::data::value::Value;

/// The shape of a JSON record: fields and nested parents in SELECT order.
#[derive(Debug, Clone)]
pub enum Node {
    Field {
        field: usize,
        name: String,
        ftype: FieldType,
    },
    Parent {
        rel_name: String,
        ref_field: usize,
        target_index: usize,
        target: Arc<ObjectSchema>,
        user: Option<Arc<VirtualUser>>,
        children: Vec<Node>,
    },
}

/// Groups the SELECT columns into a tree so that `Account.Name, Account.Industry` share one
/// nested `"Account"` object.
pub fn tree(cols: &[FieldRef]) -> Vec<Node> {
    let mut root = Vec::new();
    for c in cols {
        let mut level = &mut root;
        for h in &c.hops {
            let pos = level.iter().position(
                |n| matches!(n, Node::Parent { rel_name, .. } if rel_name.eq_ignore_ascii_case(&h.rel_name)),
            );
            let i = match pos {
                Some(i) => i,
                None => {
                    level.push(Node::Parent {
                        rel_name: h.rel_name.clone(),
                        ref_field: h.ref_field,
                        target_index: h.target_index,
                        target: h.target.clone(),
                        user: h.user.clone(),
                        children: Vec::new(),
                    });
                    level.len() - 1
                }
            };
            let Node::Parent { children, .. } = &mut level[i] else {
                unreachable!("position() matched a Parent")
            };
            level = children;
        }
        let dup = level
            .iter()
            .any(|n| matches!(n, Node::Field { field, .. } if *field == c.field));
        if !dup {
            level.push(Node::Field {
                field: c.field,
                name: c.name.clone(),
                ftype: c.ftype.clone(),
            });
        }
    }
    root
}

/// Writes one REST JSON record: `{"attributes":{"type","url"},...}`.
pub fn write_json_record(
    out: &mut Vec<u8>,
    store: &Store,
    object: &ObjectSchema,
    rec: &Record,
    nodes: &[Node],
    version: &str,
) {
    out.extend_from_slice(b"{\"attributes\":{\"type\":");
    json_str(out, &object.name);
    out.extend_from_slice(b",\"url\":\"/services/data/v");
    out.extend_from_slice(version.as_bytes());
    out.extend_from_slice(b"/sobjects/");
    out.extend_from_slice(object.name.as_bytes());
    out.push(b'/');
    if let Some(id) = rec.get(object.sys.id).as_str() {
        out.extend_from_slice(id.as_bytes());
    }
    out.extend_from_slice(b"\"}");
    for n in nodes {
        out.push(b',');
        match n {
            Node::Field { field, name, ftype } => {
                json_str(out, name);
                out.push(b':');
                if ftype.is_compound() {
                    compound_json(out, object, rec, *field);
                } else {
                    json_value(out, rec.get(*field));
                }
            }
            Node::Parent {
                rel_name,
                ref_field,
                target_index,
                target,
                user,
                children,
            } => {
                json_str(out, rel_name);
                out.push(b':');
                match parent(store, rec, *ref_field, *target_index, user.as_deref()) {
                    Some(p) => write_json_record(out, store, target, p, children, version),
                    None => out.extend_from_slice(b"null"),
                }
            }
        }
    }
    out.push(b'}');
}

/// An address/location field as the nested object REST returns (built from its components,
/// null when they are all null), as the record renderer of the REST API does it.
fn compound_json(out: &mut Vec<u8>, object: &ObjectSchema, rec: &Record, field: usize) {
    let v = crate::data::render::field_json(object, rec, field);
    let _ = serde_json::to_writer(&mut *out, &v);
}

/// A JSON string literal.
pub fn json_str(out: &mut Vec<u8>, s: &str) {
    // Fast path: nothing to escape.
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// A value as REST JSON (`+0000` datetimes).
pub fn json_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
        Value::Double(d) => {
            if d.is_finite() {
                let _ = serde_json::to_writer(&mut *out, d);
            } else {
                out.extend_from_slice(b"null");
            }
        }
        Value::String(s) => json_str(out, s),
        Value::Date(d) => {
            out.push(b'"');
            date(out, d.year(), d.month(), d.day());
            out.push(b'"');
        }
        Value::DateTime(ms) => {
            out.push(b'"');
            datetime(out, *ms, b"+0000");
            out.push(b'"');
        }
        Value::Time(ms) => {
            out.push(b'"');
            time(out, *ms);
            out.push(b'"');
        }
    }
}

/// Rows per run of `in_storage_order`.
const RUN: usize = 64;

/// Renders the records `ids` into `out` in the order given, while reading them in Id order
/// within each run of 64: unordered results come shuffled within small runs of the access
/// order (`exec::shuffle_by`), and reading records out of storage order costs cache misses
/// per record, so each run is rendered in Id order into a scratch buffer and copied out in
/// the order asked. The records of a run are all looked up (`find`) before any is rendered:
/// the lookups are independent hash-table probes, and issued back to back the processor
/// overlaps their cache misses instead of waiting for each one after rendering a row.
/// `find(id)` is the record (`None`: no such record, skipped); `each(record, buf)` appends
/// its row to `buf`; `before_row(out)` runs before each row lands in `out` (separators, row
/// offsets).
pub fn in_storage_order<'r, R: ?Sized + 'r>(
    ids: &[crate::data::ids::SfId],
    out: &mut Vec<u8>,
    find: impl Fn(&crate::data::ids::SfId) -> Option<&'r R>,
    mut each: impl FnMut(&'r R, &mut Vec<u8>),
    mut before_row: impl FnMut(&mut Vec<u8>),
) {
    let mut scratch = Vec::new();
    let mut spans: Vec<Option<(usize, usize)>> = Vec::with_capacity(RUN);
    let mut by_id: Vec<(u128, u16, usize)> = Vec::with_capacity(RUN);
    let mut found: Vec<(usize, Option<&'r R>)> = Vec::with_capacity(RUN);
    for run in ids.chunks(RUN) {
        scratch.clear();
        spans.clear();
        spans.resize(run.len(), None);
        by_id.clear();
        by_id.extend(run.iter().enumerate().map(|(i, id)| {
            let (head, tail) = id_key(id);
            (head, tail, i)
        }));
        by_id.sort_unstable();
        found.clear();
        found.extend(by_id.iter().map(|&(_, _, i)| (i, find(&run[i]))));
        for &(i, rec) in &found {
            if let Some(rec) = rec {
                let start = scratch.len();
                each(rec, &mut scratch);
                spans[i] = Some((start, scratch.len()));
            }
        }
        for (a, b) in spans.iter().flatten() {
            before_row(out);
            out.extend_from_slice(&scratch[*a..*b]);
        }
    }
}

/// An Id as integers ordered as the Id: its first 16 bytes big-endian, then the last two
/// (two integer compares instead of a byte-string compare per step of a sort).
fn id_key(id: &crate::data::ids::SfId) -> (u128, u16) {
    let b = id.as_str().as_bytes();
    let mut head = [0u8; 16];
    let mut tail = [0u8; 2];
    if b.len() == 18 {
        head.copy_from_slice(&b[..16]);
        tail.copy_from_slice(&b[16..]);
    }
    (u128::from_be_bytes(head), u16::from_be_bytes(tail))
}

/// A CSV header row: `"Id","Name","Account.Name"` + `\n`.
pub fn write_csv_header(out: &mut Vec<u8>, cols: &[FieldRef], delimiter: u8, line_ending: &[u8]) {
    for (i, c) in cols.iter().enumerate() {
        if i > 0 {
            out.push(delimiter);
        }
        csv_text(out, &c.dotted());
    }
    out.extend_from_slice(line_ending);
}

/// A CSV data row: every value quoted, null as `""`.
pub fn write_csv_row(
    out: &mut Vec<u8>,
    store: &Store,
    rec: &Record,
    cols: &[FieldRef],
    delimiter: u8,
    line_ending: &[u8],
) {
    let row = Row { store, rec };
    for (i, c) in cols.iter().enumerate() {
        if i > 0 {
            out.push(delimiter);
        }
        csv_value(out, row.get(c));
    }
    out.extend_from_slice(line_ending);
}

/// A quoted CSV text cell (`"` doubled).
pub fn csv_text(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    if s.as_bytes().contains(&b'"') {
        for b in s.bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
    } else {
        out.extend_from_slice(s.as_bytes());
    }
    out.push(b'"');
}

/// A value as a quoted CSV cell (`Z` datetimes, `true`/`false`, null as `""`).
pub fn csv_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::String(s) => csv_text(out, s),
        Value::Null => out.extend_from_slice(b"\"\""),
        _ => {
            out.push(b'"');
            plain_value(out, v);
            out.push(b'"');
        }
    }
}

/// A non-string value as plain text (the CSV/XML form).
pub fn plain_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => {}
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
        Value::Double(d) => {
            if d.fract() == 0.0 && d.abs() < 1e15 {
                out.extend_from_slice(itoa::Buffer::new().format(*d as i64).as_bytes());
            } else {
                let _ = write!(out, "{d}");
            }
        }
        Value::String(s) => out.extend_from_slice(s.as_bytes()),
        Value::Date(d) => date(out, d.year(), d.month(), d.day()),
        Value::DateTime(ms) => datetime(out, *ms, b"Z"),
        Value::Time(ms) => time(out, *ms),
    }
}

fn pad(out: &mut Vec<u8>, n: u32, width: usize) {
    let mut buf = [b'0'; 10];
    let mut v = n;
    for i in (0..width).rev() {
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&buf[..width]);
}

fn date(out: &mut Vec<u8>, y: i32, m: u32, d: u32) {
    if (0..=9999).contains(&y) {
        pad(out, y as u32, 4);
    } else {
        let _ = write!(out, "{y:04}");
    }
    out.push(b'-');
    pad(out, m, 2);
    out.push(b'-');
    pad(out, d, 2);
}

/// Civil date of a day count since 1970-01-01 (Hinnant's algorithm).
fn civil(days: i64) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y as i32, m, d)
}

/// `YYYY-MM-DDThh:mm:ss.SSS` + `zone`.
pub fn datetime(out: &mut Vec<u8>, ms: i64, zone: &[u8]) {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000) as u32;
    let (y, m, d) = civil(days);
    date(out, y, m, d);
    out.push(b'T');
    time_of_day(out, rem);
    out.extend_from_slice(zone);
}

fn time_of_day(out: &mut Vec<u8>, ms: u32) {
    pad(out, ms / 3_600_000, 2);
    out.push(b':');
    pad(out, ms / 60_000 % 60, 2);
    out.push(b':');
    pad(out, ms / 1000 % 60, 2);
    out.push(b'.');
    pad(out, ms % 1000, 3);
}

fn time(out: &mut Vec<u8>, ms: u32) {
    time_of_day(out, ms);
    out.push(b'Z');
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn datetime_formatting_matches_chrono() {
        for ms in [
            0i64,
            1_704_164_645_123,
            951_782_400_000,
            -86_400_001,
            4_102_444_799_999,
        ] {
            let mut out = Vec::new();
            datetime(&mut out, ms, b"Z");
            let want = Utc
                .timestamp_millis_opt(ms)
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string();
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }

    #[test]
    fn csv_cells_are_quoted() {
        let mut out = Vec::new();
        csv_value(&mut out, &Value::str("say \"hi\", ok"));
        out.push(b',');
        csv_value(&mut out, &Value::Null);
        out.push(b',');
        csv_value(&mut out, &Value::Double(2.5));
        out.push(b',');
        csv_value(&mut out, &Value::Double(1000.0));
        out.push(b',');
        csv_value(&mut out, &Value::Bool(true));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"say \"\"hi\"\", ok\",\"\",\"2.5\",\"1000\",\"true\""
        );
    }
}

#[cfg(test)]
mod run_tests {
    use super::*;
    use crate::data::ids::SfId;

    #[test]
    fn runs_are_read_in_id_order_and_written_in_the_order_asked() {
        let ids: Vec<SfId> = [5u64, 2, 9, 1, 7]
            .iter()
            .map(|n| SfId::generate("001", *n))
            .collect();
        let mut read = Vec::new();
        let mut out = Vec::new();
        let mut rows = 0;
        // ids[2] is not found (a purged record): skipped.
        in_storage_order(
            &ids,
            &mut out,
            |id| ids.iter().find(|known| *known == id && **known != ids[2]),
            |id: &SfId, buf| {
                read.push(*id);
                buf.extend_from_slice(&id.as_str().as_bytes()[12..15]);
            },
            |out| {
                if rows > 0 {
                    out.push(b',');
                }
                rows += 1;
            },
        );
        let mut sorted: Vec<SfId> = ids.iter().filter(|id| **id != ids[2]).copied().collect();
        sorted.sort();
        assert_eq!(read, sorted);
        let want: Vec<String> = [0, 1, 3, 4]
            .iter()
            .map(|&i| ids[i].as_str()[12..15].to_string())
            .collect();
        assert_eq!(String::from_utf8(out).unwrap(), want.join(","));
    }
}
