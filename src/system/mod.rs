//! Read-only facts of this machine and of the binaries it traces: which
//! tracepoints exist and their formats (tracefs), the functions, segments and
//! USDT notes of ELF files, DWARF and BTF types, kernel symbols, the files a
//! process maps, header `#define`s. Nothing here loads or attaches anything
//! (that is `runtime`); the checker sees these facts through `Facts`, and
//! `Machine` answers them from this machine, or from a recording of one
//! (`Machine::recorded`) so that the compiler's tests need no root.

pub mod binary;
pub mod btf;
pub mod dwarf;
pub mod golang;
pub mod headers;
pub mod ifunc;
pub mod list;
pub mod privilege;
pub mod process;
pub mod resolve;
pub mod returns;
mod sandbox;
pub mod symbolize;
pub mod symbols;
pub mod tracefs;
pub mod unwind;
pub mod uprobe_insn;
mod usdt_notes;

use crate::types::{EnumType, Record, Type};
use binary::Binary;
use dwarf::DwarfTypes;
pub use golang::GoidError;
use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
pub use symbols::{Symbol, SymbolError};

/// What the checker asks of the system while it checks, only for what a
/// program uses (a program that never names a kernel struct never reads BTF).
pub trait Facts {
    /// A struct or union by its C name (`struct task_struct`), laid out:
    /// from the DWARF of `binaries` (the ones the program probes) first, then
    /// the kernel's BTF. Structs its members point to are stubs (a name and a
    /// size, no fields), looked up again when a program reaches into them.
    fn record(&self, name: &str, binaries: &[&Path]) -> Option<Record>;
    /// A kernel type named without `struct`/`union` (a typedef such as
    /// `arch_spinlock_t`, or a struct's bare name such as `qspinlock`).
    fn named_type(&self, name: &str) -> Option<Type>;
    /// `enum Foo` from the kernel's BTF.
    fn enum_type(&self, name: &str) -> Option<EnumType>;
    /// The enum of the kernel's BTF that has a constant `name`, and its value.
    fn enum_constant(&self, name: &str) -> Option<(EnumType, u64)>;
    /// The parameters of function `func` of the binary at `path`, in order.
    fn params(&self, path: &Path, func: &str) -> Option<Vec<(String, Type)>>;
    /// `kaddr("name")`: a kernel symbol's address.
    fn kernel_symbol(&self, name: &str) -> Option<u64>;
    /// A kernel function's parameters and return type (kfunc `args`, `retval`).
    fn kernel_function(&self, name: &str) -> Option<btf::Prototype>;
    /// `uaddr("name")` in a uprobe (a uretprobe when `ret`) at file offset
    /// `probe_offset` of the binary at `path`.
    fn user_symbol(&self, path: &Path, probe_offset: u64, ret: bool, name: &str) -> Result<Symbol, SymbolError>;
    /// `goid` in the Go binary at `path`: the offset of `runtime.g.goid`,
    /// from its DWARF, or from its Go version's layout.
    fn goid_offset(&self, path: &Path) -> Result<u64, GoidError>;
    /// rtrace's own PID namespace (device and inode of `/proc/self/ns/pid`)
    /// when it is not the initial one: `pid` and `tid` count in it.
    fn pid_namespace(&self) -> Option<(u64, u64)>;
    /// `cgroupid("/sys/fs/cgroup/x")`: the cgroup v2 id of the cgroup at
    /// that path (its directory's inode number, as the kernel's
    /// `bpf_get_current_cgroup_id()` gives it on 64-bit systems).
    fn cgroup_id(&self, path: &Path) -> Option<u64>;
}

/// No system at all: every question has no answer (unit tests of the checker).
pub struct NoFacts;

impl Facts for NoFacts {
    fn record(&self, _: &str, _: &[&Path]) -> Option<Record> {
        None
    }
    fn enum_type(&self, _: &str) -> Option<EnumType> {
        None
    }
    fn named_type(&self, _: &str) -> Option<Type> {
        None
    }
    fn enum_constant(&self, _: &str) -> Option<(EnumType, u64)> {
        None
    }
    fn params(&self, _: &Path, _: &str) -> Option<Vec<(String, Type)>> {
        None
    }
    fn kernel_symbol(&self, _: &str) -> Option<u64> {
        None
    }
    fn kernel_function(&self, _: &str) -> Option<btf::Prototype> {
        None
    }
    fn cgroup_id(&self, _: &Path) -> Option<u64> {
        None
    }
    fn user_symbol(&self, path: &Path, _: u64, _: bool, name: &str) -> Result<Symbol, SymbolError> {
        Err(SymbolError::NotFound { scope: path.display().to_string(), name: name.to_string() })
    }
    fn goid_offset(&self, path: &Path) -> Result<u64, GoidError> {
        Err(GoidError::NotGo(path.display().to_string()))
    }
    fn pid_namespace(&self) -> Option<(u64, u64)> {
        None
    }
}

/// Where a `Machine` reads the kernel's side of its facts.
#[derive(Clone, Debug)]
struct KernelFiles {
    /// tracefs (`None`: not mounted).
    tracefs: Option<PathBuf>,
    /// `/proc/kallsyms`.
    kallsyms: PathBuf,
    /// The kernel's BTF (`None`: the kernel has none).
    btf: Option<PathBuf>,
    /// rtrace's PID namespace is read from `/proc/self` (not in a recording,
    /// which is of the initial namespace).
    own_pid_namespace: bool,
}

/// This machine's facts, each read at most once per run: tracefs, kernel
/// symbols and BTF, and the ELF files and DWARF of the binaries programs
/// name (read from the file system as the program names them).
pub struct Machine {
    kernel: KernelFiles,
    /// `-p PID`: binaries and libraries are looked up among its files.
    pub pid: Option<u32>,
    binaries: RefCell<HashMap<PathBuf, Rc<Binary>>>,
    dwarf: RefCell<HashMap<PathBuf, Option<Rc<DwarfTypes>>>>,
    btf: OnceCell<Option<libbpf_rs::btf::Btf<'static>>>,
    /// Every enum constant of the kernel's BTF → its enum's type id.
    btf_enum_constants: OnceCell<HashMap<String, libbpf_rs::btf::TypeId>>,
    kallsyms: OnceCell<Vec<(u64, String)>>,
    /// Every function of the kernel's BTF (kfunc wildcards).
    btf_functions: OnceCell<Vec<String>>,
    /// The functions kprobes may attach to (kprobe wildcards).
    kprobe_functions: OnceCell<Vec<String>>,
    /// The raw tracepoints of the kernel's BTF (rawtracepoint wildcards).
    raw_tracepoints: OnceCell<Vec<String>>,
}

impl Machine {
    /// The machine rtrace runs on.
    pub fn new(pid: Option<u32>) -> Machine {
        let btf = Path::new(btf::VMLINUX);
        Machine::with(
            KernelFiles {
                tracefs: tracefs::mounted(),
                kallsyms: PathBuf::from("/proc/kallsyms"),
                btf: btf.exists().then(|| btf.to_path_buf()),
                own_pid_namespace: true,
            },
            pid,
        )
    }

    /// A machine recorded in directory `dir` (`tracing/` shaped like
    /// tracefs, with the `format` files of the recorded tracepoints and the
    /// functions kprobes may attach to; `kallsyms`). Binaries are still read
    /// from the file system: they are the program's inputs, and readable by
    /// any user; so is the kernel's BTF (`dir/btf` instead, if recorded),
    /// which is too large to record.
    pub fn recorded(dir: &Path) -> Machine {
        let btf = [dir.join("btf"), PathBuf::from(btf::VMLINUX)].into_iter().find(|p| p.exists());
        let kernel = KernelFiles {
            tracefs: Some(dir.join("tracing")),
            kallsyms: dir.join("kallsyms"),
            btf,
            own_pid_namespace: false,
        };
        Machine::with(kernel, None)
    }

    fn with(kernel: KernelFiles, pid: Option<u32>) -> Machine {
        Machine {
            kernel,
            pid,
            binaries: RefCell::default(),
            dwarf: RefCell::default(),
            btf: OnceCell::new(),
            btf_enum_constants: OnceCell::new(),
            kallsyms: OnceCell::new(),
            btf_functions: OnceCell::new(),
            kprobe_functions: OnceCell::new(),
            raw_tracepoints: OnceCell::new(),
        }
    }

    /// Whether the kernel has BTF (`BPFTRACE_HAVE_BTF` is defined for scripts).
    pub fn has_btf(&self) -> bool {
        self.kernel.btf.is_some()
    }

    /// tracefs, when mounted (or recorded).
    pub fn tracefs(&self) -> Option<&Path> {
        self.kernel.tracefs.as_deref()
    }

    /// An ELF file's symbols, segments and notes, parsed once.
    pub fn binary(&self, path: &Path) -> Result<Rc<Binary>, binary::BinaryError> {
        if let Some(b) = self.binaries.borrow().get(path) {
            return Ok(b.clone());
        }
        let b = Rc::new(Binary::read(path)?);
        self.binaries.borrow_mut().insert(path.to_path_buf(), b.clone());
        Ok(b)
    }

    /// The DWARF of a file, parsed once.
    pub fn dwarf(&self, path: &Path) -> Option<Rc<DwarfTypes>> {
        self.dwarf.borrow_mut().entry(path.to_path_buf()).or_insert_with(|| DwarfTypes::load(path).map(Rc::new)).clone()
    }

    /// The kernel's BTF, when it has one.
    pub fn btf(&self) -> Option<&libbpf_rs::btf::Btf<'static>> {
        self.btf.get_or_init(|| self.kernel.btf.as_deref().and_then(btf::load)).as_ref()
    }

    /// Every function the kernel's BTF describes, sorted (empty without BTF).
    pub fn btf_functions(&self) -> &[String] {
        self.btf_functions.get_or_init(|| self.btf().map(btf::functions).unwrap_or_default())
    }

    /// The kernel functions kprobes may attach to: tracefs's
    /// `available_filter_functions` without the kprobe blacklist, sorted;
    /// empty where the kernel does not say (no tracefs, or lockdown).
    pub fn kprobe_functions(&self) -> &[String] {
        self.kprobe_functions.get_or_init(|| match self.tracefs() {
            Some(root) => tracefs::kprobe_functions(root),
            None => vec![],
        })
    }

    /// Every raw tracepoint the kernel's BTF names, sorted (empty without BTF).
    pub fn raw_tracepoints(&self) -> &[String] {
        self.raw_tracepoints.get_or_init(|| self.btf().map(btf::raw_tracepoints).unwrap_or_default())
    }

    /// Kernel symbols, sorted by address.
    fn kallsyms(&self) -> &[(u64, String)] {
        self.kallsyms.get_or_init(|| symbols::read_kallsyms(&self.kernel.kallsyms))
    }
}

impl Facts for Machine {
    fn record(&self, name: &str, binaries: &[&Path]) -> Option<Record> {
        for bin in binaries {
            if let Some(r) = self.dwarf(bin).and_then(|d| d.record(name)) {
                return Some(r);
            }
        }
        btf::record(self.btf()?, name)
    }

    fn enum_type(&self, name: &str) -> Option<EnumType> {
        btf::enum_type(self.btf()?, name)
    }

    fn named_type(&self, name: &str) -> Option<Type> {
        btf::named_type(self.btf()?, name)
    }

    fn enum_constant(&self, name: &str) -> Option<(EnumType, u64)> {
        let btf = self.btf()?;
        let id = *self.btf_enum_constants.get_or_init(|| btf::enum_constants(btf)).get(name)?;
        btf::enum_of(btf, id, name)
    }

    fn params(&self, path: &Path, func: &str) -> Option<Vec<(String, Type)>> {
        let d = self.dwarf(path)?;
        let params = d.params(func)?;
        Some(params.iter().map(|p| (p.name.clone(), d.param_type(p))).collect())
    }

    fn kernel_symbol(&self, name: &str) -> Option<u64> {
        self.kallsyms().iter().find(|(_, n)| n == name).map(|(address, _)| *address)
    }

    fn kernel_function(&self, name: &str) -> Option<btf::Prototype> {
        btf::function(self.btf()?, name)
    }

    fn cgroup_id(&self, path: &Path) -> Option<u64> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().filter(|m| m.is_dir()).map(|m| m.ino())
    }

    fn user_symbol(&self, path: &Path, probe_offset: u64, ret: bool, name: &str) -> Result<Symbol, SymbolError> {
        let binary = self.binary(path).map_err(|e| SymbolError::Unreadable(e.to_string()))?;
        symbols::user_symbol(&binary, probe_offset, ret, name)
    }

    fn goid_offset(&self, path: &Path) -> Result<u64, GoidError> {
        let shown = || path.display().to_string();
        let binary = self.binary(path).map_err(|e| GoidError::Unreadable(e.to_string()))?;
        let go = binary.go.as_ref().ok_or_else(|| GoidError::NotGo(shown()))?;
        let version = go.version.ok_or_else(|| GoidError::NoVersion(shown()))?;
        if version < golang::REGISTER_G_SINCE {
            return Err(GoidError::Old { path: shown(), version });
        }
        let from_dwarf = self.dwarf(path).and_then(|d| d.record("struct runtime.g"));
        if let Some(m) = from_dwarf.as_ref().and_then(|g| g.fields.iter().find(|m| m.name == "goid")) {
            return Ok(m.offset as u64);
        }
        golang::goid_offset(version).ok_or(GoidError::Unknown { path: shown(), version })
    }

    fn pid_namespace(&self) -> Option<(u64, u64)> {
        self.kernel.own_pid_namespace.then(process::own_pid_namespace).flatten()
    }
}
