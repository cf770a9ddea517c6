//! What the oracle's native code runs against: maps in an in-process hash
//! table (keys and values as the contract lays them out, one "CPU"), the
//! records it sends, and `exit()`. At the end, the same printing as the
//! runtime's (`runtime::decode`, `output::JsonOutput`) turns them into what
//! `rtrace -f json` writes, so the two runs compare byte for byte.

use rtrace::codegen::lower::SiteKind;
use rtrace::diagnostic::Source;
use rtrace::output::printf;
use rtrace::output::value::MapEntry;
use rtrace::output::{JsonOutput, Message, Output};
use rtrace::runtime::decode;
use rtrace::sema::manifest::{Action, Manifest, MapValue, PrintfKind};
use std::collections::HashMap;

pub const AGG_COUNT: i64 = 0;
pub const AGG_SUM: i64 = 1;
pub const AGG_MIN: i64 = 2;
pub const AGG_MAX: i64 = 3;
pub const AGG_AVG: i64 = 4;
/// `hist`/`lhist`: the value is the bucket, which goes into the key.
pub const AGG_BUCKET: i64 = 5;

/// What a run sends to the runtime, as the ring buffer carries it.
enum Event {
    /// An output record (`contract`: the action id, then its arguments).
    Record(Vec<u8>),
    /// A `delete()` whose result is unused found no entry: bpftrace's
    /// warning, at this byte offset of the source.
    DeleteFailed(u32),
    /// A division or modulo by zero, at this byte offset of the source.
    DivideByZero(u32),
}

pub struct Host {
    manifest: Manifest,
    /// Per map: key bytes → value bytes, in insertion order (for nothing
    /// but determinism: printing sorts).
    maps: Vec<HashMap<Vec<u8>, Vec<u8>>>,
    /// What the program sent, in order.
    events: Vec<Event>,
    /// `exit()` ran, with its code if it had one.
    pub exit: Option<Option<i64>>,
}

impl Host {
    pub fn new(manifest: &Manifest) -> Host {
        Host {
            maps: vec![HashMap::new(); manifest.maps.len()],
            manifest: manifest.clone(),
            events: Vec::new(),
            exit: None,
        }
    }

    fn key(&self, map: i64, key: *const u8) -> Vec<u8> {
        let size = self.manifest.maps[map as usize].key_layout().size as usize;
        // SAFETY: the generated code passes a buffer of the key's size.
        unsafe { std::slice::from_raw_parts(key, size) }.to_vec()
    }

    fn value_size(&self, map: i64) -> usize {
        self.manifest.maps[map as usize].value.size() as usize
    }

    /// What `rtrace -f json` prints after "attached_probes": the printf
    /// records, then every map (the runtime's exit printing).
    pub fn render(&self, source: &Source) -> String {
        let mut out = JsonOutput::new(Vec::new());
        for event in &self.events {
            let data = match event {
                Event::Record(data) => data,
                Event::DeleteFailed(at) => {
                    let (line, col) = source.line_col(*at);
                    // -ENOENT, as the kernel's map_delete_elem says.
                    out.helper_error("map_delete_elem", -2, &source.name, line, col).unwrap();
                    continue;
                }
                Event::DivideByZero(at) => {
                    let (line, col) = source.line_col(*at);
                    let msg = SiteKind::DivideByZero.message();
                    out.runtime_warning(msg, &source.name, line, col).unwrap();
                    continue;
                }
            };
            let id = u64::from_le_bytes(data[..8].try_into().unwrap()) as usize;
            let action = &self.manifest.actions[id];
            match action {
                Action::Printf { args, kind: PrintfKind::Output, format, .. } => {
                    let layout = action.record();
                    let values = decode::values(args, &layout.offsets, data);
                    let pieces = printf::parse_format(format).expect("checked format");
                    let text = printf::format(&pieces, &values);
                    out.message(Message::Printf, &text, false).unwrap();
                }
                other => panic!("the oracle does not print {:?}", other),
            }
        }
        let mut maps = Vec::new();
        for (info, table) in self.manifest.maps.iter().zip(&self.maps) {
            let mut entries: Vec<MapEntry> =
                table.iter().map(|(k, v)| decode::entry(info, k, &[v.as_slice()])).collect();
            if info.value.bucketed() {
                entries = decode::merge_buckets(entries);
            }
            maps.push((info.name.clone(), entries, !info.keys.is_empty()));
        }
        if self.manifest.config.print_maps_on_exit {
            out.maps_at_exit(&maps).unwrap();
        }
        out.flush().unwrap();
        String::from_utf8_lossy(&out.into_inner()).into_owned()
    }
}

fn u64_at(v: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(v[off..off + 8].try_into().unwrap())
}

fn put(v: &mut [u8], off: usize, x: u64) {
    v[off..off + 8].copy_from_slice(&x.to_le_bytes());
}

// The functions the generated code calls; `host` is the `Host` it runs for.

pub extern "C" fn emit(host: *mut Host, data: *const u8, len: i64) {
    let host = unsafe { &mut *host };
    // SAFETY: the generated code passes its record buffer and its size.
    host.events.push(Event::Record(unsafe { std::slice::from_raw_parts(data, len as usize) }.to_vec()));
}

/// A division by zero, at byte `at` of the source.
pub extern "C" fn divide_by_zero(host: *mut Host, at: i64) {
    let host = unsafe { &mut *host };
    host.events.push(Event::DivideByZero(at as u32));
}

/// A `delete()` statement found nothing to delete, at byte `at` of the source.
pub extern "C" fn delete_failed(host: *mut Host, at: i64) {
    let host = unsafe { &mut *host };
    host.events.push(Event::DeleteFailed(at as u32));
}

pub extern "C" fn exit(host: *mut Host, code: i64, has_code: i64) {
    let host = unsafe { &mut *host };
    host.exit = Some((has_code != 0).then_some(code));
}

/// `@m[k]` of a plain map: its 8-byte value, 0 when absent.
pub extern "C" fn map_read(host: *mut Host, map: i64, key: *const u8) -> i64 {
    let host = unsafe { &mut *host };
    let k = host.key(map, key);
    host.maps[map as usize].get(&k).map_or(0, |v| u64_at(v, 0) as i64)
}

pub extern "C" fn map_write(host: *mut Host, map: i64, key: *const u8, value: i64) {
    let host = unsafe { &mut *host };
    let k = host.key(map, key);
    let mut v = vec![0u8; host.value_size(map)];
    put(&mut v, 0, value as u64);
    host.maps[map as usize].insert(k, v);
}

pub extern "C" fn map_has(host: *mut Host, map: i64, key: *const u8) -> i64 {
    let host = unsafe { &mut *host };
    let k = host.key(map, key);
    host.maps[map as usize].contains_key(&k) as i64
}

pub extern "C" fn map_delete(host: *mut Host, map: i64, key: *const u8) -> i64 {
    let host = unsafe { &mut *host };
    let k = host.key(map, key);
    host.maps[map as usize].remove(&k).is_some() as i64
}

/// An aggregation's update of the entry under `key` (for `AGG_BUCKET`,
/// `value` is the bucket, stored in the key's last u64).
pub extern "C" fn aggregate(host: *mut Host, map: i64, key: *const u8, kind: i64, value: i64) {
    let host = unsafe { &mut *host };
    let mut k = host.key(map, key);
    let size = host.value_size(map);
    let info = &host.manifest.maps[map as usize];
    if kind == AGG_BUCKET {
        put(&mut k, info.bucket_offset() as usize, value as u64);
    }
    let signed = matches!(info.value, MapValue::Min { signed: true } | MapValue::Max { signed: true });
    let entry = host.maps[map as usize].entry(k).or_insert_with(|| vec![0u8; size]);
    let v = value as u64;
    match kind {
        AGG_COUNT | AGG_BUCKET => {
            let n = u64_at(entry, 0).wrapping_add(1);
            put(entry, 0, n)
        }
        AGG_SUM => {
            let n = u64_at(entry, 0).wrapping_add(v);
            put(entry, 0, n)
        }
        AGG_AVG => {
            let (n, total) = (u64_at(entry, 0) + 1, u64_at(entry, 8).wrapping_add(v));
            put(entry, 0, n);
            put(entry, 8, total);
        }
        AGG_MIN | AGG_MAX => {
            let old = u64_at(entry, 0);
            let better = match (kind == AGG_MIN, signed) {
                (true, true) => (v as i64) < old as i64,
                (true, false) => v < old,
                (false, true) => (v as i64) > old as i64,
                (false, false) => v > old,
            };
            if u64_at(entry, 8) == 0 || better {
                put(entry, 0, v);
                put(entry, 8, 1);
            }
        }
        _ => unreachable!("aggregation kind {}", kind),
    }
}

/// `@m[k]` of a `count`/`sum`/`min`/`max`/`avg` map, as printing shows it
/// (0 when absent).
pub extern "C" fn agg_read(host: *mut Host, map: i64, key: *const u8) -> i64 {
    let host = unsafe { &mut *host };
    let k = host.key(map, key);
    let info = &host.manifest.maps[map as usize];
    let Some(v) = host.maps[map as usize].get(&k) else { return 0 };
    match info.value {
        MapValue::Avg => {
            let (count, total) = (u64_at(v, 0), u64_at(v, 8) as i64);
            rtrace::output::value::MapValue::average(count, total)
        }
        _ => u64_at(v, 0) as i64,
    }
}
