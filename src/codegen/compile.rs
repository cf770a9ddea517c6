//! Checked program → `Image`: lowers and finishes every program, lays out the
//! maps (user maps first, then the ring buffer and the counters) and the
//! `.rodata` the runtime fills in, attaches source lines for the verifier, and
//! writes the ELF object.

use super::finish::{finish, FinishError};
use super::image::{Image, LineInfo, MapKind, MapSpec, ProgramImage};
use super::lower::{lower, HelperSite, LowerError, LowerOptions, MapIndices};
use crate::contract::{self, Counters, Rodata};
use crate::diagnostic::{Diagnostic, Source};
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
            kind: if m.value.per_cpu() { MapKind::PercpuHash } else { MapKind::Hash },
            key_size: m.key_layout().size,
            value_size: m.value.size(),
            max_entries: manifest.max_map_keys,
            flags: 0,
        })
        .collect();
    let indices = MapIndices { events: maps.len(), events_bytes: opts.ringbuf_bytes };
    maps.push(MapSpec {
        name: contract::EVENTS_MAP.into(),
        kind: MapKind::Ringbuf,
        key_size: 0,
        value_size: 0,
        max_entries: opts.ringbuf_bytes,
        flags: 0,
    });
    // Counters the runtime reads.
    let counters = Counters { map_slots: opts.lower.map_slots.unwrap_or(manifest.maps.len()) };
    let bss_size = Counters::offset(counters.words());
    let mut image = Image { maps, bss_size, source_name: source.name.clone(), ..Image::default() };
    let mut all_locs = Vec::new();
    let mut helper_sites = Vec::new();
    let mut diags = Vec::new();
    let mut uses_rodata = false;
    for prog in &checked.programs {
        let lowered = match lower(prog, manifest, indices, &opts.lower, helper_sites.len()) {
            Ok(l) => l,
            Err(e) => {
                diags.push(lower_diagnostic(e));
                continue;
            }
        };
        uses_rodata |= lowered.uses_rodata;
        helper_sites.extend(lowered.sites.iter().copied());
        let finished = match finish(&lowered.insns, lowered.stack) {
            Ok(f) => f,
            Err(e) => {
                diags.push(finish_diagnostic(e, prog.span));
                continue;
            }
        };
        let lines = finished
            .locs
            .iter()
            .map(|(insn, span)| {
                let (line, col) = source.line_col(span.start);
                LineInfo {
                    insn: *insn,
                    line: line as u32,
                    col: col as u32,
                    text: source.line_text(line).trim().to_string(),
                }
            })
            .collect();
        image.programs.push(ProgramImage {
            name: prog.name.clone(),
            section: prog.kind.section(),
            insns: finished.insns,
            relocs: finished.relocs,
            lines,
        });
        all_locs.push(finished.locs);
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    if uses_rodata {
        image.rodata = vec![0; Rodata::SIZE as usize];
    }
    let elf = super::elf::write(&image)
        .map_err(|e| vec![Diagnostic::error_nowhere(format!("internal error, please report: {}", e))])?;
    Ok(Compiled { image, elf, maps: indices, locs: all_locs, helper_sites })
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
