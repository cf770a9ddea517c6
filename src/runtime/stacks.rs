//! Reading stacks back: a `StackValue` names frames kept in the stack map
//! of its size (`contract`); they are read once (an entry never changes)
//! and named by `system::symbolize`. A `dw_ustack` names a window of the
//! user stack that came through the ring buffer and was unwound when it
//! was read (`unwind_window`).

use crate::contract::{self, DwarfStack, StackValue};
use crate::output::value::{Frame, FrameSym, Stack};
use crate::probe::arch::Arch;
use crate::system::{symbolize, unwind};
use crate::types::{StackMode, StackType};
use libbpf_rs::{MapCore, MapFlags, MapHandle};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;

thread_local! {
    /// The stack maps of the programs loaded, by value size.
    static MAPS: RefCell<HashMap<u32, MapHandle>> = RefCell::new(HashMap::new());
    /// Frames read so far, by (value size, hash).
    static FRAMES: RefCell<HashMap<(u32, u64), Vec<u8>>> = RefCell::new(HashMap::new());
    /// `dw_ustack` samples unwound, by their id: the return addresses,
    /// each distinct list kept once.
    static UNWOUND: RefCell<Unwound> = RefCell::new(Unwound::default());
}

#[derive(Default)]
struct Unwound {
    by_id: HashMap<u64, Rc<[u64]>>,
    distinct: HashSet<Rc<[u64]>>,
}

/// Unwinds a `contract::DwarfStack` record (up to the largest limit a
/// stack may have) and keeps its frames under its id.
pub fn unwind_window(record: &[u8]) {
    let id = u64_at(record, DwarfStack::ID as usize);
    let pid = u32_at(record, DwarfStack::PID as usize);
    let len = u32_at(record, DwarfStack::LEN as usize) as usize;
    let arch = Arch::host();
    let nregs = arch.registers().len();
    let at = DwarfStack::REGS as usize;
    let regs: Vec<u64> = (0..nregs).map(|i| u64_at(record, at + 8 * i)).collect();
    let window = record.get(at + 8 * nregs..).unwrap_or_default();
    let window = &window[..len.min(window.len())];
    let frames = unwind::unwind(arch, pid, &regs, window, StackType::MAX_LIMIT as usize);
    if !frames.is_empty() {
        symbolize::remember_process(pid);
    }
    UNWOUND.with(|u| {
        let mut u = u.borrow_mut();
        let frames: Rc<[u64]> = frames.into();
        let frames = match u.distinct.get(&frames) {
            Some(f) => f.clone(),
            None => {
                u.distinct.insert(frames.clone());
                frames
            }
        };
        u.by_id.insert(id, frames);
    });
}

/// The frames of the `dw_ustack` sample `id` (none when its record was lost).
fn unwound(id: u64) -> Rc<[u64]> {
    UNWOUND.with(|u| u.borrow().by_id.get(&id).cloned()).unwrap_or_else(|| Rc::new([]))
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
    // Kept without the zeros after the last frame (a stack map value has
    // room for the deepest stack): whole 32-byte units, which hold whole
    // addresses and whole build id frames.
    let used = value.iter().rposition(|b| *b != 0).map_or(0, |i| (i / 32 + 1) * 32).min(value.len());
    let value = value[..used].to_vec();
    FRAMES.with(|f| f.borrow_mut().insert((bytes, hash), value.clone()));
    Some(value)
}

/// What is at one address: its inlined functions and its function.
type Names = Arc<[FrameSym]>;

thread_local! {
    /// The names of each address named so far, by (kernel, pid, address):
    /// every stack holding it shares them (thousands of stacks are made of
    /// a few hundred addresses).
    static NAMED: RefCell<HashMap<(bool, u32, u64), Names>> = RefCell::new(HashMap::new());
}

/// The names of kernel `addrs`, or user `addrs` of process `pid`, each
/// address named once; those not found are asked again next time.
fn named(kernel: bool, pid: u32, addrs: &[u64]) -> Vec<Arc<[FrameSym]>> {
    let mut out: Vec<Option<Arc<[FrameSym]>>> =
        NAMED.with(|n| addrs.iter().map(|a| n.borrow().get(&(kernel, pid, *a)).cloned()).collect());
    let missing: Vec<u64> = addrs.iter().zip(&out).filter(|(_, o)| o.is_none()).map(|(a, _)| *a).collect();
    if !missing.is_empty() {
        let found = if kernel { symbolize::kernel(&missing) } else { symbolize::user(pid, &missing) };
        let mut found = missing.into_iter().zip(found);
        NAMED.with(|n| {
            let mut n = n.borrow_mut();
            for slot in out.iter_mut().filter(|o| o.is_none()) {
                let Some((addr, syms)) = found.next() else { break };
                let syms: Arc<[FrameSym]> = syms.into();
                if !syms.is_empty() {
                    n.insert((kernel, pid, addr), syms.clone());
                }
                *slot = Some(syms);
            }
        });
    }
    out.into_iter().map(Option::unwrap_or_default).collect()
}

/// The stack a `StackValue` of kind `st` at `bytes[off..]` names, with its
/// frames named as its mode asks.
pub fn decode(st: &StackType, bytes: &[u8], off: usize) -> Stack {
    let hash = u64_at(bytes, off + StackValue::HASH as usize);
    let pid = u32_at(bytes, off + StackValue::PID as usize);
    if st.dwarf {
        let addrs: Vec<u64> = unwound(hash).iter().take(st.limit as usize).copied().collect();
        let names = if st.mode == StackMode::Raw { vec![] } else { named(false, pid, &addrs) };
        let mut names = names.into_iter();
        let frames =
            addrs.into_iter().map(|addr| Frame::Addr { addr, syms: names.next().unwrap_or_default() }).collect();
        return Stack { kernel: false, mode: st.mode, frames };
    }
    let n = u32_at(bytes, off + StackValue::FRAMES as usize).min(st.limit) as usize;
    let raw = if hash == 0 || n == 0 { None } else { raw_frames(st.bytes(), hash) };
    let raw = raw.unwrap_or_default();
    let frames = match st.mode {
        StackMode::BuildId => build_id_frames(&raw, n),
        mode => {
            let addrs: Vec<u64> = (0..n).map(|i| u64_at(&raw, i * 8)).take_while(|_| !raw.is_empty()).collect();
            let names = match mode {
                StackMode::Raw => vec![],
                _ if st.kernel => named(true, 0, &addrs),
                _ => named(false, pid, &addrs),
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
                Frame::Addr { addr: offset, syms: Arc::from([]) }
            })
        })
        .collect()
}
