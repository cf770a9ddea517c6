//! Checked program → `Image`: lowers and finishes every program, lays out the
//! maps (user maps first, then the ring buffer and the counters) and the
//! `.rodata` the runtime fills in, attaches source lines for the verifier, and
//! writes the ELF object.

use super::finish::{finish, FinishError};
use super::image::{FunctionImage, Image, LineInfo, MapKind, MapSpec, ProgramImage, Reloc, RelocTarget};
use super::lower::{lower, stack_map_sizes, Frame, HelperSite, LowerError, LowerOptions, MapIndices, Start};
use crate::contract::{self, Counters, Rodata};
use crate::diagnostic::{Diagnostic, Lines, Source};
use crate::sema::Checked;
use crate::span::Span;

/// Ring buffer size: a power of two, a multiple of the page size.
pub const DEFAULT_RINGBUF_BYTES: u32 = 1 << 20;

#[derive(Clone, Debug)]
pub struct CompileOptions {
    pub lower: LowerOptions,
    pub ringbuf_bytes: u32,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions { lower: LowerOptions::default(), ringbuf_bytes: DEFAULT_RINGBUF_BYTES }
    }
}

/// The image, its ELF object, and what the runtime needs to interpret it.
#[derive(Clone, Debug)]
pub struct Compiled {
    pub image: Image,
    /// The object file libbpf loads.
    pub elf: Vec<u8>,
    pub maps: MapIndices,
    /// Per program (same order as `image.programs`): instruction index → span.
    pub locs: Vec<Vec<(usize, Span)>>,
    /// The same for each program's subprograms.
    pub subprog_locs: Vec<Vec<Vec<(usize, Span)>>>,
    /// The helper calls `-k`/`-kk` check, by the site number in their records.
    pub helper_sites: Vec<HelperSite>,
}

impl Compiled {
    /// The source span an instruction of program `prog` was generated from.
    pub fn span_of(&self, prog: usize, insn: usize) -> Option<Span> {
        self.locs.get(prog)?.iter().take_while(|(at, _)| *at <= insn).last().map(|(_, s)| *s)
    }
}

pub fn compile(checked: &Checked, source: &Source, opts: &CompileOptions) -> Result<Compiled, Vec<Diagnostic>> {
    // Lowering recurses as deep as the program nests (at most `MAX_NESTING`).
    crate::nesting::with_stack(|| compile_all(checked, source, opts))
}

fn compile_all(checked: &Checked, source: &Source, opts: &CompileOptions) -> Result<Compiled, Vec<Diagnostic>> {
    let manifest = &checked.manifest;
    let mut maps: Vec<MapSpec> = manifest
        .maps
        .iter()
        .enumerate()
        .map(|(i, m)| MapSpec {
            name: contract::map_name(i, &m.name),
            kind: match (m.value.per_cpu(), m.declared.is_some_and(|d| d.lru)) {
                (false, false) => MapKind::Hash,
                (false, true) => MapKind::LruHash,
                (true, false) => MapKind::PercpuHash,
                (true, true) => MapKind::LruPercpuHash,
            },
            key_size: m.key_layout().size,
            value_size: m.value.size(),
            max_entries: m.max_entries(manifest.max_map_keys),
            flags: 0,
        })
        .collect();
    let events = maps.len();
    maps.push(MapSpec {
        name: contract::EVENTS_MAP.into(),
        kind: MapKind::Ringbuf,
        key_size: 0,
        value_size: 0,
        max_entries: opts.ringbuf_bytes,
        flags: 0,
    });
    let (stack_scratch, stacks, seen_pids) = stack_maps(manifest, &mut maps);
    // The scratch frames' map comes last, and only when a program needs it.
    let frame_scratch = maps.len();
    let indices =
        MapIndices { events, events_bytes: opts.ringbuf_bytes, stack_scratch, stacks, seen_pids, frame_scratch };
    // Counters the runtime reads.
    let counters = Counters { map_slots: opts.lower.map_slots.unwrap_or(manifest.maps.len()) };
    let bss_size = Counters::offset(counters.words());
    let mut image = Image {
        maps,
        bss_size,
        source_name: source.name.clone(),
        license: manifest.config.license.clone(),
        ..Image::default()
    };
    let mut all_locs = Vec::new();
    let mut subprog_locs = Vec::new();
    let mut helper_sites = Vec::new();
    let mut diags = Vec::new();
    // The values the runtime fills in, then the programs' tables.
    let mut rodata = vec![0; Rodata::SIZE as usize];
    let mut uses_rodata = false;
    let mut scratch = 0;
    let lines = source.lines();
    for prog in &checked.programs {
        let start = Start { helper_site: helper_sites.len(), rodata: rodata.len() as u32 };
        let built = match build(prog, checked, indices, opts, start, Frame::Stack, &lines) {
            // Too much for the stack: the program's frame moves to the
            // scratch map (its size known from a first lowering there).
            Err(Failed { stack: true, .. }) => {
                build(prog, checked, indices, opts, start, Frame::Scratch { size: 0 }, &lines).and_then(|b| {
                    let size = b.scratch.div_ceil(8) * 8;
                    build(prog, checked, indices, opts, start, Frame::Scratch { size }, &lines)
                })
            }
            other => other,
        };
        match built {
            Ok(b) => {
                uses_rodata |= b.uses_rodata;
                scratch = scratch.max(b.scratch.div_ceil(8) * 8);
                helper_sites.extend(b.sites);
                rodata.extend_from_slice(&b.rodata);
                image.programs.push(b.image);
                all_locs.push(b.locs);
                subprog_locs.push(b.sub_locs);
            }
            Err(f) => diags.extend(f.diags),
        }
    }
    if scratch > MAX_SCRATCH {
        diags.push(Diagnostic::error_nowhere(format!(
            "this needs {} bytes of memory per CPU for its strings and values, more than the {} a BPF map value can have",
            scratch, MAX_SCRATCH
        )));
    }
    if scratch > 0 {
        image.maps.push(MapSpec {
            name: contract::FRAME_SCRATCH_MAP.into(),
            kind: MapKind::Array,
            key_size: 4,
            value_size: scratch,
            // The runtime sets one entry per possible CPU.
            max_entries: 1,
            flags: 0,
        });
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    if uses_rodata {
        image.rodata = rodata;
    }
    let elf = super::elf::write(&image)
        .map_err(|e| vec![Diagnostic::error_nowhere(format!("internal error, please report: {}", e))])?;
    Ok(Compiled { image, elf, maps: indices, locs: all_locs, subprog_locs, helper_sites })
}

/// The largest scratch frame: a map value is at most `KMALLOC_MAX_SIZE`
/// (4 MiB on x86_64 and aarch64 with 4 KiB pages).
const MAX_SCRATCH: u32 = 4 << 20;

/// One program, lowered and finished, with what the object needs of it.
struct Built {
    image: ProgramImage,
    locs: Vec<(usize, Span)>,
    sub_locs: Vec<Vec<(usize, Span)>>,
    sites: Vec<HelperSite>,
    uses_rodata: bool,
    /// Its tables, to place in `.rodata` at `Start::rodata`.
    rodata: Vec<u8>,
    /// Bytes of the scratch frame it uses (`Frame::Scratch`).
    scratch: u32,
}

/// Why a program could not be built; `stack`: its stack was too small.
struct Failed {
    diags: Vec<Diagnostic>,
    stack: bool,
}

fn build(
    prog: &crate::sema::ProgramDef,
    checked: &Checked,
    indices: MapIndices,
    opts: &CompileOptions,
    start: Start,
    frame: Frame,
    lines: &Lines,
) -> Result<Built, Failed> {
    let lowered = lower(prog, &checked.manifest, indices, &opts.lower, start, frame).map_err(|e| Failed {
        stack: matches!(e, LowerError::StackTooLarge { .. }),
        diags: vec![lower_diagnostic(e)],
    })?;
    let finished = finish(&lowered.insns, lowered.stack).map_err(|e| Failed {
        stack: matches!(e, FinishError::StackTooLarge { .. }),
        diags: vec![finish_diagnostic(e, prog.span)],
    })?;
    let mut subprogs = Vec::new();
    let mut sub_locs = Vec::new();
    let mut sub_stacks = Vec::new();
    let mut failed = Failed { diags: Vec::new(), stack: false };
    for (i, sub) in lowered.subprogs.iter().enumerate() {
        match finish(&sub.insns, sub.stack) {
            Ok(f) => {
                sub_stacks.push((f.stack, calls(&f.relocs), sub.span));
                subprogs.push(FunctionImage {
                    name: format!("{}_cb{}", prog.name, i),
                    params: sub.params.to_vec(),
                    lines: line_info(&f.locs, lines),
                    insns: f.insns,
                    relocs: f.relocs,
                });
                sub_locs.push(f.locs);
            }
            Err(e) => {
                failed.stack |= matches!(e, FinishError::StackTooLarge { .. });
                failed.diags.push(finish_diagnostic(e, prog.span));
            }
        }
    }
    if !failed.diags.is_empty() {
        return Err(failed);
    }
    if let Some(d) = call_stack_diagnostic(finished.stack, &calls(&finished.relocs), &sub_stacks) {
        return Err(Failed { diags: vec![d], stack: true });
    }
    let insns = finished.insns.len() + subprogs.iter().map(|s| s.insns.len()).sum::<usize>();
    if insns > crate::codegen::insn::MAX_INSNS {
        return Err(Failed { diags: vec![too_many_insns(&prog.name, insns, prog.span)], stack: false });
    }
    Ok(Built {
        image: ProgramImage {
            name: prog.name.clone(),
            section: prog.kind.section(),
            lines: line_info(&finished.locs, lines),
            insns: finished.insns,
            relocs: finished.relocs,
            subprogs,
        },
        locs: finished.locs,
        sub_locs,
        sites: lowered.sites,
        uses_rodata: lowered.uses_rodata,
        rodata: lowered.rodata,
        scratch: lowered.scratch,
    })
}

/// `.BTF.ext` line records for instructions that start a source span.
fn line_info(locs: &[(usize, Span)], lines: &Lines) -> Vec<LineInfo> {
    locs.iter()
        .map(|(insn, span)| {
            let (line, col) = lines.line_col(span.start);
            LineInfo { insn: *insn, line: line as u32, col: col as u32, text: lines.line_text(line).trim().to_string() }
        })
        .collect()
}

/// The subprograms a function takes the address of (and so runs).
fn calls(relocs: &[Reloc]) -> Vec<usize> {
    relocs
        .iter()
        .filter_map(|r| match r.target {
            RelocTarget::Func(f) => Some(f),
            _ => None,
        })
        .collect()
}

/// The verifier adds up the frames of a call chain, each rounded up to 32
/// bytes, against the 512-byte limit: a loop body's frame counts on top of
/// the probe's (and of the loops around it).
fn call_stack_diagnostic(main: u32, main_calls: &[usize], subs: &[(u32, Vec<usize>, Span)]) -> Option<Diagnostic> {
    fn depth(f: usize, subs: &[(u32, Vec<usize>, Span)], seen: usize) -> (u32, Span) {
        let (own, callees, span) = &subs[f];
        let deepest =
            callees.iter().filter(|_| seen < subs.len()).map(|&c| depth(c, subs, seen + 1)).max_by_key(|(d, _)| *d);
        match deepest {
            Some((d, s)) => (frame(*own) + d, s),
            None => (frame(*own), *span),
        }
    }
    fn frame(bytes: u32) -> u32 {
        bytes.max(1).div_ceil(32) * 32
    }
    let (deepest, span) = main_calls.iter().map(|&c| depth(c, subs, 0)).max_by_key(|(d, _)| *d)?;
    let needed = frame(main) + deepest;
    (needed > crate::codegen::insn::MAX_STACK).then(|| {
        Diagnostic::error(
            format!(
                "this needs {} bytes of stack with the loop bodies around it, more than the {} eBPF allows",
                needed,
                crate::codegen::insn::MAX_STACK
            ),
            span,
        )
        .with_help("a `for` loop's body runs in a frame of its own on top of the probe's: use fewer or shorter strings")
    })
}

/// The maps of `kstack`/`ustack` (`contract`): the per-CPU buffer they are
/// collected into, one stack map per size (`stack_map_sizes`), and the
/// processes whose first user stack was announced. Returns their indices
/// (0 when the program has no stacks).
fn stack_maps(manifest: &crate::sema::Manifest, maps: &mut Vec<MapSpec>) -> (usize, usize, Option<usize>) {
    let sizes = stack_map_sizes(&manifest.stacks);
    let Some(&largest) = sizes.last() else { return (0, 0, None) };
    let scratch = maps.len();
    maps.push(MapSpec {
        name: contract::STACK_SCRATCH_MAP.into(),
        kind: MapKind::PercpuArray,
        key_size: 4,
        value_size: largest,
        max_entries: 1,
        flags: 0,
    });
    let stacks = maps.len();
    for bytes in sizes {
        maps.push(MapSpec {
            name: contract::stack_map_name(bytes),
            kind: MapKind::Hash,
            key_size: 8,
            value_size: bytes,
            max_entries: manifest.max_map_keys,
            flags: 0,
        });
    }
    let seen = manifest.stacks.iter().any(|s| !s.kernel).then(|| {
        maps.push(MapSpec {
            name: contract::SEEN_PIDS_MAP.into(),
            kind: MapKind::Hash,
            key_size: 8,
            value_size: 8,
            max_entries: contract::SEEN_PIDS,
            flags: 0,
        });
        maps.len() - 1
    });
    (scratch, stacks, seen)
}

/// The kernel would refuse the program with a bare `E2BIG`: say which
/// probe, and how far over it is.
fn too_many_insns(name: &str, insns: usize, span: Span) -> Diagnostic {
    Diagnostic::error(
        format!(
            "probe `{}` compiles to {} eBPF instructions, more than the {} the kernel loads in one program",
            name,
            insns,
            crate::codegen::insn::MAX_INSNS
        ),
        span,
    )
    .with_help("split the work over several probes, or use a loop instead of repeating statements")
}

fn lower_diagnostic(e: LowerError) -> Diagnostic {
    let message = e.to_string();
    match e {
        LowerError::StackTooLarge { span, .. } => Diagnostic::error(message, span)
            .with_help("use shorter strings (config = { max_strlen = N }) or fewer string values per statement"),
        LowerError::RecordTooLarge { span, .. } => Diagnostic::error(message, span)
            .with_help("print less at once, or give the ring buffer more pages (RTRACE_RINGBUF_PAGES)"),
    }
}

/// `program` stands in where no source place is known.
fn finish_diagnostic(e: FinishError, program: Span) -> Diagnostic {
    let message = e.to_string();
    let (span, help) = match e {
        FinishError::TooComplex { span } => (span, "split the expression using variables"),
        FinishError::StackTooLarge { span, .. } => (
            span,
            "the expression keeps more values live than eBPF has registers for, and they spill to the stack: split \
             it over several statements",
        ),
        FinishError::JumpTooFar { span } => (
            span,
            "a jump cannot reach past the code of this statement: print less at once (a string literal takes one \
             instruction per 4 bytes)",
        ),
    };
    Diagnostic::error(message, span.unwrap_or(program)).with_help(help)
}
