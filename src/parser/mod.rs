//! Source text → AST (`ast::Program`), driven by `grammar.pest`.

pub mod ast;
