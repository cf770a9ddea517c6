//! ELF bytes → programs and maps in the kernel, through libbpf-rs. A
//! verifier log buffer (one per program when `verbose`) lets a rejection be
//! reported with its log; libbpf's own warnings are captured, not printed.

use libbpf_rs::{AsRawLibbpf, Object, ObjectBuilder, PrintLevel, ProgramAttachType};
use std::collections::{HashMap, HashSet};
use std::os::fd::BorrowedFd;
use std::sync::Mutex;

/// Verifier log buffer per program. Allocated zeroed (untouched pages cost no
/// memory); the kernel keeps the log's tail when it overflows.
const LOG_BUF_BYTES: usize = 1 << 20;

static LIBBPF_LOG: Mutex<String> = Mutex::new(String::new());

fn capture(_level: PrintLevel, msg: String) {
    if let Ok(mut log) = LIBBPF_LOG.lock() {
        log.push_str(&msg);
    }
}

#[derive(Clone, Debug, Default)]
pub struct LoadOptions<'a> {
    /// Keep the verifier log of programs that load (log level 1).
    pub verbose: bool,
    /// Initial contents of `.rodata` (values known only at run time).
    pub rodata: Option<Vec<u8>>,
    /// Maps that already exist, by name, used instead of new ones (the
    /// REPL's session maps). A name starting with `.` matches libbpf's
    /// internal map of that section (`.bss` is `<object>.bss`).
    pub reuse: Vec<(String, BorrowedFd<'a>)>,
    /// Load only these programs; `None`: all.
    pub only: Option<HashSet<String>>,
    /// Programs loaded for multi links (uprobe_multi, kprobe_multi) rather
    /// than a link per site, with that attach type.
    pub multi_link: HashMap<String, ProgramAttachType>,
}

pub struct Loaded {
    pub object: Object,
    /// `(program, verifier log)` of every program, when `verbose`.
    pub logs: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("libbpf cannot open the object: {message}\n{libbpf_log}")]
    Open { message: String, libbpf_log: String },
    #[error("the verifier rejected program `{program}`")]
    Verifier { program: String, log: String },
    #[error("{message}\n{libbpf_log}")]
    Other { message: String, libbpf_log: String },
}

fn take_libbpf_log() -> String {
    LIBBPF_LOG.lock().map(|mut l| std::mem::take(&mut *l)).unwrap_or_default()
}

pub fn load(elf: &[u8], opts: &LoadOptions) -> Result<Loaded, LoadError> {
    libbpf_rs::set_print(Some((PrintLevel::Warn, capture)));
    take_libbpf_log();
    let open_err = |e: libbpf_rs::Error| LoadError::Open { message: e.to_string(), libbpf_log: take_libbpf_log() };
    let mut builder = ObjectBuilder::default();
    builder.name("rtrace").map_err(open_err)?;
    let mut open = builder.open_memory(elf).map_err(open_err)?;
    for mut map in open.maps_mut() {
        let name = map.name().to_string_lossy().into_owned();
        if let (Some(data), true) = (&opts.rodata, name.ends_with(".rodata")) {
            map.set_initial_value(data).map_err(open_err)?;
        }
        if name == crate::contract::FRAME_SCRATCH_MAP {
            // One frame per CPU, indexed by `bpf_get_smp_processor_id()`.
            let ncpus = libbpf_rs::num_possible_cpus().unwrap_or(1) as u32;
            map.set_max_entries(ncpus).map_err(open_err)?;
        }
        let reused = opts.reuse.iter().find(|(n, _)| *n == name || (n.starts_with('.') && name.ends_with(n.as_str())));
        if let Some((_, fd)) = reused {
            map.reuse_fd(*fd).map_err(open_err)?;
        }
    }
    // Without `verbose` the kernel writes a log only when a load fails, and
    // libbpf stops at the first program that fails: one buffer shared by all
    // programs is enough (one each cost 8,000 probes a gigabyte).
    let mut names: Vec<String> = Vec::new();
    let mut buffers: Vec<Vec<u8>> = Vec::new();
    for mut prog in open.progs_mut() {
        prog.set_autoattach(false);
        let name = prog.name().to_string_lossy().into_owned();
        if let Some(only) = &opts.only {
            prog.set_autoload(only.contains(&name));
        }
        if opts.verbose {
            prog.set_log_level(1);
        }
        if let Some(kind) = opts.multi_link.get(prog.name().to_string_lossy().as_ref()) {
            prog.set_attach_type(kind.clone());
        }
        if opts.verbose || buffers.is_empty() {
            buffers.push(vec![0u8; LOG_BUF_BYTES]);
        }
        let buf = buffers.last_mut().expect("a log buffer");
        // SAFETY: the buffer outlives `load()` below (kept in `buffers`) and
        // its heap allocation does not move when the Vec is moved.
        unsafe {
            libbpf_rs::libbpf_sys::bpf_program__set_log_buf(
                prog.as_libbpf_object().as_ptr(),
                buf.as_mut_ptr() as *mut std::os::raw::c_char,
                buf.len() as _,
            );
        }
        names.push(name);
    }
    let result = open.load();
    let text = |buf: &[u8]| {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    };
    match result {
        Ok(object) => {
            take_libbpf_log();
            let logs = match opts.verbose {
                true => names.into_iter().zip(buffers.iter().map(|b| text(b))).collect(),
                false => vec![],
            };
            Ok(Loaded { object, logs })
        }
        Err(e) => {
            let libbpf_log = take_libbpf_log();
            // The program whose load failed is the one libbpf names; its log
            // buffer holds the verifier's reasons.
            let failed = names.iter().enumerate().find(|(i, name)| {
                let buf = &buffers[if opts.verbose { *i } else { 0 }];
                buf[0] != 0 && libbpf_log.contains(&format!("prog '{}'", name))
            });
            match failed {
                Some((i, program)) => Err(LoadError::Verifier {
                    program: program.clone(),
                    log: text(&buffers[if opts.verbose { i } else { 0 }]),
                }),
                None => Err(LoadError::Other { message: e.to_string(), libbpf_log }),
            }
        }
    }
}

/// Index of the instruction the verifier gave up on: the one its message
/// names (`infinite loop detected at insn 52`, `unreachable insn 6`), else
/// the last one it printed (`12: (79) r1 = *(u64 *)(r6 +0)`).
pub fn failing_insn(log: &str) -> Option<usize> {
    const PHRASES: &[&str] = &["at insn ", "unreachable insn ", "back-edge from insn ", "jump out of range from insn "];
    let named = log.lines().rev().take(8).find_map(|l| {
        PHRASES.iter().find_map(|p| {
            let at = l.find(p)? + p.len();
            l[at..].chars().take_while(|c| c.is_ascii_digit()).collect::<String>().parse().ok()
        })
    });
    named.or_else(|| {
        log.lines()
            .filter_map(|l| {
                let (num, rest) = l.split_once(": (")?;
                num.trim().parse::<usize>().ok().filter(|_| rest.len() > 2 && rest.as_bytes()[2] == b')')
            })
            .next_back()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_last_instruction() {
        let log = "0: R1=ctx() R10=fp0\n; @x = 1; @ stdin:1\n0: (b7) r1 = 1\n1: (79) r0 = *(u64 *)(r1 +0)\nR1 invalid mem access 'scalar'\nprocessed 2 insns";
        assert_eq!(failing_insn(log), Some(1));
        assert_eq!(failing_insn("nothing here"), None);
        assert_eq!(
            failing_insn(
                "51: (85) call bpf_map_update_elem#2\ninfinite loop detected at insn 52\ncur state: R0=scalar()"
            ),
            Some(52)
        );
        assert_eq!(failing_insn("unreachable insn 6\nprocessed 0 insns"), Some(6));
        assert_eq!(
            failing_insn("7: (85) call x\nprocessed 86 insns (limit 1000000) max_states_per_insn 1 total_states 7"),
            Some(7)
        );
    }
}
