//! Reading stacks back: a `StackValue` names frames kept in the stack map
//! of its size (`contract`); they are read once (an entry never changes)
//! and named by `system::symbolize`.

use crate::contract::{self, StackValue};
use crate::output::value::{Frame, Stack};
use crate::system::symbolize;
use crate::types::{StackMode, StackType};
use libbpf_rs::{MapCore, MapFlags, MapHandle};
use std::cell::RefCell;
use std::collections::HashMap;

thread_local! {
    /// The stack maps of the programs loaded, by value size.
    static MAPS: RefCell<HashMap<u32, MapHandle>> = RefCell::new(HashMap::new());
    /// Frames read so far, by (value size, hash).
    static FRAMES: RefCell<HashMap<(u32, u64), Vec<u8>>> = RefCell::new(HashMap::new());
}

/// Makes the stack maps of a loaded object readable: `map` gives the
/// handle of a map by its name in the object.
pub fn install(stacks: &[StackType], map: impl Fn(&str) -> Option<MapHandle>) {
    MAPS.with(|maps| {
        let mut maps = maps.borrow_mut();
        for st in stacks {
            if let Some(h) = map(&contract::stack_map_name(st.bytes())) {
                maps.entry(st.bytes()).or_insert(h);
            }
        }
    });
}

fn u64_at(bytes: &[u8], off: usize) -> u64 {
    bytes.get(off..off + 8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()))
}

fn u32_at(bytes: &[u8], off: usize) -> u32 {
    bytes.get(off..off + 4).map_or(0, |b| u32::from_le_bytes(b.try_into().unwrap()))
}

/// The raw frames (`bpf_get_stack`'s bytes) named by `hash`.
fn raw_frames(bytes: u32, hash: u64) -> Option<Vec<u8>> {
    if let Some(f) = FRAMES.with(|f| f.borrow().get(&(bytes, hash)).cloned()) {
        return Some(f);
    }
    let value = MAPS.with(|maps| {
        let maps = maps.borrow();
        maps.get(&bytes)?.lookup(&hash.to_ne_bytes(), MapFlags::ANY).ok().flatten()
    })?;
    FRAMES.with(|f| f.borrow_mut().insert((bytes, hash), value.clone()));
    Some(value)
}

/// The stack a `StackValue` of kind `st` at `bytes[off..]` names, with its
/// frames named as its mode asks.
pub fn decode(st: &StackType, bytes: &[u8], off: usize) -> Stack {
    let hash = u64_at(bytes, off + StackValue::HASH as usize);
    let pid = u32_at(bytes, off + StackValue::PID as usize);
    let n = u32_at(bytes, off + StackValue::FRAMES as usize).min(st.limit) as usize;
    let raw = if hash == 0 || n == 0 { None } else { raw_frames(st.bytes(), hash) };
    let raw = raw.unwrap_or_default();
    let frames = match st.mode {
        StackMode::BuildId => build_id_frames(&raw, n),
        mode => {
            let addrs: Vec<u64> = (0..n).map(|i| u64_at(&raw, i * 8)).take_while(|_| !raw.is_empty()).collect();
            let names = match mode {
                StackMode::Raw => vec![],
                _ if st.kernel => symbolize::kernel(&addrs),
                _ => symbolize::user(pid, &addrs),
            };
            let mut names = names.into_iter();
            addrs.into_iter().map(|addr| Frame::Addr { addr, syms: names.next().unwrap_or_default() }).collect()
        }
    };
    Stack { kernel: st.kernel, mode: st.mode, frames }
}

/// `struct bpf_stack_build_id { s32 status; u8 build_id[20]; u64 offset_or_ip; }`:
/// status 1 (`BPF_STACK_BUILD_ID_VALID`) holds a build id and a file
/// offset, otherwise only the address.
fn build_id_frames(raw: &[u8], n: usize) -> Vec<Frame> {
    (0..n)
        .filter_map(|i| {
            let at = i * 32;
            let entry = raw.get(at..at + 32)?;
            let status = u32_at(entry, 0);
            let offset = u64_at(entry, 24);
            Some(if status == 1 {
                Frame::BuildId { id: entry[4..24].to_vec(), offset }
            } else {
                Frame::Addr { addr: offset, syms: vec![] }
            })
        })
        .collect()
}
