//! Typing `kstack`, `ustack` and `dw_ustack` (builtins, and calls with a
//! mode and a limit, as bpftrace has them), and `len()` of a stack.

use super::check::Checker;
use super::expr::none;
use super::typed::*;
use crate::config::Unstable;
use crate::parser::ast::{Expr, ExprKind};
use crate::span::Span;
use crate::types::{StackMode, StackType, Type, I64};

impl<'a> Checker<'a> {
    /// `kstack` / `ustack` / `dw_ustack` without arguments: the configured
    /// mode, 127 frames.
    pub fn stack_builtin(&mut self, name: &str, span: Span) -> TExpr {
        let (kernel, dwarf) = (name == "kstack", name == "dw_ustack");
        if dwarf && !self.dw_ustack_allowed(span) {
            return none(span);
        }
        let mut mode = self.config.stack_mode;
        if kernel && mode == StackMode::BuildId {
            // bpftrace's fallback for the builtin.
            self.warn(span, "'build_id' stack mode can only be used for ustack. Falling back to 'raw' mode.");
            mode = StackMode::Raw;
        }
        if dwarf && mode == StackMode::BuildId {
            self.error(span, "dw_ustack does not have the 'build_id' stack mode");
            return none(span);
        }
        self.stack(StackType { kernel, mode, limit: StackType::DEFAULT_LIMIT, dwarf }, span)
    }

    /// `unstable_dw_ustack`: bpftrace's warning unless `enable`, its error
    /// with `error`.
    fn dw_ustack_allowed(&mut self, span: Span) -> bool {
        match self.config.unstable_dw_ustack {
            Unstable::Enable => true,
            Unstable::Error => {
                self.error(
                    span,
                    "dw_ustack (DWARF stack unwinding) feature is not enabled by default. To enable this unstable \
                     feature, set the config flag to enable. unstable_dw_ustack=enable",
                );
                false
            }
            Unstable::Warn => {
                let message = "Script is using an unstable feature: dw_ustack (DWARF stack unwinding). To prevent \
                               this warning you must explicitly enable it in the config e.g. unstable_dw_ustack=enable";
                if !self.diags.iter().any(|d| d.message == message) {
                    self.warn(span, message);
                }
                true
            }
        }
    }

    /// `kstack([mode, ][limit])` / `ustack(...)` / `dw_ustack(...)`.
    pub fn stack_call(&mut self, name: &str, name_span: Span, args: &[Expr], span: Span) -> TExpr {
        let (kernel, dwarf) = (name == "kstack", name == "dw_ustack");
        if dwarf && !self.dw_ustack_allowed(name_span) {
            return none(span);
        }
        let mut st = StackType { kernel, mode: self.config.stack_mode, limit: StackType::DEFAULT_LIMIT, dwarf };
        if args.len() > 2 {
            self.error(
                name_span,
                format!("{}() takes 0 to 2 arguments (a mode and a limit), but {} given", name, args.len()),
            );
            return none(span);
        }
        let mut limit_arg = args.first();
        if let Some(first) = args.first() {
            match &first.kind {
                ExprKind::Ident(mode) => {
                    match StackMode::parse(mode) {
                        Some(m) => st.mode = m,
                        None => {
                            self.error(first.span, format!("Error parsing stack mode: {}", StackMode::INVALID));
                            return none(span);
                        }
                    }
                    limit_arg = args.get(1);
                }
                _ if args.len() == 2 => {
                    self.error(first.span, "Expected stack mode as first argument");
                    return none(span);
                }
                _ => {}
            }
        }
        if let Some(arg) = limit_arg {
            match self.const_int(arg) {
                Some(n) if n > StackType::MAX_LIMIT as i64 => {
                    self.error(
                        arg.span,
                        format!("{}([int limit]): limit shouldn't exceed {}, {} given", name, StackType::MAX_LIMIT, n),
                    );
                    return none(span);
                }
                Some(n) if n >= 1 => st.limit = n as u32,
                _ => {
                    self.error(arg.span, format!("{}: invalid limit value: a positive integer constant", name));
                    return none(span);
                }
            }
        }
        if kernel && st.mode == StackMode::BuildId {
            self.error(span, "'build_id' stack mode can only be used for ustack");
            return none(span);
        }
        if dwarf && st.mode == StackMode::BuildId {
            self.error(span, "dw_ustack does not have the 'build_id' stack mode");
            return none(span);
        }
        self.stack(st, span)
    }

    fn stack(&mut self, st: StackType, span: Span) -> TExpr {
        if !self.stacks.contains(&st) {
            self.stacks.push(st);
        }
        TExpr { kind: TExprKind::Stack(st), ty: Type::Stack(st), span }
    }

    /// `len(stack)`: how many frames it has.
    pub fn stack_len(&mut self, arg: &Expr, span: Span) -> TExpr {
        let v = self.expr(arg);
        match v.ty {
            // Unwound in user space: the kernel never knows its frames.
            Type::Stack(st) if st.dwarf => {
                self.error(v.span, "len() of a dw_ustack is not known in the kernel: it is unwound in user space");
                none(span)
            }
            Type::Stack(_) => TExpr { kind: TExprKind::StackLen(Box::new(v)), ty: I64, span },
            Type::None => none(span),
            other => {
                self.error(v.span, format!("len() takes a map or a stack, not {}", other));
                none(span)
            }
        }
    }
}
