//! The session's one growing program. Every accepted input is appended to
//! it; each new input is checked and compiled together with everything
//! before it, so map types and action ids agree across inputs, and only
//! the new input's programs are loaded, into the maps that already exist
//! (their fds reused), then attached.

use super::source::{Piece, Pieces};
use crate::codegen::compile::Compiled;
use crate::codegen::image::{MapKind, MapSpec};
use crate::contract;
use crate::diagnostic::Diagnostic;
use crate::driver::{self, Increment};
use crate::options::Options;
use crate::runtime::attach::{AttachError, Attached, MissingRules};
use crate::runtime::bss::Bss;
use crate::runtime::events::State;
use crate::runtime::keeper::Keeper;
use crate::runtime::object::{self, LoadRequest, LoadValues, Loaded};
use crate::runtime::{clock, stats};
use crate::sema::{Checked, Manifest, ProgKind};
use crate::system::Machine;
use libbpf_rs::MapHandle;
use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;

/// Maps one session can hold: the `.bss` counters of every object it loads
/// are laid out for this many, so that all objects share one `.bss`.
pub const MAP_SLOTS: usize = 256;

/// A probe entered at the prompt, while it is attached (END: until quit).
struct LiveProbe {
    /// Its number in `:probes` and `:detach N`.
    number: usize,
    /// The attach points as typed (`tracepoint:syscalls:sys_enter_openat`).
    text: String,
    /// Its programs: a reference each, for hit counts and for running END
    /// (the object itself is closed once attached: it holds a copy of every
    /// session map's fd, which would add up across inputs).
    programs: Vec<OwnedFd>,
    /// Its links: dropping the probe detaches it.
    _links: Attached,
    is_end: bool,
}

/// One input that started probes.
struct Input {
    number: usize,
    probes: Vec<LiveProbe>,
}

/// What an input did, for the prompt to say.
pub enum Outcome {
    /// Statements ran (their output, if any, is in the ring buffer).
    Ran,
    /// Probes were attached: their numbers and texts.
    Attached(Vec<(usize, String)>),
}

pub struct Live {
    opts: Options,
    start_ns: u64,
    /// Every accepted input, one after another.
    pieces: Pieces,
    inputs: Vec<Input>,
    next_probe: usize,
    /// The accepted session program's maps and actions.
    manifest: Manifest,
    /// The attach points of the accepted probes, resolved once.
    resolved: Vec<Vec<crate::probe::Resolved>>,
    /// The session's maps by their name in the object (`m0_x`, `events`,
    /// `.bss`), with the spec they were created with.
    maps: HashMap<String, (MapHandle, MapSpec)>,
    /// Held open so the kernel counts program runs (`:probes` hits).
    _stats: Option<OwnedFd>,
    /// Releases the uprobes (`runtime::keeper`); `None` if it did not start.
    keeper: Option<Rc<Keeper>>,
}

impl Live {
    pub fn new(opts: Options, keeper: Option<Keeper>) -> Live {
        Live {
            _stats: stats::enable(),
            keeper: keeper.map(Rc::new),
            start_ns: clock::boot_ns(),
            opts,
            pieces: Pieces::default(),
            inputs: Vec::new(),
            next_probe: 1,
            manifest: Manifest::default(),
            resolved: Vec::new(),
            maps: HashMap::new(),
        }
    }

    /// The ring buffer every object writes to, once the first one is loaded.
    pub fn events(&self) -> Option<&MapHandle> {
        self.maps.get(contract::EVENTS_MAP).map(|(h, _)| h)
    }

    /// Checks, compiles, loads and attaches `text` (probes, or statements
    /// when `statements`), with everything entered before.
    pub fn enter(&mut self, text: &str, statements: bool, state: &mut State) -> Result<Outcome, Vec<String>> {
        let piece = self.pieces.next(text, statements);
        let combined = self.pieces.combined_with(&piece);
        // Binaries are read again for each input: one may have been rebuilt.
        let machine = Rc::new(Machine::new(self.opts.pid));
        let program = driver::parse(&combined.text, &machine).map_err(|d| self.render(&d, &piece))?;
        let increment = Increment { map_slots: Some(MAP_SLOTS), known: &self.resolved };
        let built =
            driver::build(&program, &combined, &self.opts, machine, increment).map_err(|d| self.render(&d, &piece))?;
        let (checked, compiled, resolved) = (built.checked, built.compiled, built.resolved);
        let warnings: Vec<Diagnostic> =
            checked.warnings.iter().filter(|w| w.span.is_none_or(|s| piece.contains(s))).cloned().collect();
        if !warnings.is_empty() {
            eprint!("{}", self.render(&warnings, &piece).concat());
        }
        if checked.manifest.maps.len() > MAP_SLOTS {
            return Err(vec![format!("error: a session holds at most {} maps\n", MAP_SLOTS)]);
        }
        if self.manifest.actions.len() > checked.manifest.actions.len()
            || self.manifest.maps.iter().zip(&checked.manifest.maps).any(|(a, b)| a.name != b.name)
        {
            return Err(vec!["error: internal error, please report: the session's program changed shape\n".into()]);
        }
        let new: Vec<usize> =
            (0..checked.programs.len()).filter(|&i| piece.contains(checked.programs[i].span)).collect();
        if new.is_empty() {
            // Definitions only (structs, #define): kept for what follows.
            self.accept(piece, resolved, checked.manifest);
            return Ok(Outcome::Ran);
        }
        let object = self.load(&checked, &compiled, &new).map_err(|d| self.render(&[d], &piece))?;
        let added = self.adopt_maps(&object, &compiled);
        // BEGIN's records are read with the new program's actions.
        self.show_to(state, &checked.manifest);
        object.run(&checked, ProgKind::Begin);
        if statements {
            self.accept(piece, resolved, checked.manifest);
            return Ok(Outcome::Ran);
        }
        match self.attach(&checked, &combined.text, object, &new, piece.number) {
            Ok(started) => {
                self.accept(piece, resolved, checked.manifest);
                Ok(Outcome::Attached(started))
            }
            Err(e) => {
                // The input is not kept: forget the maps it created.
                for name in added {
                    self.maps.remove(&name);
                }
                let kept = self.manifest.clone();
                self.show_to(state, &kept);
                Err(vec![format!("error: {}\n", e)])
            }
        }
    }

    /// `piece` joins the session program; `resolved` are its probes' attach
    /// points, `manifest` the session program's.
    fn accept(&mut self, piece: Piece, resolved: Vec<Vec<crate::probe::Resolved>>, manifest: Manifest) {
        self.pieces.push(piece);
        self.resolved = resolved;
        self.manifest = manifest;
    }

    /// Has `state` read records and maps as `manifest` describes them.
    fn show_to(&self, state: &mut State, manifest: &Manifest) {
        let handle = |name: &str| self.maps.get(name).and_then(|(h, _)| MapHandle::try_from(h).ok());
        let handles = manifest.maps.iter().enumerate().map(|(i, m)| handle(&contract::map_name(i, &m.name))).collect();
        state.extend(manifest.clone(), handles);
        state.bss = handle(".bss").map(Bss::new);
        crate::runtime::stacks::install(&manifest.stacks, handle);
    }

    /// Loads the programs `new` of the compiled session program.
    fn load(&self, checked: &Checked, compiled: &Compiled, new: &[usize]) -> Result<Loaded, Diagnostic> {
        for spec in &compiled.image.maps {
            if let Some((_, old)) = self.maps.get(&spec.name) {
                if old != spec {
                    let name = checked
                        .manifest
                        .maps
                        .iter()
                        .enumerate()
                        .find(|(i, m)| contract::map_name(*i, &m.name) == spec.name);
                    let name = name.map_or(spec.name.clone(), |(_, m)| m.name.clone());
                    return Err(Diagnostic::error_nowhere(format!(
                        "map `{}` was created with another key or value size; this input would change its type",
                        name
                    )));
                }
            }
        }
        let reuse: Vec<(String, BorrowedFd<'_>)> = self.maps.iter().map(|(n, (h, _))| (n.clone(), h.as_fd())).collect();
        let only: HashSet<String> = new.iter().map(|&i| checked.programs[i].name.clone()).collect();
        let request = LoadRequest { verbose: self.opts.verbose, reuse, only: Some(only) };
        let values = LoadValues { start_ns: self.start_ns, cpid: None };
        Loaded::load(checked, compiled, values, request).map_err(|f| f.diagnostic)
    }

    /// Keeps handles on the maps `object` created; returns their names.
    fn adopt_maps(&mut self, object: &Loaded, compiled: &Compiled) -> Vec<String> {
        let mut added = Vec::new();
        for (name, handle) in object.maps() {
            let spec = if name == ".bss" {
                let size = compiled.image.bss_size as u32;
                MapSpec {
                    name: name.clone(),
                    kind: MapKind::Array,
                    key_size: 4,
                    value_size: size,
                    max_entries: 1,
                    flags: 0,
                }
            } else if let Some(spec) = compiled.image.maps.iter().find(|m| m.name == name) {
                spec.clone()
            } else {
                continue;
            };
            if !self.maps.contains_key(&name) {
                self.maps.insert(name.clone(), (handle, spec));
                added.push(name);
            }
        }
        added
    }

    /// Attaches the programs `new` in the order a script would; all or none.
    fn attach(
        &mut self,
        checked: &Checked,
        text: &str,
        object: Loaded,
        new: &[usize],
        number: usize,
    ) -> Result<Vec<(usize, String)>, AttachError> {
        // Programs by the probe (its span) they come from, in source order.
        let mut probes: Vec<(crate::span::Span, Vec<usize>)> = Vec::new();
        for &i in new {
            let span = checked.programs[i].span;
            match probes.iter_mut().find(|(s, _)| *s == span) {
                Some((_, progs)) => progs.push(i),
                None => probes.push((span, vec![i])),
            }
        }
        let mut live = Vec::new();
        for (span, progs) in probes {
            let kinds: Vec<&ProgKind> = progs.iter().map(|&i| &checked.programs[i].kind).collect();
            if kinds.iter().all(|k| **k == ProgKind::Begin) {
                continue;
            }
            let infos: Vec<_> =
                checked.manifest.attach.iter().filter(|a| progs.contains(&a.program)).cloned().collect();
            let attached =
                object.attach(checked, &infos, self.opts.pid, self.keeper.clone(), MissingRules::default())?;
            let fds = progs.iter().filter_map(|&i| object.program_fd(&checked.programs[i].name));
            live.push(LiveProbe {
                number: 0,
                text: header(&text[span.start as usize..span.end as usize]),
                programs: fds.collect(),
                _links: attached,
                is_end: kinds.iter().all(|k| **k == ProgKind::End),
            });
        }
        let mut started = Vec::new();
        for p in &mut live {
            p.number = self.next_probe;
            self.next_probe += 1;
            started.push((p.number, p.text.clone()));
        }
        if !live.is_empty() {
            self.inputs.push(Input { number, probes: live });
        }
        Ok(started)
    }

    /// Live probes: (number, input, text, hits; `None` when unknown).
    pub fn probes(&self) -> Vec<(usize, usize, String, Option<u64>)> {
        let mut out = Vec::new();
        for input in &self.inputs {
            for p in &input.probes {
                let hits = if p.is_end {
                    Some(0)
                } else {
                    p.programs.iter().map(|fd| stats::run_count(fd.as_fd())).sum::<Option<u64>>()
                };
                let text = if p.is_end { format!("{} (runs at quit)", p.text) } else { p.text.clone() };
                out.push((p.number, input.number, text, hits));
            }
        }
        out
    }

    /// Detaches probe `number`; false when there is no such live probe.
    pub fn detach(&mut self, number: usize) -> bool {
        let Some(at) = self.inputs.iter().position(|i| i.probes.iter().any(|p| p.number == number)) else {
            return false;
        };
        let input = &mut self.inputs[at];
        input.probes.retain(|p| p.number != number);
        if input.probes.is_empty() {
            self.inputs.remove(at);
        }
        true
    }

    /// Detaches the probes of the last input that started any; returns their numbers.
    pub fn detach_last(&mut self) -> Vec<usize> {
        self.inputs.pop().map(|i| i.probes.iter().map(|p| p.number).collect()).unwrap_or_default()
    }

    /// Detaches every probe (but END blocks when `keep_end`: quitting runs
    /// them); returns their numbers.
    pub fn detach_all(&mut self, keep_end: bool) -> Vec<usize> {
        let mut numbers = Vec::new();
        for input in &mut self.inputs {
            input.probes.retain(|p| {
                let keep = keep_end && p.is_end;
                numbers.extend((!keep).then_some(p.number));
                keep
            });
        }
        self.inputs.retain(|i| !i.probes.is_empty());
        numbers
    }

    /// Quitting: the END blocks still there run, in the order they were typed.
    pub fn run_ends(&mut self) {
        for input in &self.inputs {
            for p in input.probes.iter().filter(|p| p.is_end) {
                for fd in &p.programs {
                    object::run_once(fd.as_fd());
                }
            }
        }
        self.inputs.clear();
    }

    /// Renders diagnostics of the session program: the input's own spans
    /// relative to it.
    fn render(&self, diags: &[Diagnostic], piece: &Piece) -> Vec<String> {
        diags.iter().map(|d| self.pieces.render(d, piece)).collect()
    }
}

/// A probe's attach points as typed, on one line: what precedes the body
/// and the predicate (a word starting with `/` after a complete attach point).
fn header(probe: &str) -> String {
    let end = probe.find('{').unwrap_or(probe.len());
    let mut words: Vec<&str> = Vec::new();
    for word in probe[..end].split_whitespace() {
        if word.starts_with('/') && words.last().is_some_and(|w| !w.ends_with(',')) {
            break;
        }
        words.push(word);
    }
    words.join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn headers_leave_out_the_predicate() {
        assert_eq!(super::header("uprobe:/bin/x:f /pid == 1/ { }"), "uprobe:/bin/x:f");
        assert_eq!(super::header("uprobe:/a:f,\n  uprobe:/b:g\n{ }"), "uprobe:/a:f, uprobe:/b:g");
        assert_eq!(super::header("interval:s:1{ }"), "interval:s:1");
    }
}
