//! Whole maps read, deleted and zeroed through the kernel's batch
//! operations (`BPF_MAP_LOOKUP_BATCH`, `BPF_MAP_DELETE_BATCH`,
//! `BPF_MAP_UPDATE_BATCH`): thousands of entries per system call, where
//! walking the keys took two system calls per entry (a 1,000,000-key map
//! took 11 s of system time to print). Kernels or map types without them
//! fall back to the walk (`None` / `Err`).

use libbpf_rs::libbpf_sys as sys;
use libbpf_rs::{MapCore, MapHandle};
use std::os::fd::{AsFd, AsRawFd};

/// Entries asked for per call (the kernel may return fewer).
const CHUNK: usize = 16384;

/// A map's entries: keys and values, each packed at a fixed stride.
pub struct Entries {
    pub keys: Vec<u8>,
    pub values: Vec<u8>,
    pub key_size: usize,
    /// One value, or for per-CPU maps one 8-aligned value per possible CPU.
    pub value_stride: usize,
    /// Bytes of one CPU's value in a per-CPU map (else the value's size).
    pub cpu_stride: usize,
    pub count: usize,
}

impl Entries {
    pub fn key(&self, i: usize) -> &[u8] {
        &self.keys[i * self.key_size..(i + 1) * self.key_size]
    }

    /// Entry `i`'s value of each CPU (one slice for maps that are not per CPU).
    pub fn values(&self, i: usize) -> impl Iterator<Item = &[u8]> {
        self.values[i * self.value_stride..(i + 1) * self.value_stride].chunks(self.cpu_stride)
    }
}

fn opts() -> sys::bpf_map_batch_opts {
    sys::bpf_map_batch_opts { sz: std::mem::size_of::<sys::bpf_map_batch_opts>() as _, ..Default::default() }
}

/// Every entry of `map`, read in batches; `None` when the kernel cannot
/// (no batch operations for this map type or kernel).
pub fn read(map: &MapHandle) -> Option<Entries> {
    read_batches(map, false)
}

/// Every entry of `map`, read and deleted in the same batches
/// (`BPF_MAP_LOOKUP_AND_DELETE_BATCH`, hash maps); `None` when the kernel
/// cannot, before anything was deleted.
pub fn take(map: &MapHandle) -> Option<Entries> {
    read_batches(map, true)
}

fn read_batches(map: &MapHandle, delete: bool) -> Option<Entries> {
    let key_size = map.key_size() as usize;
    let value_size = map.value_size() as usize;
    let (value_stride, cpu_stride) = if map.map_type().is_percpu() {
        let cpus = libbpf_rs::num_possible_cpus().ok()?;
        let aligned = value_size.div_ceil(8) * 8;
        (aligned * cpus, aligned)
    } else {
        (value_size, value_size.max(1))
    };
    let fd = map.as_fd().as_raw_fd();
    let mut chunk = CHUNK;
    let mut keys = Vec::new();
    let mut values = Vec::new();
    let mut count = 0usize;
    // The position between calls: for hash maps a bucket index (u32), for
    // arrays a key; 8 bytes or a key's size, whichever is larger.
    let mut token_in = vec![0u8; key_size.max(8)];
    let mut token_out = vec![0u8; key_size.max(8)];
    let mut first = true;
    loop {
        keys.resize((count + chunk) * key_size, 0);
        values.resize((count + chunk) * value_stride, 0);
        let mut n = chunk as u32;
        let o = opts();
        // SAFETY: the buffers hold `chunk` more keys and values past
        // `count`; the tokens are at least as large as the kernel's.
        let lookup = if delete { sys::bpf_map_lookup_and_delete_batch } else { sys::bpf_map_lookup_batch };
        let r = unsafe {
            lookup(
                fd,
                if first { std::ptr::null_mut() } else { token_in.as_mut_ptr().cast() },
                token_out.as_mut_ptr().cast(),
                keys.as_mut_ptr().add(count * key_size).cast(),
                values.as_mut_ptr().add(count * value_stride).cast(),
                &mut n,
                &o,
            )
        };
        let errno = if r < 0 { -r } else { 0 };
        match errno {
            0 | libc::ENOENT => {
                count += n as usize;
                if errno == libc::ENOENT {
                    break;
                }
                std::mem::swap(&mut token_in, &mut token_out);
                first = false;
            }
            // One bucket holds more entries than asked for.
            libc::ENOSPC if chunk < 1 << 24 => chunk *= 2,
            _ => return None,
        }
    }
    keys.truncate(count * key_size);
    values.truncate(count * value_stride);
    Some(Entries { keys, values, key_size, value_stride, cpu_stride, count })
}

/// Deletes `keys` (packed, `key_size` bytes each) in batches; a key
/// deleted meanwhile (by a program) is passed over.
pub fn delete(map: &MapHandle, keys: &[u8], key_size: usize) -> Result<(), i32> {
    each_batch(
        keys,
        key_size,
        |fd, chunk, n, o| {
            // SAFETY: `chunk` holds `n` keys.
            unsafe { sys::bpf_map_delete_batch(fd, chunk.as_ptr().cast(), n, o) }
        },
        map,
        0,
    )
}

/// Sets the values of `keys` (packed) that still exist to zeros of
/// `value_stride` bytes each (per-CPU maps: every CPU's), in batches.
pub fn zero(map: &MapHandle, keys: &[u8], key_size: usize, value_stride: usize) -> Result<(), i32> {
    let zeros = vec![0u8; CHUNK * value_stride];
    each_batch(
        keys,
        key_size,
        |fd, chunk, n, o| {
            // SAFETY: `chunk` holds `n` keys, `zeros` at least `n` values.
            unsafe { sys::bpf_map_update_batch(fd, chunk.as_ptr().cast(), zeros.as_ptr().cast(), n, o) }
        },
        map,
        sys::BPF_EXIST as u64,
    )
}

/// Runs `op` on `keys` in chunks of at most `CHUNK`; where it stops at a
/// key that is gone (ENOENT, with the count of keys done), goes on after it.
fn each_batch(
    keys: &[u8],
    key_size: usize,
    mut op: impl FnMut(i32, &[u8], &mut u32, &sys::bpf_map_batch_opts) -> i32,
    map: &MapHandle,
    elem_flags: u64,
) -> Result<(), i32> {
    if key_size == 0 {
        return Err(libc::EINVAL);
    }
    let fd = map.as_fd().as_raw_fd();
    let mut o = opts();
    o.elem_flags = elem_flags;
    for chunk in keys.chunks(CHUNK * key_size) {
        let mut rest = chunk;
        while !rest.is_empty() {
            let mut n = (rest.len() / key_size) as u32;
            let r = op(fd, rest, &mut n, &o);
            if r == 0 {
                break;
            }
            if -r != libc::ENOENT {
                return Err(-r);
            }
            rest = rest.get((n as usize + 1) * key_size..).unwrap_or(&[]);
        }
    }
    Ok(())
}
