//! `dw_ustack`: the user registers and a copied window of a process's
//! stack → the return addresses of its frames, found with the call frame
//! information (`.eh_frame`, through `.eh_frame_hdr`'s search table when
//! the file has one, else `.debug_frame`) of the files the process maps, as
//! `perf --call-graph dwarf` unwinds. Works without frame pointers; stops
//! where the window ends, where a file has no unwind information, or at the
//! outermost frame (`_start` marks its return address undefined).
//!
//! Each process's mappings are read once (again when an address is outside
//! all of them), each file's unwind sections once (by device and inode, so
//! a library shared by many processes is read once); the vDSO's image is
//! read from the process's memory.

use crate::probe::arch::Arch;
use gimli::{
    BaseAddresses, CfaRule, DebugFrame, EhFrame, EhFrameHdr, LittleEndian, Register, RegisterRule, UnwindContext,
    UnwindSection,
};
use object::{Object, ObjectSection, ObjectSegment};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// One executable mapping of a process.
struct Mapping {
    start: u64,
    end: u64,
    /// File offset of `start`.
    offset: u64,
    /// Device and inode: the key of its file's tables.
    file: String,
    /// Where to read it: `/proc/PID/map_files/START-END` (a deleted or
    /// replaced file, or one in another mount namespace, reads as mapped),
    /// or `[vdso]`.
    path: String,
}

/// The unwind sections of one file, copied out of it.
struct Tables {
    /// `PT_LOAD` segments: (file offset, address, file size).
    segments: Vec<(u64, u64, u64)>,
    eh_frame: Option<(Vec<u8>, u64)>,
    eh_frame_hdr: Option<(Vec<u8>, u64)>,
    debug_frame: Option<Vec<u8>>,
    text: u64,
}

/// How a register of the caller is found (gimli's `RegisterRule`, owned).
#[derive(Clone, Copy)]
enum Rule {
    Undefined,
    Same,
    /// Saved at CFA + n.
    Offset(i64),
    /// Is CFA + n.
    ValOffset(i64),
    Register(u16),
}

/// The unwind row of an address: the CFA as register + offset, and the
/// rules of the registers it names.
struct Row {
    cfa: (u16, i64),
    rules: Vec<(u16, Rule)>,
}

#[derive(Default)]
struct State {
    processes: HashMap<u32, Vec<Mapping>>,
    files: HashMap<String, Option<Rc<Tables>>>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// The return addresses of the frames of a stack of process `pid` (the
/// first is the ip), at most `limit`: `regs` are its `pt_regs` words as
/// `Arch::registers` lists them, `window` the stack from the stack pointer
/// up. Empty when the registers name no user code.
pub fn unwind(arch: Arch, pid: u32, regs: &[u64], window: &[u8], limit: usize) -> Vec<u64> {
    let reg = |name: &str| arch.reg_offset(name).and_then(|o| regs.get(o as usize / 8).copied());
    let Some(mut pc) = reg(arch.ip_register()).filter(|pc| *pc != 0) else { return vec![] };
    let mut cols: Vec<Option<u64>> = arch.dwarf_registers().iter().map(|n| reg(n)).collect();
    let (sp_col, ra_col) = arch.dwarf_sp_ra();
    let sp0 = cols[sp_col as usize].unwrap_or(0);
    let read = |addr: u64| -> Option<u64> {
        let at = addr.checked_sub(sp0)? as usize;
        window.get(at..at + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap()))
    };
    let mut frames = vec![pc];
    STATE.with(|st| {
        let mut st = st.borrow_mut();
        while frames.len() < limit {
            // A return address is past its call: look up the call itself.
            let lookup = if frames.len() == 1 { pc } else { pc - 1 };
            let Some(row) = st.row(pid, lookup) else { break };
            let Some(base) = cols.get(row.cfa.0 as usize).copied().flatten() else { break };
            let Some(cfa) = base.checked_add_signed(row.cfa.1) else { break };
            let mut next = cols.clone();
            for (r, rule) in &row.rules {
                let value = match *rule {
                    Rule::Undefined => None,
                    Rule::Same => cols.get(*r as usize).copied().flatten(),
                    Rule::Offset(n) => cfa.checked_add_signed(n).and_then(read),
                    Rule::ValOffset(n) => cfa.checked_add_signed(n),
                    Rule::Register(from) => cols.get(from as usize).copied().flatten(),
                };
                if let Some(slot) = next.get_mut(*r as usize) {
                    *slot = value;
                }
            }
            // No rule for the return address (gimli leaves undefined rules
            // out, as `_start` has it): the outermost frame. Other
            // registers without a rule keep their values (callee-saved).
            if !row.rules.iter().any(|(r, _)| *r == ra_col) {
                break;
            }
            let sp = cols[sp_col as usize].unwrap_or(0);
            next[sp_col as usize] = Some(cfa);
            // The caller's frame is above this one; a return address of 0
            // or none ends the stack.
            let Some(ra) = next[ra_col as usize].filter(|ra| *ra != 0 && cfa > sp) else { break };
            pc = ra;
            cols = next;
            frames.push(pc);
        }
    });
    frames
}

impl State {
    /// The unwind row of `addr` in process `pid`.
    fn row(&mut self, pid: u32, addr: u64) -> Option<Row> {
        let (file, path, vaddr) = match self.find(pid, addr) {
            Some(found) => found,
            None => {
                // Mapped since the mappings were read (a dlopen()).
                self.processes.insert(pid, mappings(pid)?);
                self.find(pid, addr)?
            }
        };
        let tables = self.files.entry(file).or_insert_with(|| read_tables(&path, pid).map(Rc::new)).clone()?;
        let vaddr = tables.vaddr(vaddr)?;
        tables.row(vaddr)
    }

    /// The file (key, path) holding `addr` in `pid`, and its offset in that
    /// file (`[vdso]`: in its image).
    fn find(&mut self, pid: u32, addr: u64) -> Option<(String, String, u64)> {
        if let std::collections::hash_map::Entry::Vacant(e) = self.processes.entry(pid) {
            e.insert(mappings(pid)?);
        }
        let m = self.processes.get(&pid)?.iter().find(|m| m.start <= addr && addr < m.end)?;
        Some((m.file.clone(), m.path.clone(), addr - m.start + m.offset))
    }
}

/// The executable file mappings of `pid`, and its vDSO.
fn mappings(pid: u32) -> Option<Vec<Mapping>> {
    let text = std::fs::read_to_string(format!("/proc/{}/maps", pid)).ok()?;
    let mut out = Vec::new();
    for line in text.lines() {
        // start-end perms offset dev inode path
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(range), Some(perms), Some(offset), Some(dev), Some(inode), Some(path)) =
            (f.first(), f.get(1), f.get(2), f.get(3), f.get(4), f.get(5))
        else {
            continue;
        };
        if !perms.contains('x') {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else { continue };
        let (Ok(start), Ok(end), Ok(offset)) =
            (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16), u64::from_str_radix(offset, 16))
        else {
            continue;
        };
        let (file, path) = match *path {
            "[vdso]" => ("[vdso]".to_string(), "[vdso]".to_string()),
            // `map_files` names ranges without the leading zeros of `maps`
            // (a non-PIE executable at 0x400000).
            p if p.starts_with('/') => {
                (format!("{} {}", dev, inode), format!("/proc/{}/map_files/{:x}-{:x}", pid, start, end))
            }
            _ => continue,
        };
        out.push(Mapping { start, end, offset, file, path });
    }
    Some(out)
}

/// The unwind sections of the file at `path` (`[vdso]`: the image mapped
/// in `pid`).
fn read_tables(path: &str, pid: u32) -> Option<Tables> {
    let data = if path == "[vdso]" { vdso_image(pid)? } else { std::fs::read(path).ok()? };
    let obj = object::File::parse(&*data).ok()?;
    let section = |name: &str| {
        let s = obj.section_by_name(name)?;
        Some((s.data().ok()?.to_vec(), s.address()))
    };
    let segments = obj
        .segments()
        .map(|s| {
            let (off, size) = s.file_range();
            (off, s.address(), size)
        })
        .collect();
    Some(Tables {
        segments,
        eh_frame: section(".eh_frame"),
        eh_frame_hdr: section(".eh_frame_hdr"),
        debug_frame: section(".debug_frame").map(|s| s.0),
        text: obj.section_by_name(".text").map_or(0, |s| s.address()),
    })
}

/// The vDSO's ELF image, read from the memory of `pid`.
fn vdso_image(pid: u32) -> Option<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", pid)).ok()?;
    let line = maps.lines().find(|l| l.ends_with("[vdso]"))?;
    let (start, end) = line.split_whitespace().next()?.split_once('-')?;
    let (start, end) = (u64::from_str_radix(start, 16).ok()?, u64::from_str_radix(end, 16).ok()?);
    let mut mem = std::fs::File::open(format!("/proc/{}/mem", pid)).ok()?;
    mem.seek(SeekFrom::Start(start)).ok()?;
    let mut image = vec![0u8; (end - start) as usize];
    mem.read_exact(&mut image).ok()?;
    Some(image)
}

impl Tables {
    /// The address the file gives to file offset `offset`.
    fn vaddr(&self, offset: u64) -> Option<u64> {
        let (foff, addr, _) = self.segments.iter().find(|(o, _, size)| *o <= offset && offset < o + size)?;
        Some(offset - foff + addr)
    }

    fn row(&self, addr: u64) -> Option<Row> {
        let mut bases = BaseAddresses::default().set_text(self.text);
        let mut ctx: Box<UnwindContext<usize>> = Box::new(UnwindContext::new());
        if let Some((data, at)) = &self.eh_frame {
            bases = bases.set_eh_frame(*at);
            let mut eh = EhFrame::new(data, LittleEndian);
            eh.set_address_size(8);
            let indexed = self.eh_frame_hdr.as_ref().and_then(|(hdr, hdr_at)| {
                let bases = bases.clone().set_eh_frame_hdr(*hdr_at);
                let parsed = EhFrameHdr::new(hdr, LittleEndian).parse(&bases, 8).ok()?;
                let table = parsed.table()?;
                table.unwind_info_for_address(&eh, &bases, &mut ctx, addr, EhFrame::cie_from_offset).ok().map(own)
            });
            let found = indexed
                .or_else(|| eh.unwind_info_for_address(&bases, &mut ctx, addr, EhFrame::cie_from_offset).ok().map(own));
            if found.is_some() {
                return found.flatten();
            }
        }
        let data = self.debug_frame.as_ref()?;
        let mut df = DebugFrame::new(data, LittleEndian);
        df.set_address_size(8);
        df.unwind_info_for_address(&bases, &mut ctx, addr, DebugFrame::cie_from_offset).ok().and_then(own)
    }
}

/// A gimli row as a `Row`; `None` when its CFA is an expression.
fn own(row: &gimli::UnwindTableRow<usize>) -> Option<Row> {
    let CfaRule::RegisterAndOffset { register, offset } = row.cfa() else { return None };
    let rules = row
        .registers()
        .map(|(Register(r), rule)| {
            let rule = match rule {
                RegisterRule::SameValue => Rule::Same,
                RegisterRule::Offset(n) => Rule::Offset(*n),
                RegisterRule::ValOffset(n) => Rule::ValOffset(*n),
                RegisterRule::Register(Register(from)) => Rule::Register(*from),
                _ => Rule::Undefined,
            };
            (*r, rule)
        })
        .collect();
    Some(Row { cfa: (register.0, *offset), rules })
}
