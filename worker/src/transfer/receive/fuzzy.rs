//! `--fuzzy` (`-y`) on a push (upstream's `find_fuzzy`): a file that does
//! not exist yet gets as its delta basis the most similar file already in
//! its directory: one with the same size and time if there is one, else
//! the closest name by upstream's weighted Levenshtein distance, with
//! extra weight on the suffix. `-yy` also looks in the `--*-dest`
//! directories.

/// Upstream's UNIT: one edit; the low 16 bits weigh how far apart the
/// changed characters are.
const UNIT: u32 = 1 << 16;

/// A regular file that could serve as the basis.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub name: Vec<u8>,
    pub size: u64,
    pub mtime: i64,
}

/// Upstream's `find_filename_suffix`: the last significant `.suffix` of a
/// name (leading dots are no suffix; `~`, `.bak`, `.old`, `.orig` and
/// `.~N` backups are looked through; an all-digit suffix yields to the
/// one before it).
pub(crate) fn suffix(name: &[u8]) -> &[u8] {
    let mut fn_ = name;
    while let [b'.', rest @ ..] = fn_ {
        fn_ = rest;
    }
    let mut len = fn_.len();
    let had_tilde = len > 1 && fn_[len - 1] == b'~';
    if had_tilde {
        len -= 1;
    }
    let mut found: &[u8] = b"";
    while len > 1 {
        let Some(dot) = fn_[..len].iter().rposition(|&b| b == b'.').filter(|&d| d > 0) else {
            break;
        };
        let s = &fn_[dot..len];
        len = dot;
        let body = &s[1..];
        if (s.len() == 4 && (body == b"bak" || body == b"old"))
            || (s.len() == 5 && body == b"orig")
            || (s.len() > 2 && had_tilde && s[1] == b'~' && s[2].is_ascii_digit())
        {
            continue;
        }
        found = s;
        if s.len() == 1 || !body.iter().all(u8::is_ascii_digit) {
            return found;
        }
        // An all-digit suffix may not be that significant: look before it.
    }
    found
}

/// Upstream's `fuzzy_distance`: Levenshtein in UNITs, each changed
/// character also costing its byte distance, an inserted or deleted one
/// its byte value. Beyond `upper` (judged by the length difference alone)
/// the answer is just "too far".
pub(crate) fn distance(s1: &[u8], s2: &[u8], upper: u32) -> u32 {
    let (len1, len2) = (s1.len() as u32, s2.len() as u32);
    if len1.abs_diff(len2).saturating_mul(UNIT) > upper {
        return 0xFFFF * UNIT + 1;
    }
    if s1.is_empty() || s2.is_empty() {
        // Upstream sums plain chars here (signed on x86).
        let s = if s1.is_empty() { s2 } else { s1 };
        let cost: i32 = s.iter().map(|&b| i32::from(b as i8)).sum();
        return (s.len() as u32).wrapping_mul(UNIT).wrapping_add(cost as u32);
    }
    let mut a: Vec<u32> = (1..=len2).map(|i| i * UNIT).collect();
    for (i1, &c1) in s1.iter().enumerate() {
        let mut diag = i1 as u32 * UNIT;
        let mut above = (i1 as u32 + 1) * UNIT;
        for (i2, &c2) in s2.iter().enumerate() {
            let left = a[i2];
            let d = i32::from(c1) - i32::from(c2);
            let cost = if d == 0 {
                0
            } else if d < 0 {
                (UNIT as i32 - d) as u32
            } else {
                (UNIT as i32 + d) as u32
            };
            let diag_inc = diag.wrapping_add(cost);
            let left_inc = left.wrapping_add(UNIT).wrapping_add(u32::from(c1));
            let above_inc = above.wrapping_add(UNIT).wrapping_add(u32::from(c2));
            above = if left < above {
                left_inc.min(diag_inc)
            } else {
                above_inc.min(diag_inc)
            };
            a[i2] = above;
            diag = left;
        }
    }
    a[s2.len() - 1]
}

/// The basis for `name` (size `size`, mtime `mtime`) among `dirs` (each
/// sorted by name, as upstream's directory lists): which list and which
/// file.
pub(crate) fn find(name: &[u8], size: u64, mtime: i64, dirs: &[&[Candidate]]) -> Option<(usize, Vec<u8>)> {
    let usable = |c: &&Candidate| c.size > 0;
    for (i, list) in dirs.iter().enumerate() {
        if let Some(c) = list.iter().filter(usable).find(|c| c.size == size && c.mtime == mtime) {
            return Some((i, c.name.clone()));
        }
    }
    let suf = suffix(name);
    let mut lowest = 25 * UNIT;
    let mut best = None;
    for (i, list) in dirs.iter().enumerate() {
        for c in list.iter().filter(usable) {
            let mut dist = distance(&c.name, name, lowest);
            if dist < 0xFFFF_0000 {
                dist = dist.wrapping_add(distance(suffix(&c.name), suf, 0xFFFF_0000).wrapping_mul(10));
            }
            if dist <= lowest {
                lowest = dist;
                best = Some((i, c.name.clone()));
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_as_upstream_finds_them() {
        assert_eq!(suffix(b"file.txt"), b".txt");
        assert_eq!(suffix(b"file.txt.bak"), b".txt");
        assert_eq!(suffix(b"file.tar.gz"), b".gz");
        assert_eq!(suffix(b".bashrc"), b"");
        assert_eq!(suffix(b"notes.txt~"), b".txt");
        assert_eq!(suffix(b"log.txt.1"), b".txt");
        assert_eq!(suffix(b"noext"), b"");
    }

    #[test]
    fn distances_count_edits_first() {
        assert_eq!(distance(b"abc", b"abc", u32::MAX), 0);
        let one = distance(b"abc", b"abd", u32::MAX);
        assert_eq!(one >> 16, 1);
        assert!(distance(b"abc", b"abcd", u32::MAX) >> 16 == 1);
        assert!(distance(b"a", b"abcdefgh", 2 * UNIT) > 0xFFFF * UNIT);
    }

    #[test]
    fn same_size_and_time_wins_then_the_closest_name() {
        let c = |n: &str, size, mtime| Candidate {
            name: n.as_bytes().to_vec(),
            size,
            mtime,
        };
        let dir = vec![c("data-v1.bin", 100, 5), c("other.txt", 100, 7), c("zero.bin", 0, 7)];
        assert_eq!(find(b"data-v2.bin", 100, 7, &[&dir]), Some((0, b"other.txt".to_vec())));
        assert_eq!(find(b"data-v2.bin", 50, 9, &[&dir]), Some((0, b"data-v1.bin".to_vec())));
        assert_eq!(find(b"completely-different-name.iso", 50, 9, &[&dir]), None);
    }
}
