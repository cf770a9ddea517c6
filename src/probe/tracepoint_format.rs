//! Parses a tracefs `events/<category>/<event>/format` file into the fields a
//! tracepoint program can read from its context.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TracepointFormat {
    pub fields: Vec<TpField>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TpField {
    pub name: String,
    /// The C type as tracefs prints it (`const char *`, `pid_t`, `char[16]`).
    pub c_type: String,
    pub offset: u32,
    pub size: u32,
    pub signed: bool,
    pub kind: TpFieldKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TpFieldKind {
    /// An integer of `size` bytes.
    Int,
    /// A pointer; `char_pointee` when it points to characters (a C string).
    Pointer { char_pointee: bool },
    /// `char name[N]`: an inline string.
    CharArray,
    /// `__data_loc char[] name`: a u32 whose low 16 bits are the string's offset
    /// in the record and high 16 bits its length.
    DataLocString,
    /// Any other array: element size and count.
    Array { elem_size: u32, len: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse format line `{0}`")]
pub struct FormatError(pub String);

impl TracepointFormat {
    pub fn parse(text: &str) -> Result<TracepointFormat, FormatError> {
        let mut fields = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("field:") {
                fields.push(parse_field(rest).ok_or_else(|| FormatError(line.to_string()))?);
            }
        }
        Ok(TracepointFormat { fields })
    }

    pub fn field(&self, name: &str) -> Option<&TpField> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Fields a user reads (`common_*` bookkeeping fields excluded).
    pub fn user_fields(&self) -> impl Iterator<Item = &TpField> {
        self.fields.iter().filter(|f| !f.name.starts_with("common_"))
    }
}

/// `const char * filename;    offset:24;    size:8;    signed:0;`
fn parse_field(rest: &str) -> Option<TpField> {
    let mut parts = rest.split(';').map(str::trim);
    let decl = parts.next()?;
    let mut offset = None;
    let mut size: Option<u32> = None;
    let mut signed = false;
    for p in parts {
        if let Some(v) = p.strip_prefix("offset:") {
            offset = v.parse().ok();
        } else if let Some(v) = p.strip_prefix("size:") {
            size = v.parse().ok();
        } else if let Some(v) = p.strip_prefix("signed:") {
            signed = v == "1";
        }
    }
    let (offset, size) = (offset?, size?);
    let (c_type, name, array_len) = split_declaration(decl)?;
    let is_char = {
        let base = c_type.replace("const ", "").replace("unsigned ", "").replace("signed ", "");
        let base = base.trim_end_matches('*').trim();
        base == "char" || base == "u8" || base == "__u8"
    };
    let kind = if c_type.starts_with("__data_loc") {
        TpFieldKind::DataLocString
    } else if let Some(len) = array_len {
        // Only `char` arrays are strings, as bpftrace v0.26 types them
        // (`__u8 daddr[4]` is an array of bytes).
        if c_type.replace("const ", "").trim() == "char" {
            TpFieldKind::CharArray
        } else {
            let len = len.unwrap_or(0);
            TpFieldKind::Array { elem_size: size.checked_div(len).unwrap_or(size), len }
        }
    } else if c_type.ends_with('*') {
        TpFieldKind::Pointer { char_pointee: is_char }
    } else {
        TpFieldKind::Int
    };
    let c_type = match array_len {
        Some(Some(n)) => format!("{}[{}]", c_type, n),
        Some(None) => format!("{}[]", c_type),
        None => c_type,
    };
    Some(TpField { name, c_type, offset, size, signed, kind })
}

/// Splits `const char * filename` into (`const char *`, `filename`, no array)
/// and `char prev_comm[16]` into (`char`, `prev_comm`, Some(Some(16))).
fn split_declaration(decl: &str) -> Option<(String, String, Option<Option<u32>>)> {
    let (decl, array) = match decl.find('[') {
        Some(open) => {
            let close = decl[open..].find(']')? + open;
            let len = decl[open + 1..close].trim().parse::<u32>().ok();
            let rest = format!("{}{}", &decl[..open], &decl[close + 1..]);
            (rest, Some(len))
        }
        None => (decl.to_string(), None),
    };
    let decl = decl.trim();
    let split = decl.rfind([' ', '*'])?;
    let name = decl[split + 1..].trim().to_string();
    let c_type = decl[..split + 1].split_whitespace().collect::<Vec<_>>().join(" ");
    // `char *name` should read `char *`.
    let c_type = c_type.replace(" *", "*").replace('*', " *").replace("  ", " ").trim().to_string();
    let c_type = c_type.replace("* *", "**");
    if name.is_empty() {
        return None;
    }
    Some((c_type, name, array))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENAT: &str = "name: sys_enter_openat
ID: 782
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:int dfd;\toffset:16;\tsize:8;\tsigned:0;
\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;
\tfield:umode_t mode;\toffset:40;\tsize:8;\tsigned:0;

print fmt: \"dfd: 0x%08lx\"";

    #[test]
    fn parses_syscall_format() {
        let f = TracepointFormat::parse(OPENAT).unwrap();
        let filename = f.field("filename").unwrap();
        assert_eq!(filename.c_type, "const char *");
        assert_eq!((filename.offset, filename.size), (24, 8));
        assert_eq!(filename.kind, TpFieldKind::Pointer { char_pointee: true });
        let pid = f.field("common_pid").unwrap();
        assert!(pid.signed);
        assert_eq!(pid.kind, TpFieldKind::Int);
        assert_eq!(f.user_fields().count(), 4);
    }

    #[test]
    fn parses_arrays_and_data_loc() {
        let text = "\tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;\n\
                    \tfield:__data_loc char[] name;\toffset:8;\tsize:4;\tsigned:0;\n\
                    \tfield:unsigned long args[6];\toffset:16;\tsize:48;\tsigned:0;\n\
                    \tfield:struct task_struct * task;\toffset:8;\tsize:8;\tsigned:0;";
        let f = TracepointFormat::parse(text).unwrap();
        assert_eq!(f.fields[0].kind, TpFieldKind::CharArray);
        assert_eq!(f.fields[0].c_type, "char[16]");
        assert_eq!(f.fields[1].kind, TpFieldKind::DataLocString);
        assert_eq!(f.fields[1].name, "name");
        assert_eq!(f.fields[2].kind, TpFieldKind::Array { elem_size: 8, len: 6 });
        assert_eq!(f.fields[3].kind, TpFieldKind::Pointer { char_pointee: false });
        assert_eq!(f.fields[3].c_type, "struct task_struct *");
    }
}
