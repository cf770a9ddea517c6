//! What the ring buffer callback and the event loop share: the records
//! probes send, decoded and printed; the maps, read and printed; the `.bss`
//! counters (lost records, exit(), full maps, entry counts).

use super::bss::Bss;
use super::printf_plan::Plan;
use super::ring::Ring;
use super::{batch, clock, decode};
use crate::codegen::lower::SiteKind;
use crate::contract::{
    Counters, DWARF_STACK_ID, HELPER_ERROR_ID, HELPER_ERROR_SITE, HELPER_ERROR_VALUE, PROCESS_SEEN_ID,
};
use crate::output::printf;
use crate::output::sink::{self, WriteError, WriteStatus};
use crate::output::value::{MapEntry, Value};
use crate::output::{Message, Output, Place, ProgramMessage};
use crate::sema::manifest::{join_args_type, Action, Manifest, MapInfo, PrintfKind};
use libbpf_rs::{MapCore, MapFlags, MapHandle};
use std::cell::RefCell;

/// A reader of the ring buffer `events` that hands each record to `handle`
/// (a negative result ends the read that got it).
pub fn reader<'a>(events: &MapHandle, handle: impl FnMut(&[u8]) -> i32 + 'a) -> std::io::Result<Ring<'a>> {
    Ring::new(events, handle)
}

/// Once the probes are detached: what they sent after exit() is not
/// printed, as the program ended there; what they sent before it, and was
/// not read yet, still is.
pub fn drain_after_exit(state: &RefCell<State>, ring: &Ring<'_>) {
    let mut st = state.borrow_mut();
    if st.exit_called() {
        st.discard = st.exit;
        st.draining = true;
        drop(st);
        ring.consume();
        st = state.borrow_mut();
        st.discard = false;
        st.draining = false;
    }
    st.exit = false;
}

/// One map's entries, decoded (a key deleted meanwhile is skipped).
pub fn read_map(map: &MapHandle, info: &MapInfo) -> Vec<MapEntry> {
    let mut entries = Vec::new();
    if let Some(batch) = batch::read(map) {
        entries.reserve(batch.count);
        let mut per_cpu: Vec<&[u8]> = Vec::new();
        let offsets = info.key_layout().offsets;
        for i in 0..batch.count {
            per_cpu.clear();
            per_cpu.extend(batch.values(i));
            entries.push(decode::entry_at(info, &offsets, batch.key(i), &per_cpu));
        }
    } else {
        entries = read_map_by_key(map, info);
    }
    if info.value.bucketed() || info.keys.iter().any(|k| matches!(k, crate::types::Type::Stack(s) if s.dwarf)) {
        entries = decode::merge_buckets(entries);
    }
    if matches!(info.value, crate::sema::manifest::MapValue::TSeries { .. }) {
        decode::tseries_rows(&mut entries);
    }
    // A `count()` without keys that holds nothing (cleared, deleted) prints
    // nothing, as in bpftrace v0.26 (0.17 printed `@: 0`).
    entries
}

/// One map's entries, key by key (kernels without batch operations).
fn read_map_by_key(map: &MapHandle, info: &MapInfo) -> Vec<MapEntry> {
    let mut entries = Vec::new();
    for key in map.keys() {
        let values = if info.value.per_cpu() {
            map.lookup_percpu(&key, MapFlags::ANY).ok().flatten()
        } else {
            map.lookup(&key, MapFlags::ANY).ok().flatten().map(|v| vec![v])
        };
        if let Some(values) = values {
            let per_cpu: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
            entries.push(decode::entry(info, &key, &per_cpu));
        }
    }
    entries
}

/// `clear(@x)`: every key deleted.
fn clear_map(map: &MapHandle) {
    if batch::take(map).is_some() {
        return;
    }
    if let Some(b) = batch::read(map) {
        if batch::delete(map, &b.keys, b.key_size).is_ok() {
            return;
        }
    }
    let keys: Vec<Vec<u8>> = map.keys().collect();
    for key in keys {
        let _ = map.delete(&key);
    }
}

/// `zero(@x)`: every value (of every CPU) set to zero, keys kept.
fn zero_map(map: &MapHandle, info: &MapInfo) {
    if let Some(b) = batch::read(map) {
        if batch::zero(map, &b.keys, b.key_size, b.value_stride).is_ok() {
            return;
        }
    }
    let keys: Vec<Vec<u8>> = map.keys().collect();
    let size = info.value.size() as usize;
    for key in keys {
        let _ = if info.value.per_cpu() {
            let zeros = vec![vec![0u8; size]; libbpf_rs::num_possible_cpus().unwrap_or(1)];
            map.update_percpu(&key, &zeros, MapFlags::EXIST)
        } else {
            map.update(&key, &vec![0u8; size], MapFlags::EXIST)
        };
    }
}

/// `print(@x, top, div)`: the `top` largest entries, values divided by `div`.
/// (Printing sorts them; they are sorted here only to pick the top.)
fn top_entries(mut entries: Vec<MapEntry>, top: u64, div: u64) -> Vec<MapEntry> {
    if top > 0 && entries.len() > top as usize {
        crate::output::value::sort_entries(&mut entries);
        entries.drain(..entries.len() - top as usize);
    }
    if div > 1 {
        for e in &mut entries {
            e.value = e.value.divided(div);
        }
    }
    entries
}

/// `cat(path)`: the file's first `max` bytes (config `max_cat_bytes`).
fn cat_file(path: &str, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut content = Vec::new();
    std::fs::File::open(path)?.take(max).read_to_end(&mut content)?;
    Ok(content)
}

/// `system(command)`: runs it with `sh -c` and returns what it printed.
fn run_command(command: &str) -> Vec<u8> {
    match std::process::Command::new("/bin/sh").arg("-c").arg(command).stderr(std::process::Stdio::inherit()).output() {
        Ok(out) => out.stdout,
        Err(e) => {
            sink::to_stderr(&format!("ERROR: cannot run `{}`: {}", command, e));
            Vec::new()
        }
    }
}

/// How to give maps more room, as every full-map warning says.
const RAISE_MAP_KEYS: &str = "raise the limit with RTRACE_MAP_KEYS_MAX or `config = { max_map_keys = N }`";

/// What the ring buffer callback and the loop share.
pub struct State {
    pub manifest: Manifest,
    /// Where the `.bss` counters are (laid out for `LowerOptions::map_slots`).
    pub counters: Counters,
    /// User maps by MapId.
    pub maps: Vec<Option<MapHandle>>,
    /// The `.bss` counters (entry counts are reset by `clear()`).
    pub bss: Option<Bss>,
    /// Helper calls checked by `-k`/`-kk`: (helper, line, column).
    pub helper_sites: Vec<(crate::codegen::lower::SiteKind, usize, usize)>,
    /// By action id: where an `errorf()`/`warnf()` is, and the macro uses
    /// it was expanded from (`places::message_places`).
    pub message_places: Vec<Option<(Place, Vec<Place>)>>,
    /// The code `exit(code)` asked for.
    pub exit_code: Option<i32>,
    pub source_name: String,
    /// Where records and maps are printed. A failed write is recorded in
    /// `written` (and refused from then on), so results may be dropped here.
    pub out: Box<dyn Output>,
    written: WriteStatus,
    /// Warnings go to `out`, not stderr.
    pub warnings_in_output: bool,
    /// Parsed printf formats, by action id.
    formats: Vec<Option<Vec<printf::Piece>>>,
    /// printf formats compiled against their records, by action id.
    plans: Vec<Option<Plan>>,
    /// Where a record's text is formatted (kept: no allocation per record).
    text: Vec<u8>,
    pub exit: bool,
    /// Records are dropped unread: the ones probes sent after exit().
    pub discard: bool,
    /// Reading what is left after the probes stopped because of exit():
    /// the exit record starts `discard`.
    pub draining: bool,
    lost_reported: u64,
    full_reported: Vec<bool>,
    stacks_lost_reported: u64,
}

impl State {
    pub fn new(
        manifest: Manifest,
        out: (Box<dyn Output>, WriteStatus),
        maps: Vec<Option<MapHandle>>,
        bss: Option<Bss>,
    ) -> State {
        let (out, written) = out;
        let formats = formats(&manifest);
        let plans = plans(&manifest, &formats);
        State {
            counters: Counters { map_slots: manifest.maps.len() },
            full_reported: vec![false; manifest.maps.len()],
            manifest,
            maps,
            bss,
            helper_sites: Vec::new(),
            message_places: Vec::new(),
            exit_code: None,
            source_name: String::new(),
            out,
            written,
            formats,
            plans,
            text: Vec::new(),
            exit: false,
            discard: false,
            draining: false,
            lost_reported: 0,
            stacks_lost_reported: 0,
            warnings_in_output: false,
        }
    }

    /// A program that extends the one before (the REPL's next input): its
    /// manifest starts with the old one's maps and actions.
    pub fn extend(&mut self, manifest: Manifest, maps: Vec<Option<MapHandle>>) {
        self.formats = formats(&manifest);
        self.plans = plans(&manifest, &self.formats);
        self.full_reported.resize(manifest.maps.len(), false);
        self.manifest = manifest;
        self.maps = maps;
    }

    /// Every user map's entries, decoded.
    pub fn read_maps(&self) -> Vec<(String, Vec<MapEntry>, bool)> {
        let mut out = Vec::new();
        for (info, handle) in self.manifest.maps.iter().zip(&self.maps) {
            let Some(map) = handle else { continue };
            out.push((info.name.clone(), read_map(map, info), !info.keys.is_empty()));
        }
        out
    }

    /// The end of a session: what the counters report, the end of the
    /// output, then every map (returned, for the flame graph).
    pub fn print_at_exit(&mut self) -> Vec<(String, Vec<MapEntry>, bool)> {
        self.report_lost();
        self.report_full_maps();
        self.out.end().ok();
        let maps = self.read_maps();
        if self.manifest.config.print_maps_on_exit {
            self.out.maps_at_exit(&maps).ok();
        }
        self.out.flush().ok();
        maps
    }

    /// exit() ran: its record was read, or its `.bss` count says so (the
    /// count also covers a record that was lost or not read yet).
    pub fn exit_called(&self) -> bool {
        self.exit || self.bss.as_ref().is_some_and(|c| c.read(Counters::EXIT) > 0)
    }

    /// The write that ended the output, if one failed: the session ends.
    pub fn output_failed(&self) -> Option<WriteError> {
        self.written.failed()
    }

    /// Handles one ring buffer record; a negative result stops this poll.
    pub fn record(&mut self, data: &[u8]) -> i32 {
        if self.output_failed().is_some() {
            // Nothing more can be printed (nor run: system()): stop reading.
            return -1;
        }
        let word =
            |at: usize| u64::from_le_bytes(data.get(at..at + 8).and_then(|b| b.try_into().ok()).unwrap_or([0; 8]));
        if word(0) == DWARF_STACK_ID {
            // A `dw_ustack` sample: unwound now, while its process runs;
            // also after exit(), as map keys may hold it.
            super::stacks::unwind_window(data);
            return 0;
        }
        if self.discard {
            return 0;
        }
        if self.exit {
            return -1;
        }
        if word(0) == HELPER_ERROR_ID {
            if let Some(&(kind, line, col)) = self.helper_sites.get(word(HELPER_ERROR_SITE) as usize) {
                let (file, retcode) = (&self.source_name, word(HELPER_ERROR_VALUE) as i64);
                match kind {
                    SiteKind::Helper(h) => self.out.helper_error(h.name(), retcode, file, line, col).ok(),
                    other => self.out.runtime_warning(other.message(), file, line, col).ok(),
                };
            }
            return 0;
        }
        if word(0) == PROCESS_SEEN_ID {
            // Its first user stack: keep what names its frames after it exits.
            crate::system::symbolize::remember_process(word(8) as u32);
            return 0;
        }
        let id = word(0) as usize;
        let Some(action) = self.manifest.actions.get(id) else { return 0 };
        match action {
            Action::Printf { kind, .. } => {
                let Some(plan) = &self.plans[id] else { return 0 };
                self.text.clear();
                plan.format(data, &mut self.text);
                let text = &self.text;
                match (kind, self.message_places.get(id)) {
                    (PrintfKind::Output, _) => self.out.message(Message::Printf, text, false).ok(),
                    (kind, Some(Some((at, expanded_from)))) => {
                        let error = *kind == PrintfKind::Error;
                        self.out.program_message(ProgramMessage { error, text, at, expanded_from }).ok()
                    }
                    // A program whose places are not known (the REPL's).
                    (kind, _) => {
                        let at = Place { file: self.source_name.clone(), ..Place::default() };
                        let error = *kind == PrintfKind::Error;
                        self.out.program_message(ProgramMessage { error, text, at: &at, expanded_from: &[] }).ok()
                    }
                };
                0
            }
            Action::Time { format } => {
                self.out.message(Message::Time, clock::now(format).as_bytes(), false).ok();
                0
            }
            Action::Join { delim } => {
                let layout = action.record();
                let Value::Tuple(args) = decode::value(&join_args_type(), data, layout.offsets[0] as usize) else {
                    return 0;
                };
                let parts: Vec<Vec<u8>> = args
                    .into_iter()
                    .map_while(|a| match a {
                        Value::Str(s) if !s.is_empty() => Some(s),
                        _ => None,
                    })
                    .collect();
                self.out.message(Message::Join, &parts.join(delim.as_bytes()), true).ok();
                0
            }
            Action::Cat { args, .. } | Action::System { args, .. } => {
                let layout = action.record();
                let values: Vec<Value> = decode::values(args, &layout.offsets, data);
                let Some(pieces) = &self.formats[id] else { return 0 };
                let text = String::from_utf8_lossy(&printf::format(pieces, &values)).into_owned();
                if matches!(action, Action::Cat { .. }) {
                    match cat_file(&text, self.manifest.config.max_cat_bytes) {
                        Ok(content) => self.out.message(Message::Cat, &content, false).ok(),
                        Err(e) => {
                            self.warn(&format!("ERROR: failed to open file '{}': {}", text, e));
                            None
                        }
                    };
                } else {
                    self.out.flush().ok();
                    let output = run_command(&text);
                    self.out.message(Message::Syscall, &output, false).ok();
                }
                0
            }
            Action::Exit { code } => {
                if *code {
                    self.exit_code = Some(decode::value(&crate::types::I64, data, 8).bits() as i32);
                }
                self.exit = true;
                if self.draining {
                    // Keep reading, to drop what follows.
                    self.discard = true;
                    return 0;
                }
                -1
            }
            Action::PrintValue { ty } => {
                let v = decode::value(ty, data, 8);
                self.out.value(&v).ok();
                0
            }
            Action::PrintMap { map, top, div } => {
                if let Some(handle) = &self.maps[*map] {
                    let info = &self.manifest.maps[*map];
                    let entries = top_entries(read_map(handle, info), *top, *div);
                    self.out.map(&info.name, &entries, !info.keys.is_empty()).ok();
                }
                0
            }
            Action::ClearMap { map } => {
                if let Some(handle) = &self.maps[*map] {
                    clear_map(handle);
                }
                if let (true, Some(bss)) = (self.manifest.maps[*map].counted, &self.bss) {
                    // Deletes in flight may still decrement: the count is exact
                    // again once they are done, as the map is empty.
                    bss.set(self.counters.map_len(*map), 0);
                }
                0
            }
            Action::ZeroMap { map } => {
                if let (Some(handle), info) = (&self.maps[*map], &self.manifest.maps[*map]) {
                    zero_map(handle, info);
                }
                0
            }
        }
    }

    /// Reports records lost to a full ring buffer, and maps that became full
    /// (once each), from the u64 counters in `.bss`.
    pub fn check_counters(&mut self) {
        self.report_lost();
        let Some(bss) = &self.bss else { return };
        let read = |index: usize| bss.read(index);
        let mut full = Vec::new();
        for (i, info) in self.manifest.maps.iter().enumerate() {
            if !self.full_reported[i] && read(self.counters.map_full(i)) > 0 {
                self.full_reported[i] = true;
                full.push(format!(
                    "WARNING: map `{}` is full ({} entries): new keys are being dropped; {}",
                    info.name,
                    info.max_entries(self.manifest.max_map_keys),
                    RAISE_MAP_KEYS
                ));
            }
        }
        for message in full {
            self.warn(&message);
        }
    }

    /// Records lost since the last report, and stacks lost to a full stack map.
    fn report_lost(&mut self) {
        let lost = self.bss.as_ref().map_or(0, |bss| bss.read(Counters::LOST));
        if lost > self.lost_reported {
            self.out.lost_events(lost - self.lost_reported).ok();
            self.lost_reported = lost;
        }
        let stacks = self.bss.as_ref().map_or(0, |bss| bss.read(self.counters.stacks_lost()));
        if stacks > self.stacks_lost_reported {
            let n = stacks - self.stacks_lost_reported;
            self.stacks_lost_reported = stacks;
            self.warn(&format!(
                "WARNING: Lost {} stack{}: the stack map is full ({} distinct stacks); they read as empty stacks; {}",
                n,
                if n == 1 { "" } else { "s" },
                self.manifest.max_map_keys,
                RAISE_MAP_KEYS
            ));
        }
    }

    /// At the end: how many updates each full map dropped in all.
    fn report_full_maps(&mut self) {
        let Some(bss) = &self.bss else { return };
        let mut full = Vec::new();
        for (i, info) in self.manifest.maps.iter().enumerate() {
            let failed = bss.read(self.counters.map_full(i));
            if failed > 0 {
                full.push(format!(
                    "WARNING: map `{}` is full ({} entries): {} update{} failed; {}",
                    info.name,
                    info.max_entries(self.manifest.max_map_keys),
                    failed,
                    if failed == 1 { "" } else { "s" },
                    RAISE_MAP_KEYS
                ));
            }
        }
        for message in full {
            self.warn(&message);
        }
    }

    /// A problem while running: to stderr, or with the output when
    /// `warnings_in_output` (the REPL, where stderr would cut into the prompt).
    fn warn(&mut self, message: &str) {
        if self.warnings_in_output {
            self.out.raw(format!("{}\n", message).as_bytes()).ok();
        } else {
            // After the output before it, also when that is buffered.
            self.out.flush().ok();
            sink::to_stderr(message);
        }
    }
}

/// The plans of the printf actions, by action id.
fn plans(manifest: &Manifest, formats: &[Option<Vec<printf::Piece>>]) -> Vec<Option<Plan>> {
    manifest
        .actions
        .iter()
        .zip(formats)
        .map(|(a, pieces)| match (a, pieces) {
            (Action::Printf { args, .. }, Some(pieces)) => Some(Plan::new(pieces, args, &a.record().offsets)),
            _ => None,
        })
        .collect()
}

/// Parsed printf formats, by action id.
fn formats(manifest: &Manifest) -> Vec<Option<Vec<printf::Piece>>> {
    manifest
        .actions
        .iter()
        .map(|a| match a {
            Action::Printf { format, .. } | Action::Cat { format, .. } | Action::System { format, .. } => {
                printf::parse_format(format).ok()
            }
            _ => None,
        })
        .collect()
}
