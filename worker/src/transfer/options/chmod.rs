//! `incoming chmod` / `outgoing chmod`: upstream's chmod-style rule list
//! (`Dg+s,ug+w,Fo-w,+X`, `D2755,F644`, `g=u`) parsed into and/or steps and
//! applied to a mode. The sender applies `outgoing chmod` to every entry
//! but symlinks before it goes into the file list.

/// The permission bits rules may touch.
const CHMOD_BITS: u32 = 0o7777;
const S_IFMT: u32 = 0o170000;
const S_IFDIR: u32 = 0o040000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Eq,
    Set,
}

/// One clause, ready to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    and: u32,
    or: u32,
    copy_src: u32,
    copy_dst: u32,
    copy_and: u32,
    op: Op,
    dirs_only: bool,
    files_only: bool,
    /// `X`: execute only where some execute bit is already set (or a directory).
    x_keep: bool,
}

/// A parsed rule list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChmodRules {
    steps: Vec<Step>,
}

/// A rule list that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid chmod rule {0:?}")]
pub struct ChmodError(pub String);

impl ChmodRules {
    /// Parse `spec`; `umask` applies to clauses that name nobody (`+x`), as upstream.
    pub fn parse(spec: &str, umask: u32) -> Result<ChmodRules, ChmodError> {
        let mut steps = Vec::new();
        for clause in spec.split(',') {
            steps.push(parse_clause(clause, umask).ok_or_else(|| ChmodError(clause.to_string()))?);
        }
        Ok(ChmodRules { steps })
    }

    /// The mode after every applicable rule.
    pub fn apply(&self, mode: u32) -> u32 {
        let is_x = mode & 0o111 != 0;
        let non_perm = mode & !CHMOD_BITS;
        let is_dir = non_perm & S_IFMT == S_IFDIR;
        let mut mode = mode;
        for s in &self.steps {
            if (s.dirs_only && !is_dir) || (s.files_only && is_dir) {
                continue;
            }
            let copy = copy_bits(mode, s.copy_src, s.copy_dst, s.copy_and);
            mode &= s.and;
            if s.x_keep && !is_x && !is_dir {
                mode |= s.or & !0o111;
            } else {
                mode |= s.or;
            }
            if s.op == Op::Sub {
                mode &= CHMOD_BITS - copy;
            } else {
                mode |= copy;
            }
        }
        (mode & CHMOD_BITS) | non_perm
    }
}

fn copy_bits(mode: u32, src: u32, dst: u32, and: u32) -> u32 {
    let mut bits = 0;
    if src & 0o100 != 0 {
        bits |= (mode >> 6) & 7;
    }
    if src & 0o010 != 0 {
        bits |= (mode >> 3) & 7;
    }
    if src & 0o001 != 0 {
        bits |= mode & 7;
    }
    (dst * bits) & and
}

fn special_bits_for(who: u32) -> u32 {
    let mut bits = 0;
    if who & 0o100 != 0 {
        bits |= 0o4000;
    }
    if who & 0o010 != 0 {
        bits |= 0o2000;
    }
    if who & 0o001 != 0 {
        bits |= 0o1000;
    }
    bits
}

fn parse_clause(clause: &str, umask: u32) -> Option<Step> {
    let mut chars = clause.chars().peekable();
    let (mut dirs_only, mut files_only) = (false, false);
    let (mut who, mut top_bits) = (0u32, 0u32);
    let mut op = None;
    // First half: D/F, who, then the operator (or an octal number).
    while let Some(&c) = chars.peek() {
        match c {
            'D' if !files_only => dirs_only = true,
            'F' if !dirs_only => files_only = true,
            'u' => {
                who |= 0o100;
                top_bits |= 0o4000;
            }
            'g' => {
                who |= 0o010;
                top_bits |= 0o2000;
            }
            'o' => who |= 0o001,
            'a' => {
                who |= 0o111;
                top_bits |= 0o6000;
            }
            '+' => op = Some(Op::Add),
            '-' => op = Some(Op::Sub),
            '=' => op = Some(Op::Eq),
            d if d.is_digit(8) && who == 0 => {
                let digits: String = chars.collect();
                let value = u32::from_str_radix(&digits, 8).ok().filter(|v| *v <= CHMOD_BITS)?;
                let step = Step {
                    and: 0,
                    or: value,
                    copy_src: 0,
                    copy_dst: 0,
                    copy_and: CHMOD_BITS,
                    op: Op::Set,
                    dirs_only,
                    files_only,
                    x_keep: false,
                };
                return Some(step);
            }
            _ => return None,
        }
        chars.next();
        if op.is_some() {
            break;
        }
    }
    let op = op?;
    // Second half: permission letters or one source class to copy.
    let (mut what, mut top_oct, mut copy_src, mut x_keep) = (0u32, 0u32, 0u32, false);
    for c in chars {
        match c {
            'r' if copy_src == 0 => what |= 4,
            'w' if copy_src == 0 => what |= 2,
            'X' if copy_src == 0 => {
                x_keep = true;
                what |= 1;
            }
            'x' if copy_src == 0 => what |= 1,
            's' if copy_src == 0 => top_oct |= if top_bits != 0 { top_bits } else { 0o4000 },
            't' if copy_src == 0 => top_oct |= 0o1000,
            'u' if what == 0 && top_oct == 0 && copy_src == 0 => copy_src = 0o100,
            'g' if what == 0 && top_oct == 0 && copy_src == 0 => copy_src = 0o010,
            'o' if what == 0 && top_oct == 0 && copy_src == 0 => copy_src = 0o001,
            _ => return None,
        }
    }
    let who_given = who != 0;
    let (who, bits) = if who_given {
        (who, who * what)
    } else {
        (0o111, (0o111 * what) & !umask)
    };
    let copy_and = if who_given { CHMOD_BITS } else { !umask & CHMOD_BITS };
    let (and, or) = match op {
        Op::Add => (CHMOD_BITS, bits + top_oct),
        Op::Sub => (CHMOD_BITS - bits - top_oct, 0),
        Op::Eq => {
            let keep_top = if top_oct != 0 { top_bits } else { 0 };
            let keep_copy = if copy_src != 0 { special_bits_for(who) } else { 0 };
            (CHMOD_BITS - who * 7 - keep_top - keep_copy, bits + top_oct)
        }
        Op::Set => unreachable!("octal clauses return early"),
    };
    Some(Step {
        and,
        or,
        copy_src,
        copy_dst: who,
        copy_and,
        op,
        dirs_only,
        files_only,
        x_keep,
    })
}

/// The process umask, read without changing it (umask(2) would race with
/// other threads creating files).
pub(crate) fn current_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:").and_then(|v| u32::from_str_radix(v.trim(), 8).ok()))
        })
        .unwrap_or(0o022)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: u32 = 0o100000;
    const DIR: u32 = 0o040000;

    fn apply(spec: &str, mode: u32) -> u32 {
        ChmodRules::parse(spec, 0o022).unwrap().apply(mode)
    }

    #[test]
    fn symbolic_clauses() {
        assert_eq!(apply("go-w", FILE | 0o666), FILE | 0o644);
        assert_eq!(apply("u+x,g=r,o=", FILE | 0o644), FILE | 0o740);
        assert_eq!(apply("a+rX", FILE | 0o600), FILE | 0o644, "X adds no execute to a plain file");
        assert_eq!(apply("a+rX", FILE | 0o700), FILE | 0o755);
        assert_eq!(apply("a+rX", DIR | 0o700), DIR | 0o755);
        assert_eq!(apply("Dg+s,Fo-w", DIR | 0o775), DIR | 0o2775);
        assert_eq!(apply("Dg+s,Fo-w", FILE | 0o666), FILE | 0o664);
        assert_eq!(apply("+x", FILE | 0o600), FILE | 0o711, "no who: umask 022 does not mask x");
        assert_eq!(apply("+w", FILE | 0o400), FILE | 0o600, "no who: umask masks group/other w");
    }

    #[test]
    fn octal_and_copy_clauses() {
        assert_eq!(apply("D2755,F644", DIR | 0o700), DIR | 0o2755);
        assert_eq!(apply("D2755,F644", FILE | 0o777), FILE | 0o644);
        assert_eq!(apply("g=u", FILE | 0o640), FILE | 0o660);
        assert_eq!(apply("o=g", FILE | 0o750), FILE | 0o755);
    }

    #[test]
    fn rejects_nonsense() {
        for bad in ["", "q+x", "u", "D2755F", "u+rw=", "99999", "g=uw", "DF+x"] {
            assert!(ChmodRules::parse(bad, 0o022).is_err(), "{bad}");
        }
    }
}
