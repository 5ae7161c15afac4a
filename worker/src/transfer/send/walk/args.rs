//! The walk's entry points: each argument the client named, made
//! module-relative, glob-expanded and walked in plain or `-R` mode.

use crate::transfer::fs::paths::module_relative;
use crate::transfer::send::walk::walker::{Walked, Walker};

impl Walker<'_> {
    /// Walk every requested path.
    pub(crate) fn walk(&self, args: &[Vec<u8>]) -> Walked {
        self.walk_args(args, false)
    }

    /// Incremental recursion's first list: each argument's own entry and,
    /// for a `dir/` argument, the directory's immediate contents. Nothing is
    /// descended into; every directory's contents come later in a list of
    /// their own ([`Walker::walk_dir_contents`]).
    pub(crate) fn walk_top_level(&self, args: &[Vec<u8>]) -> Walked {
        self.walk_args(args, true)
    }

    fn walk_args(&self, args: &[Vec<u8>], shallow: bool) -> Walked {
        let mut out = Walked::default();
        let args: &[Vec<u8>] = if args.is_empty() { &[Vec::new()] } else { args };
        if self.options.relative {
            let mut state = crate::transfer::send::walk::relative::RelativeState::default();
            for arg in args {
                let rest = arg.strip_prefix(self.module_name.as_bytes()).unwrap_or(arg);
                let rel = crate::transfer::send::walk::relative::sanitize_keep_dots(rest);
                for expanded in crate::transfer::send::glob::expand(self.root, &rel) {
                    self.walk_relative_arg(&expanded, shallow, &mut state, &mut out);
                }
            }
            return out;
        }
        for arg in args {
            let rel = module_relative(arg, self.module_name);
            for expanded in crate::transfer::send::glob::expand(self.root, &rel) {
                self.walk_arg(&expanded, shallow, &mut out);
            }
        }
        out
    }
}
