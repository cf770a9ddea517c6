//! Attach points → concrete probes, against this system: tracepoints from
//! tracefs (wildcards expanded, formats read), uprobe binaries and symbols
//! from their ELF files. Errors name what was not found and suggest close
//! matches.

use super::binary::{self, Binary};
use super::returns::{self, ReturnSiteError};
use super::{process, tracefs, Facts, Machine};
use crate::config::MissingProbes;
use crate::diagnostic::{closest, Diagnostic};
use crate::parser::ast::{AttachPoint, Program};
use crate::probe::glob;
use crate::probe::spec::{interpret, ProbeSpec, UprobeTarget};
use crate::probe::usdt::UsdtLoc;
use crate::probe::{Detail, Lang, Resolved, Return, TracepointFormat, UprobeSite, UsdtSite};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// A `software:`/`hardware:` event the kernel knows, or an error naming it.
fn perf_event(spec: &ProbeSpec, event: &str) -> Result<(), Diagnostic> {
    use crate::probe::perf_events::{config, names, HARDWARE, SOFTWARE};
    let (kind, table) =
        if matches!(spec, ProbeSpec::Software { .. }) { ("software", SOFTWARE) } else { ("hardware", HARDWARE) };
    if config(table, event).is_some() {
        return Ok(());
    }
    let d = Diagnostic::error_nowhere(format!("unknown {} event `{}`", kind, event)).with_note(format!(
        "{} events: {}",
        kind,
        table.iter().map(|e| e.0).collect::<Vec<_>>().join(", ")
    ));
    Err(suggest(d, event, names(table)))
}

impl Machine {
    /// Resolves every probe's attach points; the result is parallel to
    /// `program.probes`, whose first ones may be `known` already (the REPL's
    /// earlier inputs: tracefs and binaries are read once). With `-p`,
    /// binaries and libraries are looked up among the files that process maps.
    ///
    /// An attach point that names nothing here (a function, tracepoint or
    /// binary that does not exist) is an error, or with `missing_probes`
    /// set to `warn` or `ignore` is skipped; a probe left with no attach
    /// point is then removed (`Resolution::removed`).
    pub fn resolve(
        &self,
        program: &Program,
        params: &[String],
        known: &[Vec<Resolved>],
        missing: MissingProbes,
    ) -> Result<Resolution, Vec<Diagnostic>> {
        let mut r =
            Resolver { machine: self, diags: Vec::new(), files: HashMap::new(), located: HashMap::new(), missing };
        let mut removed = Vec::new();
        let mut points = Vec::new();
        for (i, p) in program.probes.iter().enumerate() {
            if let Some(k) = known.get(i) {
                points.push(k.clone());
                continue;
            }
            let mut skipped = false;
            let mut resolved = Vec::new();
            for ap in &p.attach_points {
                match r.attach_point(ap, params) {
                    Some(v) => resolved.extend(v),
                    None => skipped = true,
                }
            }
            if resolved.is_empty() && skipped {
                let span = p.attach_points.first().map(|ap| ap.span);
                // (Under `error`, the attach points' own errors say it all.)
                let d = match (missing, span) {
                    (MissingProbes::Warn, Some(s)) => Some(Diagnostic::warning(
                        "Probe has no valid attach points. It is being removed which may cause issues with program behavior.",
                        s,
                    )),
                    _ => None,
                };
                r.diags.extend(d);
                removed.push(i);
            }
            points.push(resolved);
        }
        if r.diags.iter().any(Diagnostic::is_error) {
            Err(r.diags)
        } else {
            Ok(Resolution { points, warnings: r.diags, removed })
        }
    }
}

/// Every probe's attach points, resolved against this system.
#[derive(Debug, Default)]
pub struct Resolution {
    /// Each probe's concrete probes, parallel to the program's probes.
    pub points: Vec<Vec<Resolved>>,
    /// Attach points skipped under `missing_probes = warn`, and why.
    pub warnings: Vec<Diagnostic>,
    /// The probes whose every attach point names nothing here (indexes).
    pub removed: Vec<usize>,
}

struct Resolver<'m> {
    machine: &'m Machine,
    diags: Vec<Diagnostic>,
    /// The contents of the files whose code was decoded, read once.
    files: HashMap<PathBuf, Rc<Vec<u8>>>,
    missing: MissingProbes,
    /// The files each target (and `all`) named, found once: a library name
    /// is looked for in every library directory (1,000 attach points in
    /// `libc` listed those directories 16,000 times, 1 s).
    located: HashMap<(String, bool), Vec<Target>>,
}

/// Why an attach point resolved to nothing.
enum Miss {
    /// It names nothing on this system: `missing_probes` decides.
    NoMatch(Diagnostic),
    Failed(Diagnostic),
}

impl From<Diagnostic> for Miss {
    fn from(d: Diagnostic) -> Miss {
        Miss::Failed(d)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("process {0} does not exist (-p)")]
    NoProcess(u32),
    #[error("this probe names no binary: give its path, or a process with -p PID")]
    NoBinary,
    #[error("no binaries match `{0}`")]
    NoMatch(String),
    #[error("{error}{}", suggestion.as_ref().map(|s| format!(" (did you mean `{}`?)", s)).unwrap_or_default())]
    Binary { error: binary::BinaryError, suggestion: Option<String> },
}

/// A file a uprobe or USDT target names: where rtrace opens it, and how
/// probe names show it.
#[derive(Clone, Debug)]
pub struct Target {
    pub path: PathBuf,
    pub shown: String,
}

/// The files a target names: a path, a library or program name (among
/// the `-p` process's files first), a wildcard path, or with `-p` an empty
/// target or `*` for every file of the process (`all`) or its executable.
pub fn targets(target: &str, pid: Option<u32>, all: bool) -> Result<Vec<Target>, TargetError> {
    if let Some(pid) = pid.filter(|p| !process::exists(*p)) {
        return Err(TargetError::NoProcess(pid));
    }
    let module = |m: process::Module| Target { path: m.open_path, shown: m.name };
    if target.is_empty() || target == "*" {
        let Some(pid) = pid else {
            return Err(TargetError::NoBinary);
        };
        let mut mods = process::modules(pid);
        if !all {
            mods.truncate(1);
        }
        return Ok(mods.into_iter().map(module).collect());
    }
    if glob::is_glob(target) {
        let (dir, pattern) = target.rsplit_once('/').unwrap_or((".", target));
        let dir_path = if dir.is_empty() { "/" } else { dir };
        let mut files: Vec<String> = std::fs::read_dir(dir_path)
            .map(|rd| rd.flatten().filter_map(|e| e.file_name().into_string().ok()).collect())
            .unwrap_or_default();
        files.sort();
        let found: Vec<Target> = files
            .into_iter()
            .filter(|f| glob::matches(pattern, f))
            .map(|f| (Path::new(dir_path).join(&f), format!("{}/{}", dir, f)))
            .filter(|(p, _)| p.is_file() && binary::is_elf(p))
            .map(|(path, shown)| Target { path, shown })
            .collect();
        if found.is_empty() {
            return Err(TargetError::NoMatch(target.to_string()));
        }
        return Ok(found);
    }
    if let Some(pid) = pid {
        if !target.contains('/') {
            if let Some(m) = process::library(pid, target) {
                return Ok(vec![module(m)]);
            }
        } else if !Path::new(target).exists() {
            let path = process::open_path(pid, Path::new(target));
            if path.exists() {
                return Ok(vec![Target { path, shown: target.to_string() }]);
            }
        }
    }
    let path = binary::locate(target).map_err(|error| {
        let similar = binary::similar_targets(target);
        let suggestion = closest(target, similar.iter().map(String::as_str)).map(str::to_string);
        TargetError::Binary { error, suggestion }
    })?;
    let shown = if target.contains('/') { target.to_string() } else { path.display().to_string() };
    Ok(vec![Target { path, shown }])
}

impl Resolver<'_> {
    /// The concrete probes of one attach point; `None` when it names
    /// nothing and `missing_probes` says to skip it.
    fn attach_point(&mut self, ap: &AttachPoint, params: &[String]) -> Option<Vec<Resolved>> {
        let spec = match interpret(ap, params) {
            Ok(s) => s,
            Err(d) => {
                self.diags.push(d);
                return Some(vec![]);
            }
        };
        let result = match &spec {
            ProbeSpec::Tracepoint { category, event } => self.tracepoints(category, event),
            ProbeSpec::Uprobe { target, func, ret } => self.uprobes(target, func, *ret),
            ProbeSpec::Usdt { target, provider, name } => self.usdts(target, provider.as_deref(), name),
            ProbeSpec::Kprobe { func, offset, ret } => self.kprobes(func, *offset, *ret),
            ProbeSpec::Kfunc { func, ret } => self.kfuncs(func, *ret),
            ProbeSpec::RawTracepoint { module, event } => self.raw_tracepoints(ap, module.as_deref(), event),
            ProbeSpec::Software { event, .. } | ProbeSpec::Hardware { event, .. } => perf_event(&spec, event)
                .map(|()| {
                    vec![Resolved {
                        name: display_name(ap, &spec),
                        spec: spec.clone(),
                        detail: Detail::None,
                        wildcard: false,
                    }]
                })
                .map_err(Miss::Failed),
            other => Ok(vec![Resolved {
                name: display_name(ap, other),
                spec: spec.clone(),
                detail: Detail::None,
                wildcard: false,
            }]),
        };
        match result {
            // The attach points of a wildcard may be skipped when they cannot
            // be attached (`missing_probes`), a named one may not.
            Ok(mut v) => {
                let wildcard = glob::is_glob(&ap.raw);
                v.iter_mut().for_each(|r| r.wildcard = wildcard);
                Some(v)
            }
            Err(Miss::Failed(d)) => {
                self.diags.push(Diagnostic { span: Some(ap.span), ..d });
                Some(vec![])
            }
            Err(Miss::NoMatch(why)) => {
                // bpftrace's words (`No matches for uprobe ./prog:f.`), then rtrace's.
                let provider = match spec.provider() {
                    "kfunc" => "fentry",
                    "kretfunc" => "fexit",
                    p => p,
                };
                let what = format!("{} {}", provider, ap.parts.join(":"));
                let d = match self.missing {
                    MissingProbes::Error => Diagnostic::error(format!("No matches for {}.", what), ap.span)
                        .with_note(format!("note: {}", why.message))
                        .with_help(why.help.unwrap_or_else(|| {
                            "if this is expected, set the config variable `missing_probes` to \"warn\" or \"ignore\""
                                .into()
                        })),
                    MissingProbes::Warn => Diagnostic::warning(format!("No matches for {}. Skipping.", what), ap.span)
                        .with_note(format!("note: {}", why.message)),
                    MissingProbes::Ignore => return None,
                };
                self.diags.push(d);
                None
            }
        }
    }

    /// `rawtracepoint:[module:]event`: the raw tracepoints the kernel's BTF
    /// names (wildcards expanded), with their arguments; without BTF, the
    /// name as written (attaching decides).
    fn raw_tracepoints(&mut self, ap: &AttachPoint, module: Option<&str>, event: &str) -> Result<Vec<Resolved>, Miss> {
        let point = |e: &str, params: Vec<(String, crate::types::Type)>| Resolved {
            name: match module {
                Some(m) => format!("rawtracepoint:{}:{}", m, e),
                None => format!("rawtracepoint:{}", e),
            },
            spec: ProbeSpec::RawTracepoint { module: module.map(str::to_string), event: e.to_string() },
            detail: Detail::RawTracepoint { params },
            wildcard: false,
        };
        let Some(btf) = self.machine.btf() else {
            if glob::is_glob(event) {
                return Err(Miss::Failed(Diagnostic::error_nowhere(format!(
                    "cannot expand `{}`: the kernel has no BTF to list its raw tracepoints",
                    ap.raw
                ))));
            }
            return Ok(vec![point(event, vec![])]);
        };
        // Modules: vmlinux, or one whose BTF the kernel publishes.
        if let Some(m) = module {
            let vmlinux = glob::matches(m, "vmlinux");
            let any_module = std::fs::read_dir("/sys/kernel/btf")
                .map(|rd| {
                    rd.flatten().any(|e| e.file_name().to_str().is_some_and(|n| n != "vmlinux" && glob::matches(m, n)))
                })
                .unwrap_or(false);
            if !vmlinux && !any_module {
                return Err(Miss::NoMatch(Diagnostic::error_nowhere(format!("no kernel module `{}` is loaded", m))));
            }
            if !vmlinux {
                // A module's raw tracepoints are in its own (split) BTF.
                return Ok(vec![point(event, vec![])]);
            }
        }
        let known = self.machine.raw_tracepoints();
        let matched: Vec<&String> = known.iter().filter(|e| glob::matches(event, e)).collect();
        if matched.is_empty() {
            let d = Diagnostic::error_nowhere(format!("no raw tracepoint `{}` in the kernel's BTF", event));
            let d = if glob::is_glob(event) { d } else { suggest(d, event, known.iter().map(String::as_str)) };
            return Err(Miss::NoMatch(d));
        }
        Ok(matched
            .into_iter()
            .map(|e| point(e, super::btf::raw_tracepoint_params(btf, e).unwrap_or_default()))
            .collect())
    }

    fn tracepoints(&mut self, category: &str, event: &str) -> Result<Vec<Resolved>, Miss> {
        let Some(root) = self.machine.tracefs() else {
            if let Some(path) = tracefs::denied() {
                return Err(Miss::Failed(
                    Diagnostic::error_nowhere(format!("cannot read tracefs ({}): permission denied", path.display()))
                        .with_help(super::privilege::NEEDED),
                ));
            }
            return Err(Miss::Failed(
                Diagnostic::error_nowhere("tracefs is not mounted")
                    .with_help("mount it with `mount -t tracefs nodev /sys/kernel/tracing`"),
            ));
        };
        let categories = tracefs::categories(root);
        let matching_categories: Vec<&String> = categories.iter().filter(|c| glob::matches(category, c)).collect();
        if matching_categories.is_empty() {
            let d = Diagnostic::error_nowhere(format!("unknown tracepoint category `{}`", category));
            return Err(Miss::NoMatch(suggest(d, category, categories.iter().map(String::as_str))));
        }
        let mut out = Vec::new();
        for cat in matching_categories {
            let names = tracefs::events(root, cat);
            for name in names.iter().filter(|n| glob::matches(event, n)) {
                let text = match tracefs::format(root, cat, name) {
                    Ok(text) => text,
                    // An event directory without a format is not a tracepoint.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        return Err(Miss::Failed(Diagnostic::error_nowhere(format!(
                            "cannot read the format of tracepoint `{}:{}`: {}",
                            cat,
                            name,
                            crate::output::error_reason(&e)
                        ))))
                    }
                };
                let format = TracepointFormat::parse(&text).map_err(|e| Diagnostic::error_nowhere(e.to_string()))?;
                out.push(Resolved {
                    name: format!("tracepoint:{}:{}", cat, name),
                    spec: ProbeSpec::Tracepoint { category: cat.clone(), event: name.clone() },
                    detail: Detail::Tracepoint(format),
                    wildcard: false,
                });
            }
        }
        if out.is_empty() {
            if glob::is_glob(event) || glob::is_glob(category) {
                return Err(Miss::NoMatch(Diagnostic::error_nowhere(format!(
                    "no tracepoints match `{}:{}`",
                    category, event
                ))));
            }
            let names = tracefs::events(root, category);
            let d = Diagnostic::error_nowhere(format!("unknown tracepoint `{}:{}`", category, event));
            return Err(Miss::NoMatch(suggest(d, event, names.iter().map(String::as_str))));
        }
        Ok(out)
    }

    /// `kprobe:FUNC[+OFF]`: a wildcard stands for every matching function
    /// kprobes may attach to. A plain name is taken as it is: reading the
    /// kernel's list costs seconds on a slow machine, so attaching decides,
    /// and its error consults the list (`runtime::attach`).
    fn kprobes(&mut self, func: &str, offset: u64, ret: bool) -> Result<Vec<Resolved>, Miss> {
        let provider = if ret { "kretprobe" } else { "kprobe" };
        let point = |f: &str| Resolved {
            name: match offset {
                0 => format!("{}:{}", provider, f),
                off => format!("{}:{}+{}", provider, f, off),
            },
            spec: ProbeSpec::Kprobe { func: f.to_string(), offset, ret },
            detail: Detail::None,
            wildcard: false,
        };
        if !glob::is_glob(func) {
            return Ok(vec![point(func)]);
        }
        let known = self.machine.kprobe_functions();
        if known.is_empty() {
            return Err(Miss::Failed(Diagnostic::error_nowhere(format!(
                "cannot expand `{}:{}`: this kernel does not list the functions kprobes may attach to",
                provider, func
            ))));
        }
        let matched: Vec<Resolved> = known.iter().filter(|f| glob::matches(func, f)).map(|f| point(f)).collect();
        if matched.is_empty() {
            return Err(Miss::NoMatch(Diagnostic::error_nowhere(format!(
                "no kernel functions match `{}:{}`",
                provider, func
            ))));
        }
        Ok(matched)
    }

    /// `kfunc:FUNC` (`fentry`): functions the kernel's BTF describes (a
    /// BPF trampoline is built from the function's prototype there).
    fn kfuncs(&mut self, func: &str, ret: bool) -> Result<Vec<Resolved>, Miss> {
        let provider = if ret { "kretfunc" } else { "kfunc" };
        if self.machine.btf().is_none() {
            return Err(Miss::Failed(Diagnostic::error_nowhere(format!(
                "{} probes need the kernel's BTF ({}), and this kernel has none",
                provider,
                super::btf::VMLINUX
            ))));
        }
        let point = |f: &str| Resolved {
            name: format!("{}:{}", provider, f),
            spec: ProbeSpec::Kfunc { func: f.to_string(), ret },
            detail: Detail::None,
            wildcard: false,
        };
        let known = self.machine.btf_functions();
        if glob::is_glob(func) {
            let matched: Vec<Resolved> = known.iter().filter(|f| glob::matches(func, f)).map(|f| point(f)).collect();
            if matched.is_empty() {
                return Err(Miss::NoMatch(Diagnostic::error_nowhere(format!(
                    "no kernel functions match `{}:{}`",
                    provider, func
                ))));
            }
            return Ok(matched);
        }
        // One lookup for a name; the sorted list only for a suggestion.
        if self.machine.kernel_function(func).is_none() {
            let d = Diagnostic::error_nowhere(format!("kernel function `{}` not found in the kernel's BTF", func));
            return Err(Miss::NoMatch(suggest(d, func, known.iter().map(String::as_str))));
        }
        Ok(vec![point(func)])
    }

    fn targets(&mut self, target: &str, all: bool) -> Result<Vec<Target>, Miss> {
        let key = (target.to_string(), all);
        if let Some(found) = self.located.get(&key) {
            return Ok(found.clone());
        }
        let found = targets(target, self.machine.pid, all).map_err(|e| match e {
            TargetError::NoMatch(_) => Miss::NoMatch(Diagnostic::error_nowhere(e.to_string())),
            e => Miss::Failed(Diagnostic::error_nowhere(e.to_string())),
        })?;
        self.located.insert(key, found.clone());
        Ok(found)
    }

    fn binary(&self, path: &Path) -> Result<Rc<Binary>, Diagnostic> {
        self.machine.binary(path).map_err(|e| Diagnostic::error_nowhere(e.to_string()))
    }

    /// `usdt:target:[provider:]name`, each part a wildcard or (provider)
    /// empty for any; one `Resolved` per site, as a probe inlined in several
    /// places has several.
    fn usdts(&mut self, target: &str, provider: Option<&str>, name: &str) -> Result<Vec<Resolved>, Miss> {
        let provider = provider.filter(|p| !p.is_empty()).unwrap_or("*");
        let mut out = Vec::new();
        let mut known: Vec<String> = Vec::new();
        let arch = crate::probe::arch::Arch::host();
        for t in self.targets(target, true)? {
            let bin = self.binary(&t.path)?;
            for note in &bin.usdt {
                known.push(format!("{}:{}", note.provider, note.name));
                if !glob::matches(provider, &note.provider) || !glob::matches(name, &note.name) {
                    continue;
                }
                let missing = |what: &str, addr: u64| {
                    Diagnostic::error_nowhere(format!(
                        "USDT probe `{}:{}` in `{}`: its {} {:#x} is not in a loadable segment",
                        note.provider, note.name, t.shown, what, addr
                    ))
                };
                let offset = bin.file_offset(note.address).ok_or_else(|| missing("address", note.address))?;
                let semaphore = match note.semaphore {
                    0 => None,
                    s => Some(bin.file_offset(s).ok_or_else(|| missing("semaphore", s))?),
                };
                let mut args = crate::probe::usdt::parse_args(arch, &note.args);
                for a in &mut args {
                    if let UsdtLoc::Symbol { name: sym, offset } = &a.loc {
                        // `sym(%rip)`: as far from the probed instruction as in the file.
                        a.loc = match super::symbols::data_symbol(&t.path, sym) {
                            Some((addr, _)) => UsdtLoc::Mem {
                                base: arch.ip_register().into(),
                                offset: addr.wrapping_add(*offset as u64).wrapping_sub(note.address) as i64,
                                index: None,
                            },
                            None => UsdtLoc::Unsupported,
                        };
                    }
                }
                out.push(Resolved {
                    name: format!("usdt:{}:{}:{}", t.shown, note.provider, note.name),
                    spec: ProbeSpec::Usdt {
                        target: t.path.display().to_string(),
                        provider: Some(note.provider.clone()),
                        name: note.name.clone(),
                    },
                    detail: Detail::Usdt(UsdtSite {
                        path: t.path.clone(),
                        offset,
                        semaphore,
                        provider: note.provider.clone(),
                        name: note.name.clone(),
                        args,
                    }),
                    wildcard: false,
                });
            }
        }
        if out.is_empty() {
            let what = if provider == "*" { name.to_string() } else { format!("{}:{}", provider, name) };
            if known.is_empty() {
                return Err(Miss::NoMatch(Diagnostic::error_nowhere(format!("`{}` has no USDT probes", target))));
            }
            let d = Diagnostic::error_nowhere(format!("USDT probe `{}` not found in `{}`", what, target));
            if glob::is_glob(&what) {
                return Err(Miss::NoMatch(d));
            }
            let plain = known.iter().map(|k| k.rsplit(':').next().unwrap_or(k)).collect::<Vec<_>>();
            return Err(Miss::NoMatch(if provider == "*" {
                suggest(d, name, plain)
            } else {
                suggest(d, &what, known.iter().map(String::as_str))
            }));
        }
        Ok(out)
    }

    fn uprobes(&mut self, target: &str, func: &UprobeTarget, ret: bool) -> Result<Vec<Resolved>, Miss> {
        let mut out = Vec::new();
        for t in self.targets(target, false)? {
            out.extend(self.uprobes_in(&t, func, ret)?);
        }
        Ok(out)
    }

    fn uprobes_in(&mut self, t: &Target, func: &UprobeTarget, ret: bool) -> Result<Vec<Resolved>, Miss> {
        let path = t.path.clone();
        let bin = self.binary(&path)?;
        let wildcard = matches!(func, UprobeTarget::Symbol { name, .. } if glob::is_glob(name));
        let points = points(t, &bin, func)?;
        let mut out = Vec::new();
        for (symbol, address, size) in points {
            let lang = bin.lang_at(address);
            // A return probe's sites: the kernel's return probe at the entry,
            // or for a Go function, uprobes at its return instructions.
            let sites: Vec<(u64, Option<Return>)> = match (ret, lang) {
                (false, _) => vec![(address, None)],
                (true, Lang::C) => vec![(address, Some(Return::Kernel))],
                (true, Lang::Go) => match self.go_returns(&bin, address, size) {
                    Ok(returns) => returns.into_iter().map(|a| (a, Some(Return::Instruction))).collect(),
                    Err(why) => vec![(address, Some(Return::KernelOnGo { why: why.to_string(), wildcard }))],
                },
            };
            for (address, ret_kind) in sites {
                let offset = bin.file_offset(address).ok_or_else(|| {
                    Diagnostic::error_nowhere(format!(
                        "address {:#x} is not in a loadable segment of `{}`",
                        address,
                        path.display()
                    ))
                })?;
                out.push(Resolved {
                    // The binary as the program names it (bpftrace v0.26), not as found.
                    name: format!("{}:{}:{}", if ret { "uretprobe" } else { "uprobe" }, t.shown, symbol),
                    spec: ProbeSpec::Uprobe {
                        target: path.display().to_string(),
                        func: UprobeTarget::Symbol { name: symbol.clone(), offset: 0 },
                        ret,
                    },
                    detail: Detail::Uprobe(UprobeSite {
                        path: path.clone(),
                        offset,
                        symbol: symbol.clone(),
                        lang,
                        ret: ret_kind,
                    }),
                    wildcard: false,
                });
            }
        }
        Ok(out)
    }

    /// The return instructions of the Go function at `address`, read from
    /// its file (once per resolution).
    fn go_returns(&mut self, bin: &Binary, address: u64, size: Option<u64>) -> Result<Vec<u64>, ReturnSiteError> {
        let data = match self.files.get(&bin.path) {
            Some(d) => d.clone(),
            None => {
                let d = Rc::new(std::fs::read(&bin.path).map_err(|e| ReturnSiteError::Unreadable(e.to_string()))?);
                self.files.insert(bin.path.clone(), d.clone());
                d
            }
        };
        returns::go_function(bin, &data, address, size)
    }
}

/// The functions a uprobe target names in `bin`: (the symbol `func` shows,
/// the address probed, the function's size when the probe is at its entry).
fn points(t: &Target, bin: &Binary, func: &UprobeTarget) -> Result<Vec<(String, u64, Option<u64>)>, Miss> {
    Ok(match func {
        UprobeTarget::Address(addr) => {
            // Only inside a function: anywhere else is data, or not code at all.
            let Some(f) = bin.function_at(*addr) else {
                return Err(Miss::Failed(
                    Diagnostic::error_nowhere(format!("Could not resolve address: {}:{:#x}", t.shown, addr)).with_help(
                        "the address must be inside a function of the binary (see `rtrace -l uprobe:BINARY:*`)",
                    ),
                ));
            };
            vec![(f.name.clone(), *addr, (f.address == *addr).then_some(f.size))]
        }
        UprobeTarget::Symbol { name, offset } if glob::is_glob(name) => {
            let matched: Vec<_> = bin.functions.iter().filter(|f| !f.ifunc && f.matches(name)).collect();
            if matched.is_empty() {
                return Err(Miss::NoMatch(Diagnostic::error_nowhere(format!(
                    "no functions in `{}` match `{}`",
                    t.path.display(),
                    name
                ))));
            }
            let mut seen = std::collections::HashSet::new();
            matched
                .into_iter()
                .filter(|f| seen.insert(f.address))
                .map(|f| {
                    let shown = f.demangled.as_ref().map_or(f.name.clone(), |d| d.0.clone());
                    (shown, f.address + offset, (*offset == 0).then_some(f.size))
                })
                .collect()
        }
        UprobeTarget::Symbol { name, offset } => match bin.function(name) {
            // The code the resolver picks for this CPU (`__strlen_avx2`).
            Some(f) if f.ifunc => {
                let addr = super::ifunc::resolve(&t.path, name, |a| bin.is_code(a))
                    .map_err(|e| Diagnostic::error_nowhere(e.to_string()))?;
                vec![(name.clone(), addr + offset, None)]
            }
            Some(f) => {
                if *offset >= f.size.max(1) && f.size > 0 {
                    return Err(Miss::Failed(Diagnostic::error_nowhere(format!(
                        "Offset outside the function bounds ('{}' size is {}): +{}",
                        name, f.size, offset
                    ))));
                }
                vec![(name.clone(), f.address + offset, (*offset == 0).then_some(f.size))]
            }
            None => {
                let d = Diagnostic::error_nowhere(format!("function `{}` not found in `{}`", name, t.path.display()));
                return Err(Miss::NoMatch(suggest(d, name, bin.functions.iter().map(|f| f.name.as_str()))));
            }
        },
    })
}

/// The name `probe` gives: the provider's canonical name (`i` is
/// `interval`), but `BEGIN` and `END` as the program writes them (bpftrace
/// 0.17's spelling, which v0.26 still reads).
fn display_name(ap: &AttachPoint, spec: &ProbeSpec) -> String {
    let mut name = match spec {
        ProbeSpec::Begin | ProbeSpec::End => ap.provider.clone(),
        _ => spec.provider().to_string(),
    };
    for p in &ap.parts {
        name.push(':');
        name.push_str(p);
    }
    name
}

fn suggest<'a>(d: Diagnostic, name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Diagnostic {
    match closest(name, candidates) {
        Some(s) => d.with_help(format!("did you mean `{}`?", s)),
        None => d,
    }
}
