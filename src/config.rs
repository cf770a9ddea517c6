//! bpftrace's config variables (v0.26): their defaults, and setting them
//! from a script's `config = { key = value; ... }` block or from
//! `BPFTRACE_KEY` environment variables, with bpftrace's names, values and
//! messages. A key may be written `stack_mode`, `STACK_MODE` or
//! `BPFTRACE_STACK_MODE`.

/// A value as written in a config block or an environment variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Int(u64),
    /// A string or a bare word (`stack_mode = perf`).
    Str(String),
    Bool(bool),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MissingProbes {
    /// A probe that cannot be attached ends the run.
    #[default]
    Error,
    Warn,
    Ignore,
}

pub use crate::types::StackMode;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymbolCache {
    PerPid,
    PerProgram,
    None,
}

/// An unstable feature's setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unstable {
    Enable,
    Warn,
    Error,
}

/// Every config variable of bpftrace 0.26.1, with its default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `None`: per PID, or per program with `-c` or ASLR off (bpftrace decides at run time).
    pub cache_user_symbols: Option<SymbolCache>,
    pub cpp_demangle: bool,
    pub lazy_symbolication: bool,
    /// The license the programs are loaded under.
    pub license: String,
    pub log_size: u64,
    pub max_bpf_progs: u64,
    pub max_cat_bytes: u64,
    pub max_map_keys: u64,
    pub max_probes: u64,
    pub max_strlen: u64,
    pub missing_probes: MissingProbes,
    pub on_stack_limit: u64,
    /// 0: chosen from the memory available.
    pub perf_rb_pages: u64,
    pub print_maps_on_exit: bool,
    pub show_debug_info: bool,
    pub stack_mode: StackMode,
    pub str_trunc_trailer: String,
    pub use_blazesym: bool,
    pub unstable_import_statement: Unstable,
    pub unstable_tseries: Unstable,
    pub unstable_typeinfo: Unstable,
    pub unstable_dw_ustack: Unstable,
    /// rtrace's own: bytes of the user stack `dw_ustack` copies from the
    /// stack pointer up (a multiple of 4096, at most 65536).
    pub dw_ustack_bytes: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            cache_user_symbols: None,
            cpp_demangle: true,
            lazy_symbolication: true,
            license: "GPL".into(),
            log_size: 1_000_000,
            max_bpf_progs: 1024,
            max_cat_bytes: 10240,
            max_map_keys: 4096,
            // bpftrace's is 1024 (512 in 0.17), a perf event per site;
            // rtrace attaches a file's sites through one uprobe_multi link,
            // so all of libc (2,153 functions) fits.
            max_probes: 65536,
            // bpftrace's is 1024; rtrace keeps strings on the 512-byte
            // stack, so its default is smaller.
            max_strlen: 64,
            missing_probes: MissingProbes::Error,
            on_stack_limit: 32,
            perf_rb_pages: 0,
            print_maps_on_exit: true,
            show_debug_info: true,
            stack_mode: StackMode::Bpftrace,
            str_trunc_trailer: "..".into(),
            use_blazesym: true,
            unstable_import_statement: Unstable::Error,
            unstable_tseries: Unstable::Warn,
            unstable_typeinfo: Unstable::Error,
            unstable_dw_ustack: Unstable::Warn,
            dw_ustack_bytes: 8192,
        }
    }
}

/// The licenses the kernel accepts for GPL-only helpers, in the order
/// bpftrace lists them.
pub const LICENSES: &[&str] =
    &["Dual MIT/GPL", "Dual BSD/GPL", "Dual MPL/GPL", "GPL and additional rights", "GPL v2", "GPL"];

/// Keys of older bpftrace releases and their names now.
const RENAMED: &[(&str, &str)] = &[
    ("strlen", "max_strlen"),
    ("no_cpp_demangle", "cpp_demangle"),
    ("cat_bytes_max", "max_cat_bytes"),
    ("map_keys_max", "max_map_keys"),
];

/// Keys that once existed and now do nothing.
pub const DEPRECATED: &[&str] = &[
    "symbol_source",
    "max_type_res_iterations",
    "unstable_addr",
    "unstable_import",
    "unstable_macro",
    "unstable_map_decl",
];

/// Settings only an environment variable can make (read elsewhere).
const ENV_ONLY: &[&str] = &["btf", "kernel_build", "kernel_source", "vmlinux"];

/// Every key, for the environment (`BPFTRACE_` + the key in upper case).
pub const KEYS: &[&str] = &[
    "cache_user_symbols",
    "cpp_demangle",
    "lazy_symbolication",
    "license",
    "log_size",
    "max_bpf_progs",
    "max_cat_bytes",
    "max_map_keys",
    "max_probes",
    "max_strlen",
    "missing_probes",
    "on_stack_limit",
    "perf_rb_pages",
    "print_maps_on_exit",
    "show_debug_info",
    "stack_mode",
    "str_trunc_trailer",
    "use_blazesym",
    "unstable_import_statement",
    "unstable_tseries",
    "unstable_typeinfo",
    "unstable_dw_ustack",
    "dw_ustack_bytes",
];

/// Why a key or value was refused; the messages are bpftrace's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}: not a known configuration option")]
    Unknown(String),
    #[error("{0}: can only be set as an environment variable")]
    EnvOnly(String),
    #[error("{key}: {detail}")]
    Value { key: String, detail: String },
    #[error("Invalid value for license. Found: {0}. Valid values: {list}. Read more about BPF programs and licensing: https://docs.kernel.org/bpf/bpf_licensing.html#using-bpf-programs-in-the-linux-kernel", list = LICENSES.join(", "))]
    License(String),
}

/// What setting a key did besides setting it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// The key has a new name (given).
    Renamed(String),
    /// The key no longer does anything.
    Deprecated,
}

/// `BPFTRACE_STACK_MODE`, `STACK_MODE` → `stack_mode`.
fn normalize(key: &str) -> String {
    let lower = key.to_ascii_lowercase();
    lower.strip_prefix("bpftrace_").map(str::to_string).unwrap_or(lower)
}

fn truthy(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "on" | "yes" => Some(true),
        "0" | "false" | "off" | "no" => Some(false),
        _ => None,
    }
}

impl Config {
    /// Sets `key` (any of its spellings) to `value`.
    pub fn set(&mut self, key: &str, value: &Value) -> Result<Option<Note>, ConfigError> {
        let mut name = normalize(key);
        if DEPRECATED.contains(&name.as_str()) {
            return Ok(Some(Note::Deprecated));
        }
        let mut note = None;
        if let Some((_, new)) = RENAMED.iter().find(|(old, _)| *old == name) {
            name = new.to_string();
            note = Some(Note::Renamed(name.clone()));
        }
        if ENV_ONLY.contains(&name.as_str()) {
            return Err(ConfigError::EnvOnly(key.to_string()));
        }
        let bad = |detail: &str| ConfigError::Value { key: key.to_string(), detail: detail.to_string() };
        let text = match value {
            Value::Int(n) => n.to_string(),
            Value::Str(s) => s.clone(),
            Value::Bool(b) => (*b as u8).to_string(),
        };
        let number = || match value {
            Value::Int(n) => Ok(*n),
            Value::Bool(b) => Ok(*b as u64),
            Value::Str(s) => parse_u64(s).ok_or_else(|| bad(&format!("expecting a number, got {}", s))),
        };
        let boolean = || match value {
            Value::Int(n) => Ok(*n != 0),
            Value::Bool(b) => Ok(*b),
            Value::Str(s) => truthy(s).ok_or_else(|| bad("Invalid bool value: valid values are true, false, 1 or 0.")),
        };
        let unstable = || {
            let lower = text.to_ascii_lowercase();
            match (lower.as_str(), truthy(&lower)) {
                ("enable", _) | (_, Some(true)) => Ok(Unstable::Enable),
                ("warn", _) => Ok(Unstable::Warn),
                ("error", _) | (_, Some(false)) => Ok(Unstable::Error),
                _ => Err(bad("Invalid value for unstable config: valid values are enable, warn, and error.")),
            }
        };
        match name.as_str() {
            "cache_user_symbols" => {
                self.cache_user_symbols =
                    match text.to_ascii_lowercase().as_str() {
                        "1" => self.cache_user_symbols,
                        "per_pid" => Some(SymbolCache::PerPid),
                        "per_program" => Some(SymbolCache::PerProgram),
                        "none" | "0" => Some(SymbolCache::None),
                        _ => return Err(bad(
                            "Invalid value for cache_user_symbols: valid values are PER_PID, PER_PROGRAM, and NONE.",
                        )),
                    }
            }
            "cpp_demangle" => self.cpp_demangle = boolean()?,
            "lazy_symbolication" => self.lazy_symbolication = boolean()?,
            "license" => {
                if !LICENSES.contains(&text.as_str()) || matches!(value, Value::Int(_)) {
                    return Err(ConfigError::License(text));
                }
                self.license = text;
            }
            "log_size" => self.log_size = number()?,
            "max_bpf_progs" => self.max_bpf_progs = number()?,
            "max_cat_bytes" => self.max_cat_bytes = number()?,
            "max_map_keys" => self.max_map_keys = number()?,
            "max_probes" => self.max_probes = number()?,
            "max_strlen" => self.max_strlen = number()?,
            "missing_probes" => {
                self.missing_probes = match (value, text.to_ascii_lowercase().as_str()) {
                    (Value::Str(_), "error") => MissingProbes::Error,
                    (Value::Str(_), "warn") => MissingProbes::Warn,
                    (Value::Str(_), "ignore") => MissingProbes::Ignore,
                    _ => {
                        return Err(bad("Invalid value for missing_probes: valid values are ignore, warn, and error."))
                    }
                }
            }
            "on_stack_limit" => self.on_stack_limit = number()?,
            "perf_rb_pages" => self.perf_rb_pages = number()?,
            "print_maps_on_exit" => self.print_maps_on_exit = boolean()?,
            "show_debug_info" => self.show_debug_info = boolean()?,
            "stack_mode" => {
                self.stack_mode = match (value, text.as_str()) {
                    (Value::Str(_), "bpftrace") => StackMode::Bpftrace,
                    (Value::Str(_), "perf") => StackMode::Perf,
                    (Value::Str(_), "raw") => StackMode::Raw,
                    (Value::Str(_), "build_id") => StackMode::BuildId,
                    _ => {
                        return Err(bad(
                            "Invalid value for stack_mode: valid values are bpftrace, raw, perf, and build_id.",
                        ))
                    }
                }
            }
            "str_trunc_trailer" => self.str_trunc_trailer = text,
            "use_blazesym" => self.use_blazesym = boolean()?,
            "unstable_import_statement" => self.unstable_import_statement = unstable()?,
            "unstable_tseries" => self.unstable_tseries = unstable()?,
            "unstable_typeinfo" => self.unstable_typeinfo = unstable()?,
            "unstable_dw_ustack" => self.unstable_dw_ustack = unstable()?,
            "dw_ustack_bytes" => match number()? {
                n if n % 4096 == 0 && (4096..=65536).contains(&n) => self.dw_ustack_bytes = n,
                _ => return Err(bad("expecting a multiple of 4096 from 4096 to 65536")),
            },
            _ => return Err(ConfigError::Unknown(key.to_string())),
        }
        Ok(note)
    }

    /// The `BPFTRACE_*` settings among `vars` (the environment), which win
    /// over a script's config block; the first error stops.
    pub fn apply_env<'v>(&mut self, vars: impl IntoIterator<Item = (&'v str, &'v str)>) -> Result<(), ConfigError> {
        for (name, value) in vars {
            let Some(key) = name.strip_prefix("BPFTRACE_") else { continue };
            let key = key.to_ascii_lowercase();
            if KEYS.contains(&key.as_str()) {
                self.set(&key, &Value::Str(value.to_string()))?;
            }
        }
        Ok(())
    }
}

/// A number as bpftrace reads one in a config value: decimal, `0x` hex,
/// `0` octal, with `_` separators.
fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim().replace('_', "");
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8).ok()
    } else {
        s.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_in_every_spelling() {
        let mut c = Config::default();
        assert_eq!(c.set("BPFTRACE_STACK_MODE", &Value::Str("raw".into())), Ok(None));
        assert_eq!(c.stack_mode, StackMode::Raw);
        c.set("STACK_MODE", &Value::Str("perf".into())).unwrap();
        assert_eq!(c.stack_mode, StackMode::Perf);
        c.set("max_map_keys", &Value::Int(10)).unwrap();
        assert_eq!(c.max_map_keys, 10);
        assert_eq!(c.set("map_keys_max", &Value::Int(3)), Ok(Some(Note::Renamed("max_map_keys".into()))));
        assert_eq!(c.max_map_keys, 3);
        assert_eq!(c.set("unstable_macro", &Value::Str("enable".into())), Ok(Some(Note::Deprecated)));
        c.set("print_maps_on_exit", &Value::Int(0)).unwrap();
        assert!(!c.print_maps_on_exit);
        c.set("print_maps_on_exit", &Value::Str("yes".into())).unwrap();
        assert!(c.print_maps_on_exit);
    }

    #[test]
    fn bad_keys_and_values_read_as_bpftrace_says() {
        let mut c = Config::default();
        let msg = |r: Result<Option<Note>, ConfigError>| r.unwrap_err().to_string();
        assert_eq!(msg(c.set("bad_config", &Value::Str("raw".into()))), "bad_config: not a known configuration option");
        assert_eq!(msg(c.set("btf", &Value::Str("x".into()))), "btf: can only be set as an environment variable");
        assert!(msg(c.set("license", &Value::Str("Potato".into())))
            .starts_with("Invalid value for license. Found: Potato. Valid values: Dual MIT/GPL, Dual BSD/GPL, Dual MPL/GPL, GPL and additional rights, GPL v2, GPL."));
        assert_eq!(
            msg(c.set("missing_probes", &Value::Str("maybe".into()))),
            "missing_probes: Invalid value for missing_probes: valid values are ignore, warn, and error."
        );
        assert_eq!(msg(c.set("max_strlen", &Value::Str("lots".into()))), "max_strlen: expecting a number, got lots");
        c.set("license", &Value::Str("Dual BSD/GPL".into())).unwrap();
        assert_eq!(c.license, "Dual BSD/GPL");
    }

    #[test]
    fn the_environment_names_keys_with_a_prefix() {
        let mut c = Config::default();
        c.apply_env([("BPFTRACE_MAX_STRLEN", "200"), ("BPFTRACE_UNKNOWN", "1"), ("PATH", "/bin")]).unwrap();
        assert_eq!(c.max_strlen, 200);
        assert!(c.apply_env([("BPFTRACE_STACK_MODE", "fancy")]).is_err());
    }
}
