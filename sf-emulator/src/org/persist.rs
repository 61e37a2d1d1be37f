//! `--data-file` persistence: the org's records (live and recycle bin), Id counters, purge log,
//! emulated clock and CDC replay position saved to one binary file, loaded at start, saved
//! periodically when data changed and on shutdown. Saves are atomic (temp file in the same
//! directory, fsync, rename). The store's lock counts write acquisitions
//! (`data::tracked`), so the saver knows when data changed.
//!
//! File format (little-endian):
//! ```text
//! "SFEMUDB\0"  u32 version (1)
//! u64 n, n bytes of JSON header: {"saved_at","clock":{"offset_ms","last_stamp_ms"},
//!     "cdc":{"last_replay_id","commit_number"},
//!     "tables":[{"object","key_prefix","fields":[names…],"records",
//!                "next_counter","purged":[[ms,"Id"],…]}]}
//! per table, `records` times: u16 k, then k × (u16 field index into "fields", u8 tag, payload)
//!     tags: 0 false, 1 true, 2 i64, 3 f64, 4 string (u32 len + UTF-8), 5 date (i32 days
//!     from 0001-01-01), 6 datetime (i64 ms), 7 time (u32 ms)
//! "SFEMUEND"  u64 total records
//! ```
//! Fields are matched by name on load, so a file survives describe changes (unknown objects
//! and fields are skipped and reported). CDC events themselves are not saved: after a restart
//! replay ids continue from the saved position, and a client resuming from an older replay id
//! gets the invalid-replay-id error, as after retention expiry.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::data::ids::SfId;
use crate::data::store::Record;
use crate::data::value::Value;
use crate::org::Org;

const MAGIC: &[u8; 8] = b"SFEMUDB\0";
const END: &[u8; 8] = b"SFEMUEND";
const VERSION: u32 = 1;
/// Longest string or header accepted on load (a damaged length must not allocate wildly).
const MAX_CHUNK: u64 = 1 << 30;

/// Why loading or saving failed.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not an sf-emulator data file")]
    NotDataFile { path: PathBuf },
    #[error("{path} has data file version {found}; this sf-emulator reads version {VERSION}")]
    Version { path: PathBuf, found: u32 },
    #[error("{path} is damaged: {what}")]
    Damaged { path: PathBuf, what: String },
}

#[derive(Serialize, Deserialize)]
struct Header {
    saved_at: String,
    clock: ClockState,
    cdc: CdcState,
    tables: Vec<TableHeader>,
}

#[derive(Serialize, Deserialize)]
struct ClockState {
    offset_ms: i64,
    last_stamp_ms: i64,
}

#[derive(Serialize, Deserialize)]
struct CdcState {
    last_replay_id: i64,
    commit_number: i64,
}

#[derive(Serialize, Deserialize)]
struct TableHeader {
    object: String,
    key_prefix: String,
    fields: Vec<String>,
    records: u64,
    next_counter: u64,
    purged: Vec<(i64, String)>,
}

/// What a save or load covered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub records: u64,
    pub bytes: u64,
    /// Objects in the file that this org's schema does not have (load only).
    pub skipped_objects: Vec<String>,
    /// `Object.Field` in the file that this org's schema does not have (load only).
    pub skipped_fields: Vec<String>,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> PersistError + '_ {
    move |source| PersistError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

fn put_value(w: &mut impl Write, v: &Value) -> std::io::Result<()> {
    match v {
        Value::Null => unreachable_null(),
        Value::Bool(false) => w.write_all(&[0]),
        Value::Bool(true) => w.write_all(&[1]),
        Value::Int(i) => {
            w.write_all(&[2])?;
            w.write_all(&i.to_le_bytes())
        }
        Value::Double(d) => {
            w.write_all(&[3])?;
            w.write_all(&d.to_le_bytes())
        }
        Value::String(s) => {
            w.write_all(&[4])?;
            w.write_all(&(s.len() as u32).to_le_bytes())?;
            w.write_all(s.as_bytes())
        }
        Value::Date(d) => {
            w.write_all(&[5])?;
            w.write_all(&d.num_days_from_ce().to_le_bytes())
        }
        Value::DateTime(ms) => {
            w.write_all(&[6])?;
            w.write_all(&ms.to_le_bytes())
        }
        Value::Time(t) => {
            w.write_all(&[7])?;
            w.write_all(&t.to_le_bytes())
        }
    }
}

/// Records never hold `Null` (a sparse record only stores set values); writing none keeps the
/// format total.
fn unreachable_null() -> std::io::Result<()> {
    Err(std::io::Error::other("null value in a stored record"))
}

/// Saves the org to `path` atomically. Holds the store's read lock while records are
/// written (writers wait), not while the file is synced.
pub fn save(org: &Org, path: &Path) -> Result<Stats, PersistError> {
    // One save at a time per process (periodic, shutdown and on-demand saves share the
    // temp file).
    static SAVING: parking_lot::Mutex<()> = parking_lot::Mutex::new(());
    let _one = SAVING.lock();
    let tmp = tmp_path(path);
    let file = File::create(&tmp).map_err(io_err(&tmp))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let records = {
        let st = org.read();
        if let Some(t) = st
            .tables
            .iter()
            .find(|t| t.object.fields.len() > u16::MAX as usize)
        {
            return Err(PersistError::Damaged {
                path: path.to_path_buf(),
                what: format!("{} has more fields than the format holds", t.object.name),
            });
        }
        let (offset_ms, last_stamp_ms) = org.clock_state();
        let (last_replay_id, commit_number) = org.cdc().position();
        let header = Header {
            saved_at: chrono::Utc::now().to_rfc3339(),
            clock: ClockState {
                offset_ms,
                last_stamp_ms,
            },
            cdc: CdcState {
                last_replay_id,
                commit_number,
            },
            tables: st
                .tables
                .iter()
                .map(|t| TableHeader {
                    object: t.object.name.clone(),
                    key_prefix: t.object.key_prefix.clone(),
                    fields: t.object.fields.iter().map(|f| f.name.clone()).collect(),
                    records: t.total_count() as u64,
                    next_counter: t.next_counter(),
                    purged: t
                        .iter_purged(i64::MIN, i64::MAX)
                        .map(|(id, ms)| (ms, id.to_string()))
                        .collect(),
                })
                .collect(),
        };
        let json = serde_json::to_vec(&header).map_err(|e| PersistError::Damaged {
            path: path.to_path_buf(),
            what: e.to_string(),
        })?;
        let write_all = |w: &mut BufWriter<File>| -> std::io::Result<u64> {
            let mut n = 0u64;
            w.write_all(MAGIC)?;
            w.write_all(&VERSION.to_le_bytes())?;
            w.write_all(&(json.len() as u64).to_le_bytes())?;
            w.write_all(&json)?;
            for t in &st.tables {
                for (_, r) in t.iter() {
                    let vals: Vec<(usize, &Value)> = r.iter().collect();
                    w.write_all(&(vals.len() as u16).to_le_bytes())?;
                    for (i, v) in vals {
                        w.write_all(&(i as u16).to_le_bytes())?;
                        put_value(w, v)?;
                    }
                    n += 1;
                }
            }
            w.write_all(END)?;
            w.write_all(&n.to_le_bytes())?;
            Ok(n)
        };
        write_all(&mut w).map_err(io_err(&tmp))?
    };
    let file = w.into_inner().map_err(|e| io_err(&tmp)(e.into_error()))?;
    file.sync_all().map_err(io_err(&tmp))?;
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    drop(file);
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Make the rename durable; not every platform lets a directory be opened.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(Stats {
        records,
        bytes,
        ..Stats::default()
    })
}

struct Reader<'p> {
    r: BufReader<File>,
    path: &'p Path,
    bytes: u64,
    /// Short strings seen so far, shared like seeded values (picklists, cities, names).
    interned: HashSet<Arc<str>>,
    scratch: Vec<u8>,
}

/// Strings up to this length are shared when they repeat.
const INTERN_MAX_LEN: usize = 48;
/// At most this many distinct strings are kept for sharing.
const INTERN_MAX: usize = 200_000;

impl Reader<'_> {
    fn damaged(&self, what: impl Into<String>) -> PersistError {
        PersistError::Damaged {
            path: self.path.to_path_buf(),
            what: what.into(),
        }
    }

    fn exact<const N: usize>(&mut self) -> Result<[u8; N], PersistError> {
        let mut b = [0u8; N];
        self.r.read_exact(&mut b).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                self.damaged(format!("truncated after {} bytes", self.bytes))
            } else {
                io_err(self.path)(e)
            }
        })?;
        self.bytes += N as u64;
        Ok(b)
    }

    fn bytes_vec(&mut self, n: u64) -> Result<Vec<u8>, PersistError> {
        if n > MAX_CHUNK {
            return Err(self.damaged(format!(
                "a length of {n} bytes at offset {} is not plausible",
                self.bytes
            )));
        }
        let mut v = vec![0u8; n as usize];
        self.r.read_exact(&mut v).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                self.damaged(format!("truncated after {} bytes", self.bytes))
            } else {
                io_err(self.path)(e)
            }
        })?;
        self.bytes += n;
        Ok(v)
    }

    fn u16(&mut self) -> Result<u16, PersistError> {
        self.exact::<2>().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Result<u32, PersistError> {
        self.exact::<4>().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, PersistError> {
        self.exact::<8>().map(u64::from_le_bytes)
    }

    fn value(&mut self) -> Result<Value, PersistError> {
        let [tag] = self.exact::<1>()?;
        Ok(match tag {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            2 => Value::Int(i64::from_le_bytes(self.exact()?)),
            3 => Value::Double(f64::from_le_bytes(self.exact()?)),
            4 => {
                let n = self.u32()? as u64;
                if n as usize > INTERN_MAX_LEN {
                    let b = self.bytes_vec(n)?;
                    let s = String::from_utf8(b).map_err(|_| {
                        self.damaged(format!("invalid UTF-8 before {}", self.bytes))
                    })?;
                    return Ok(Value::String(s.into()));
                }
                let mut buf = std::mem::take(&mut self.scratch);
                buf.resize(n as usize, 0);
                self.r.read_exact(&mut buf).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::UnexpectedEof {
                        self.damaged(format!("truncated after {} bytes", self.bytes))
                    } else {
                        io_err(self.path)(e)
                    }
                })?;
                self.bytes += n;
                let s = std::str::from_utf8(&buf)
                    .map_err(|_| self.damaged(format!("invalid UTF-8 before {}", self.bytes)))?;
                let shared = match self.interned.get(s) {
                    Some(a) => a.clone(),
                    None => {
                        let a: Arc<str> = s.into();
                        if self.interned.len() < INTERN_MAX {
                            self.interned.insert(a.clone());
                        }
                        a
                    }
                };
                self.scratch = buf;
                Value::String(shared)
            }
            5 => {
                let days = i32::from_le_bytes(self.exact()?);
                Value::Date(
                    NaiveDate::from_num_days_from_ce_opt(days)
                        .ok_or_else(|| self.damaged(format!("date out of range: {days}")))?,
                )
            }
            6 => Value::DateTime(i64::from_le_bytes(self.exact()?)),
            7 => Value::Time(u32::from_le_bytes(self.exact()?)),
            t => {
                return Err(self.damaged(format!(
                    "unknown value tag {t} at offset {}",
                    self.bytes - 1
                )))
            }
        })
    }
}

/// Loads a data file into an empty org (records, Id counters, purge log, clock, CDC replay
/// position). Objects and fields the org does not have are skipped and listed in the stats.
pub fn load(org: &Org, path: &Path) -> Result<Stats, PersistError> {
    let file = File::open(path).map_err(io_err(path))?;
    let mut rd = Reader {
        r: BufReader::with_capacity(1 << 20, file),
        path,
        bytes: 0,
        interned: HashSet::new(),
        scratch: Vec::new(),
    };
    let magic: [u8; 8] = rd.exact().map_err(|_| PersistError::NotDataFile {
        path: path.to_path_buf(),
    })?;
    if &magic != MAGIC {
        return Err(PersistError::NotDataFile {
            path: path.to_path_buf(),
        });
    }
    let version = rd.u32()?;
    if version != VERSION {
        return Err(PersistError::Version {
            path: path.to_path_buf(),
            found: version,
        });
    }
    let n = rd.u64()?;
    let header: Header = serde_json::from_slice(&rd.bytes_vec(n)?)
        .map_err(|e| rd.damaged(format!("header: {e}")))?;
    let schema = org.schema().clone();
    let mut stats = Stats::default();
    let mut st = org.store_mut();
    let mut total = 0u64;
    for th in &header.tables {
        let target = schema.object_index(&th.object);
        if target.is_none() {
            stats.skipped_objects.push(th.object.clone());
        }
        // File field index → org field position.
        let map: Vec<Option<usize>> = th
            .fields
            .iter()
            .map(|f| {
                let pos = target.and_then(|oi| schema.objects[oi].field_index(f));
                if target.is_some() && pos.is_none() {
                    stats.skipped_fields.push(format!("{}.{f}", th.object));
                }
                pos
            })
            .collect();
        let n_fields = target
            .map(|oi| schema.objects[oi].fields.len())
            .unwrap_or(0);
        let id_pos = target.map(|oi| schema.objects[oi].sys.id);
        let mut rows = Vec::with_capacity(th.records.min(1 << 24) as usize);
        let mut slots = vec![Value::Null; n_fields];
        for _ in 0..th.records {
            let k = rd.u16()?;
            for _ in 0..k {
                let fi = rd.u16()? as usize;
                let v = rd.value()?;
                let slot = map.get(fi).ok_or_else(|| {
                    rd.damaged(format!(
                        "field index {fi} outside {}'s {} fields",
                        th.object,
                        th.fields.len()
                    ))
                })?;
                if let Some(pos) = slot {
                    slots[*pos] = v;
                }
            }
            if let Some(idp) = id_pos {
                let id = slots[idp]
                    .as_str()
                    .and_then(|s| SfId::parse(s).ok())
                    .ok_or_else(|| rd.damaged(format!("a {} record has no valid Id", th.object)))?;
                rows.push((id, Record::from_slots(&mut slots)));
            }
            total += 1;
        }
        if let Some(oi) = target {
            let t = st.table_mut(oi);
            t.put_many(rows);
            t.reserve_counter(th.next_counter);
            for (ms, id) in &th.purged {
                if let Ok(id) = SfId::parse(id) {
                    t.log_purge(id, *ms);
                }
            }
        }
    }
    drop(st);
    let end: [u8; 8] = rd.exact()?;
    let count = rd.u64()?;
    if &end != END || count != total {
        return Err(rd.damaged("the end marker or record count does not match"));
    }
    org.restore_clock(header.clock.offset_ms, header.clock.last_stamp_ms);
    org.cdc()
        .restore_position(header.cdc.last_replay_id, header.cdc.commit_number);
    stats.records = total;
    stats.bytes = rd.bytes;
    Ok(stats)
}

/// Saves an org periodically (when its data changed) and once more at `shutdown`.
#[derive(Debug)]
pub struct Persister {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    org: Org,
    path: PathBuf,
    saved: Arc<AtomicU64>,
}

async fn save_if_changed(org: &Org, path: &Path, saved: &AtomicU64) -> Result<(), PersistError> {
    let generation = org.data_generation();
    if generation == saved.load(Ordering::Relaxed) {
        return Ok(());
    }
    let (o, p) = (org.clone(), path.to_path_buf());
    let result = tokio::task::spawn_blocking(move || save(&o, &p))
        .await
        .map_err(|e| PersistError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?;
    result?;
    saved.store(generation, Ordering::Relaxed);
    Ok(())
}

impl Persister {
    /// Starts saving `org` to `path` every `interval` (or four times the last save's duration,
    /// if longer) when its data changed since the last save (or since the load, for a freshly
    /// loaded org).
    pub fn spawn(org: Org, path: PathBuf, interval: Duration) -> Persister {
        // A file that does not exist yet is written at the first tick (seeded data included).
        let baseline = if path.exists() {
            org.data_generation()
        } else {
            u64::MAX
        };
        let saved = Arc::new(AtomicU64::new(baseline));
        let (tx, mut rx) = oneshot::channel::<()>();
        let (o, p, s) = (org.clone(), path.clone(), saved.clone());
        let task = tokio::spawn(async move {
            let interval = interval.max(Duration::from_millis(10));
            let mut wait = interval;
            loop {
                tokio::select! {
                    _ = &mut rx => break,
                    _ = tokio::time::sleep(wait) => {
                        let started = std::time::Instant::now();
                        if let Err(e) = save_if_changed(&o, &p, &s).await {
                            tracing::error!("saving the data file: {e}");
                        }
                        // A big org takes a while to save (writers wait meanwhile): leave
                        // at least four times that long between saves.
                        wait = interval.max(started.elapsed() * 4);
                    }
                }
            }
        });
        Persister {
            stop: Some(tx),
            task: Some(task),
            org,
            path,
            saved,
        }
    }

    /// Stops the periodic saves and saves once more if anything changed.
    pub async fn shutdown(mut self) -> Result<(), PersistError> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        save_if_changed(&self.org, &self.path, &self.saved).await
    }
}

impl Drop for Persister {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ops::Bound;

    use super::*;
    use crate::data::schema::OrgSchema;
    use crate::org::config::Config;

    fn temp_file(tag: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        std::env::temp_dir().join(format!(
            "sf-emulator-persist-{tag}-{}-{nanos}",
            std::process::id()
        ))
    }

    #[test]
    fn every_value_kind_and_index_round_trips() {
        let org = Org::new(OrgSchema::demo(), Config::ephemeral());
        let schema = org.schema().clone();
        let oi = schema.object_index("Invoice__c").unwrap();
        let o = schema.objects[oi].clone();
        let field_of = |ty: &str| {
            o.fields
                .iter()
                .position(|f| format!("{:?}", f.ftype).eq_ignore_ascii_case(ty))
        };
        let ext = o.field_index("External_Id__c").unwrap();
        let modstamp = o.sys.system_modstamp.unwrap();
        let mut records = Vec::new();
        for k in 0..50i64 {
            let mut r = Record::new(o.fields.len());
            r.set(ext, Value::String(format!("INV-{k}").into()));
            r.set(modstamp, Value::DateTime(1_700_000_000_000 - k * 1000));
            if let Some(i) = field_of("date") {
                r.set(
                    i,
                    Value::Date(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()),
                );
            }
            if let Some(i) = field_of("time") {
                r.set(i, Value::Time(45_296_789));
            }
            if let Some(i) = field_of("double") {
                r.set(i, Value::Double(-1.5e-3));
            }
            if let Some(i) = o.sys.is_deleted {
                r.set(i, Value::Bool(k % 10 == 0));
            }
            r.set(o.field_index("Amount__c").unwrap(), Value::Int(k));
            records.push(r);
        }
        let ids = org.store_mut().insert_many(oi, records);
        let path = temp_file("kinds");
        let saved = save(&org, &path).unwrap();
        assert_eq!(saved.records, 50);

        let back = Org::new(OrgSchema::demo(), Config::ephemeral());
        let stats = load(&back, &path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(stats.records, 50);
        assert!(stats.skipped_fields.is_empty() && stats.skipped_objects.is_empty());
        let (a, b) = (org.read(), back.read());
        let (ta, tb) = (a.table(oi), b.table(oi));
        for id in &ids {
            assert_eq!(ta.get(id), tb.get(id));
        }
        assert_eq!(ta.live_count(), tb.live_count());
        assert_eq!(tb.live_count(), 45);
        // Indexes are rebuilt: external IDs (live only) and SystemModstamp order.
        assert_eq!(tb.lookup(ext, &Value::str("inv-7")), &[ids[7]]);
        assert!(tb.lookup(ext, &Value::str("INV-10")).is_empty());
        let order: Vec<SfId> = tb
            .iter_by_modstamp(Bound::Unbounded, Bound::Unbounded)
            .map(|(id, _)| id)
            .collect();
        let mut expected = ids.clone();
        expected.reverse();
        assert_eq!(order, expected);
        assert_eq!(tb.next_counter(), ta.next_counter());
    }
}
