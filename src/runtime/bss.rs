//! The `.bss` counters (`contract::Counters`) seen from user space: each u64
//! word read and written on its own through the memory-mapped section, so a
//! write (the entry count `clear()` resets) is atomic against the programs'
//! `lock add`s to the other words, and a read costs no system call.

use libbpf_rs::{MapCore, MapFlags, MapHandle};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

/// `BPF_F_MMAPABLE`: libbpf creates `.bss` with it where the kernel has it
/// (Linux 5.5, older than the ring buffer rtrace needs).
const MMAPABLE: u32 = 1 << 10;

pub struct Bss {
    map: MapHandle,
    mapped: Option<Mapping>,
}

/// The section mapped into this process.
struct Mapping {
    words: NonNull<AtomicU64>,
    count: usize,
    bytes: usize,
}

impl Bss {
    /// `map` is the object's `.bss` (or the session's shared one).
    pub fn new(map: MapHandle) -> Bss {
        let mapped = Mapping::of(&map);
        Bss { map, mapped }
    }

    /// Counter `index`, 0 past the end.
    pub fn read(&self, index: usize) -> u64 {
        match &self.mapped {
            Some(m) => m.word(index).map_or(0, |w| w.load(Ordering::Relaxed)),
            None => {
                let at = crate::contract::Counters::offset(index);
                let value = self.map.lookup(&0u32.to_le_bytes(), MapFlags::ANY).ok().flatten().unwrap_or_default();
                value.get(at..at + 8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
            }
        }
    }

    /// Sets counter `index`.
    pub fn set(&self, index: usize, value: u64) {
        match &self.mapped {
            Some(m) => {
                if let Some(w) = m.word(index) {
                    w.store(value, Ordering::Relaxed);
                }
            }
            // Without the mapping (a kernel without mmapable arrays, which
            // rtrace's ring buffer needs anyway) only the whole section can
            // be written: an add a program makes meanwhile is lost.
            None => {
                let key = 0u32.to_le_bytes();
                if let Ok(Some(mut data)) = self.map.lookup(&key, MapFlags::ANY) {
                    let at = crate::contract::Counters::offset(index);
                    if let Some(word) = data.get_mut(at..at + 8) {
                        word.copy_from_slice(&value.to_le_bytes());
                        let _ = self.map.update(&key, &data, MapFlags::ANY);
                    }
                }
            }
        }
    }

    /// Whether words are read and written through the mapping.
    pub fn is_mapped(&self) -> bool {
        self.mapped.is_some()
    }
}

impl Mapping {
    fn of(map: &MapHandle) -> Option<Mapping> {
        let info = map.info().ok()?.info;
        if info.map_flags & MMAPABLE == 0 || info.max_entries != 1 {
            return None;
        }
        let size = info.value_size as usize;
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as usize;
        let bytes = size.div_ceil(page) * page;
        use std::os::fd::{AsFd, AsRawFd};
        // SAFETY: a shared mapping of the map's own memory, as the kernel
        // offers it for BPF_F_MMAPABLE arrays; unmapped in Drop.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                map.as_fd().as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return None;
        }
        Some(Mapping { words: NonNull::new(ptr as *mut AtomicU64)?, count: size / 8, bytes })
    }

    fn word(&self, index: usize) -> Option<&AtomicU64> {
        // SAFETY: in bounds, page-aligned memory of u64 words that lives as
        // long as `self`; the programs change it only with atomic adds.
        (index < self.count).then(|| unsafe { &*self.words.as_ptr().add(index) })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `of`, no longer referenced.
        unsafe { libc::munmap(self.words.as_ptr() as *mut libc::c_void, self.bytes) };
    }
}
