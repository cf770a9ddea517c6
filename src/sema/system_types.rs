//! Types the system knows, for programs that use them without defining them:
//! structs and function parameters from the DWARF of probed binaries, kernel
//! structs from BTF. The runtime provides them (it reads the files); the
//! checker asks lazily, so only the types a program uses are converted.

use super::types::{Record, Type};
use std::path::Path;
use std::rc::Rc;

pub trait TypeSource {
    /// A struct or union by its C name (`struct task_struct`), laid out.
    /// Structs its members point to are stubs (a name and a size, no fields),
    /// looked up again when a program reaches into them.
    fn record(&self, name: &str) -> Option<Record>;
    /// The parameters of function `func` of the binary at `path`, in order.
    fn params(&self, path: &Path, func: &str) -> Option<Vec<(String, Type)>>;
}

/// A shared `TypeSource` (cloned with the `Env` it belongs to).
#[derive(Clone)]
pub struct SystemTypes(pub Rc<dyn TypeSource>);

impl std::fmt::Debug for SystemTypes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SystemTypes")
    }
}

/// A struct known only by name: a pointee not yet looked up.
pub fn is_stub(r: &Record) -> bool {
    r.fields.is_empty() && !r.name.is_empty() && r.size > 0
}
