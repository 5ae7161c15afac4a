//! Receiving a file list (upstream recv_file_list / recv_file_entry /
//! recv_id_list): mirrors the sender's "same as previous" state, checks
//! every length and name from the (possibly hostile) peer, and returns
//! errors instead of panicking.

use oxrsyncd_protocol::IoError;
use std::io::Read;

use crate::transfer::flist::entry::FileEntry;
use crate::transfer::flist::error::{show, FlistError};
use crate::transfer::flist::ids::{recv_id_list, recv_name};
use crate::transfer::flist::options::FlistOptions;
use crate::transfer::flist::wire30::*;
use crate::transfer::flist::xmit::*;
use crate::transfer::flist::MAXPATHLEN;
use oxrsyncd_protocol::wire::read_varlong;

/// What follows the last entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlistTrailer {
    /// io_error from the end-of-list marker and/or (protocol < 30) the
    /// trailing int, masked like upstream (IOERR_VALID_MASK).
    pub io_error: i32,
    /// (uid, name) pairs in wire order; id 0 last when CF_ID0_NAMES.
    pub uid_names: Vec<(u32, Vec<u8>)>,
    /// (gid, name) pairs in wire order.
    pub gid_names: Vec<(u32, Vec<u8>)>,
    /// Names that arrived inline (inc_recurse XMIT_*_NAME_FOLLOWS).
    pub inline_uid_names: Vec<(u32, Vec<u8>)>,
    /// Inline group names (inc_recurse).
    pub inline_gid_names: Vec<(u32, Vec<u8>)>,
}

/// A received entry's place in a hard-link group (upstream F_HL_GNUM).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HlinkRole {
    /// Not hard-linked.
    None,
    /// Protocol >= 30: first of its group.
    Leader,
    /// Protocol >= 30: follows the leader at this receiving index.
    Follower(u32),
    /// Protocol < 30: dev/ino travelled (in the entry's dev/ino fields).
    DevIno,
}

/// What follows each entry on the wire besides the entry itself (`-A`'s
/// ACLs, then `-X`'s attribute set, as upstream's `recv_file_entry` reads
/// them), read by whoever keeps it; it notes what it kept in the entry.
pub(crate) trait EntryTail: Send {
    fn read(&mut self, r: &mut dyn Read, e: &mut FileEntry) -> Result<(), FlistError>;
}

/// Decodes entries in the order they arrive (sending order).
pub struct FlistDecoder {
    /// Reads what follows each entry (`-A`, `-X`), when the list has it.
    tail: Option<Box<dyn EntryTail>>,
    opts: FlistOptions,
    last_name: Vec<u8>,
    mode: u32,
    mtime: i64,
    /// `-U`: the previous non-directory's access time.
    atime: i64,
    uid: u32,
    gid: u32,
    rdev: u64,
    rdev_major: u32,
    /// Below protocol 30: the last hard-link dev as it travels (the real
    /// dev plus one). It starts at 1, standing for the sender's starting
    /// dev of 0, so a first linked entry on dev 0 sent as "same dev" comes
    /// back as dev 0, not -1 (found by fuzzing; upstream only groups by
    /// it, and the grouping is the same either way).
    hl_dev: i64,
    /// This list's entries so far (a hard link's leader in the same list
    /// lends its attributes to its followers).
    received: Vec<FileEntry>,
    roles: Vec<HlinkRole>,
    /// Index of this list's first entry (incremental recursion numbers
    /// entries across lists; hard-link leaders are named by it).
    ndx_start: usize,
    trailer: FlistTrailer,
    ended: bool,
    finished: bool,
}

impl FlistDecoder {
    /// A decoder for one list; `opts` must match the sender's.
    pub fn new(opts: FlistOptions) -> Self {
        FlistDecoder {
            tail: None,
            opts,
            last_name: Vec::new(),
            mode: 0,
            mtime: 0,
            atime: 0,
            uid: 0,
            gid: 0,
            rdev: 0,
            rdev_major: 0,
            hl_dev: 1,
            received: Vec::new(),
            roles: Vec::new(),
            ndx_start: 0,
            trailer: FlistTrailer::default(),
            ended: false,
            finished: false,
        }
    }

    /// Have `tail` read what follows each entry (ACLs, attribute sets).
    pub(crate) fn set_tail(&mut self, tail: Box<dyn EntryTail>) {
        self.tail = Some(tail);
    }

    /// Incremental recursion: the next list starts at index `ndx_start`.
    /// The "same as the previous entry" state and the inline owner names
    /// carry over from the list before, as upstream's static state does;
    /// the entries, their hard-link roles and the end of list start anew.
    pub fn start_list(&mut self, ndx_start: usize) {
        self.ndx_start = ndx_start;
        self.received.clear();
        self.roles.clear();
        self.ended = false;
        self.finished = false;
        self.trailer.io_error = 0;
    }

    /// What the lists said besides their entries so far (the io_error of
    /// the current list, inline owner names of all).
    pub fn trailer(&self) -> &FlistTrailer {
        &self.trailer
    }

    /// Hard-link roles of the entries received so far, by receiving index
    /// in this list.
    pub fn hlink_roles(&self) -> &[HlinkRole] {
        &self.roles
    }

    /// Next entry, or None at the end of the list (then call finish to read
    /// id lists / io_error).
    pub fn next(&mut self, r: &mut impl Read) -> Result<Option<FileEntry>, FlistError> {
        if self.ended {
            return Ok(None);
        }
        let p = self.opts.protocol;
        let flags: u32 = if self.opts.varint_flags {
            let f = get_varint(r, "entry flags")? as u32;
            if f == 0 {
                let err = get_varint(r, "end-of-list io_error")?;
                self.trailer.io_error |= err & IoError::VALID_MASK;
                self.ended = true;
                return Ok(None);
            }
            f
        } else {
            let mut f = u32::from(get_byte(r, "entry flags")?);
            if f == 0 {
                self.ended = true;
                return Ok(None);
            }
            if p >= 28 && f & XMIT_EXTENDED_FLAGS != 0 {
                f |= u32::from(get_byte(r, "extended entry flags")?) << 8;
            }
            if f == XMIT_EXTENDED_FLAGS | XMIT_IO_ERROR_ENDLIST {
                if !self.opts.use_safe_flist() {
                    return Err(FlistError::BadFlags { flags: f });
                }
                let err = get_varint(r, "end-of-list io_error")?;
                self.trailer.io_error |= err & IoError::VALID_MASK;
                self.ended = true;
                return Ok(None);
            }
            f
        };
        let e = self.entry(r, flags, p)?;
        self.received.push(e.clone());
        Ok(Some(e))
    }

    fn read_name(&mut self, r: &mut impl Read, flags: u32, p: u32) -> Result<Vec<u8>, FlistError> {
        let l1 = if flags & XMIT_SAME_NAME != 0 {
            get_byte(r, "name prefix length")? as usize
        } else {
            0
        };
        let l2 = if flags & XMIT_LONG_NAME != 0 {
            let v = get_varint30(r, p, "long name length")?;
            if v < 0 {
                return Err(FlistError::NameOverflow {
                    l1,
                    l2: v as usize,
                    prev_len: self.last_name.len(),
                });
            }
            v as usize
        } else {
            get_byte(r, "name length")? as usize
        };
        if l1 > self.last_name.len() || l2 >= MAXPATHLEN - l1 {
            return Err(FlistError::NameOverflow {
                l1,
                l2,
                prev_len: self.last_name.len(),
            });
        }
        let mut name = self.last_name[..l1].to_vec();
        name.extend_from_slice(&get_bytes(r, l2, "name")?);
        self.last_name.clone_from(&name);
        if name.is_empty() || name.contains(&0) {
            return Err(FlistError::UnsafeName { name: show(&name) });
        }
        let cleaned = clean_fname(&name).ok_or_else(|| FlistError::UnsafeName { name: show(&name) })?;
        if !self.opts.allow_absolute && cleaned.first() == Some(&b'/') {
            return Err(FlistError::UnsafeName { name: show(&name) });
        }
        Ok(cleaned)
    }

    /// One entry after its flags (upstream's `recv_file_entry`). Long on
    /// purpose, as the encoder: the fields are read in upstream's wire
    /// order with each one's protocol and option conditions beside it, so
    /// the decoder reads side by side with upstream's and with
    /// [`crate::transfer::flist::FlistEncoder::encode`], whose mirror it is.
    fn entry(&mut self, r: &mut impl Read, flags: u32, p: u32) -> Result<FileEntry, FlistError> {
        let name = self.read_name(r, flags, p)?;
        let o = self.opts.clone();
        let mut e = FileEntry {
            name,
            ..Default::default()
        };
        let this_ndx = self.ndx_start + self.received.len();

        // A follower names its group's first entry by index. In the same
        // list that entry lends its attributes; in an earlier one (only
        // with incremental recursion) they travel in full.
        let mut leader_elsewhere = None;
        if p >= 30 && flags & XMIT_HLINKED != 0 && flags & XMIT_HLINK_FIRST == 0 {
            let ndx = get_varint(r, "hard-link leader index")?;
            if ndx < 0 || ndx as usize >= this_ndx {
                return Err(FlistError::BadHlinkIndex { ndx, count: this_ndx });
            }
            if (ndx as usize) < self.ndx_start {
                leader_elsewhere = Some(ndx as u32);
            } else {
                self.copy_leader(&mut e, ndx as usize - self.ndx_start);
                // Its ACLs and attributes travel all the same.
                self.read_tail(r, &mut e)?;
                self.set_dir_flags(&mut e, flags, p)?;
                self.roles.push(HlinkRole::Follower(ndx as u32));
                return Ok(e);
            }
        }

        let size = get_varlong30(r, p, 3, "file size")?;
        if flags & XMIT_SAME_TIME == 0 {
            self.mtime = if p >= 30 {
                read_varlong(r, 4).map_err(FlistError::io("mtime"))?
            } else {
                i64::from(get_int(r, "mtime")? as u32)
            };
        }
        e.mtime = self.mtime;
        if flags & XMIT_MOD_NSEC != 0 {
            let ns = get_varint(r, "mtime nsec")?;
            if !(0..=MAX_WIRE_NSEC).contains(&ns) {
                return Err(FlistError::BadLength {
                    what: "mtime nsec",
                    value: ns.into(),
                    name: show(&e.name),
                });
            }
            e.mtime_nsec = ns as u32;
        }
        if flags & XMIT_SAME_MODE == 0 {
            let m = get_int(r, "mode")? as u32;
            if !(is_valid_type(m) || (o.missing_entries && m == 0)) {
                return Err(FlistError::BadMode {
                    mode: m,
                    name: show(&e.name),
                });
            }
            self.mode = m;
        }
        e.mode = self.mode;
        if !(is_valid_type(e.mode) || (o.missing_entries && e.mode == 0)) {
            // SAME_MODE on the very first entry leaves mode 0.
            return Err(FlistError::BadMode {
                mode: e.mode,
                name: show(&e.name),
            });
        }
        if o.preserve_atimes && !is_dir(e.mode) {
            if flags & XMIT_SAME_ATIME == 0 {
                self.atime = read_varlong(r, 4).map_err(FlistError::io("atime"))?;
            }
            e.atime = self.atime;
        }
        if o.preserve_uid && flags & XMIT_SAME_UID == 0 {
            if p < 30 {
                self.uid = get_int(r, "uid")? as u32;
            } else {
                self.uid = get_varint(r, "uid")? as u32;
                if flags & XMIT_USER_NAME_FOLLOWS != 0 {
                    let n = recv_name(r)?;
                    self.trailer.inline_uid_names.push((self.uid, n));
                }
            }
        }
        if o.preserve_gid && flags & XMIT_SAME_GID == 0 {
            if p < 30 {
                self.gid = get_int(r, "gid")? as u32;
            } else {
                self.gid = get_varint(r, "gid")? as u32;
                if flags & XMIT_GROUP_NAME_FOLLOWS != 0 {
                    let n = recv_name(r)?;
                    self.trailer.inline_gid_names.push((self.gid, n));
                }
            }
        }
        if o.preserve_uid {
            e.uid = self.uid;
        }
        if o.preserve_gid {
            e.gid = self.gid;
        }

        let mut size = size;
        if (o.preserve_devices && is_device(e.mode)) || (o.preserve_specials && is_special(e.mode) && p < 31) {
            if p < 28 {
                if flags & XMIT_SAME_RDEV_PRE28 == 0 {
                    // upstream casts the signed int straight to dev_t
                    self.rdev = get_int(r, "rdev")? as i64 as u64;
                }
            } else {
                if flags & XMIT_SAME_RDEV_MAJOR == 0 {
                    self.rdev_major = get_varint30(r, p, "rdev major")? as u32;
                }
                let minor = if p >= 30 {
                    get_varint(r, "rdev minor")? as u32
                } else if flags & XMIT_RDEV_MINOR_8_PRE30 != 0 {
                    u32::from(get_byte(r, "rdev minor")?)
                } else {
                    get_int(r, "rdev minor")? as u32
                };
                self.rdev = makedev(self.rdev_major, minor);
            }
            if is_device(e.mode) {
                e.rdev_major = dev_major(self.rdev);
                e.rdev_minor = dev_minor(self.rdev);
            }
            size = 0;
        } else if is_device(e.mode) {
            size = 0;
        } else if p < 28 {
            self.rdev = 0;
        }
        if size < 0 {
            return Err(FlistError::BadLength {
                what: "file size",
                value: size,
                name: show(&e.name),
            });
        }
        e.size = size as u64;

        if o.preserve_links && is_lnk(e.mode) {
            let len = get_varint30(r, p, "symlink target length")?;
            if len < 0 || len as usize + 1 > MAXPATHLEN {
                return Err(FlistError::BadLength {
                    what: "symlink target length",
                    value: len.into(),
                    name: show(&e.name),
                });
            }
            let t = get_bytes(r, len as usize, "symlink target")?;
            e.link_target = Some(t);
        }

        let is_reg_entry = is_reg(e.mode);
        let linked = o.preserve_hard_links && (flags & XMIT_HLINKED != 0 || (p < 28 && is_reg_entry));
        let mut role = HlinkRole::None;
        if let Some(first) = leader_elsewhere {
            role = HlinkRole::Follower(first);
        } else if p >= 30 && flags & XMIT_HLINKED != 0 {
            role = HlinkRole::Leader;
        } else if linked && p < 30 {
            if flags & XMIT_SAME_DEV_PRE30 == 0 {
                self.hl_dev = get_longint(r, "hard-link dev")?;
            }
            let ino = get_longint(r, "hard-link inode")?;
            e.dev = self.hl_dev.wrapping_sub(1) as u64;
            e.ino = ino as u64;
            role = HlinkRole::DevIno;
        }

        if let Some(len) = o.checksum_len {
            if is_reg_entry || p < 28 {
                let sum = get_bytes(r, len, "file checksum")?;
                if is_reg_entry {
                    e.checksum = Some(sum);
                }
            }
        }

        self.read_tail(r, &mut e)?;
        self.set_dir_flags(&mut e, flags, p)?;
        self.roles.push(role);
        Ok(e)
    }

    /// What follows the entry, if anything does.
    fn read_tail(&mut self, r: &mut impl Read, e: &mut FileEntry) -> Result<(), FlistError> {
        match self.tail.as_mut() {
            Some(tail) => tail.read(r, e),
            None => Ok(()),
        }
    }

    /// A follower in the same list as its leader (at `pos`) takes the
    /// leader's attributes, and they become the "previous entry" state.
    fn copy_leader(&mut self, e: &mut FileEntry, pos: usize) {
        let (atimes, uid, gid, devices) = (
            self.opts.preserve_atimes,
            self.opts.preserve_uid,
            self.opts.preserve_gid,
            self.opts.preserve_devices,
        );
        let first = self.received[pos].clone();
        e.size = first.size;
        e.mtime = first.mtime;
        e.mtime_nsec = first.mtime_nsec;
        e.atime = first.atime;
        if atimes && !is_dir(first.mode) {
            self.atime = first.atime;
        }
        e.mode = first.mode;
        e.uid = first.uid;
        e.gid = first.gid;
        e.rdev_major = first.rdev_major;
        e.rdev_minor = first.rdev_minor;
        e.link_target = first.link_target;
        e.checksum = first.checksum;
        self.mtime = first.mtime;
        self.mode = first.mode;
        if uid {
            self.uid = first.uid;
        }
        if gid {
            self.gid = first.gid;
        }
        if devices && is_device(first.mode) {
            self.rdev_major = first.rdev_major;
            self.rdev = makedev(first.rdev_major, first.rdev_minor);
        }
    }

    fn set_dir_flags(&self, e: &mut FileEntry, flags: u32, p: u32) -> Result<(), FlistError> {
        if (e.name == b"." || e.name == b"/.") && !is_dir(e.mode) {
            return Err(FlistError::RootNotDir { name: show(&e.name) });
        }
        if is_dir(e.mode) {
            e.top_dir = flags & XMIT_TOP_DIR != 0;
            e.no_content_dir = p >= 30 && flags & XMIT_NO_CONTENT_DIR != 0;
        }
        Ok(())
    }

    /// After `next` returned None: read the uid/gid name lists (when
    /// upstream sends them) and, below protocol 30, the io_error int.
    pub fn finish(&mut self, r: &mut impl Read) -> Result<FlistTrailer, FlistError> {
        if !self.ended {
            return Err(FlistError::Sequence("finish before the end of the list"));
        }
        if self.finished {
            return Err(FlistError::Sequence("finish called twice"));
        }
        self.finished = true;
        let o = &self.opts;
        if !o.inc_recurse && !o.numeric_ids {
            // -A's named entries make both lists travel.
            if o.preserve_uid || o.preserve_acls {
                self.trailer.uid_names = recv_id_list(r, o)?;
            }
            if o.preserve_gid || o.preserve_acls {
                self.trailer.gid_names = recv_id_list(r, o)?;
            }
        }
        if o.protocol < 30 {
            let err = get_int(r, "io_error")?;
            self.trailer.io_error |= err & IoError::VALID_MASK;
        }
        Ok(self.trailer.clone())
    }
}

/// Upstream clean_fname with CFN_REFUSE_DOT_DOT_DIRS: drop duplicate
/// slashes, interior "." components and a trailing slash; refuse "..".
/// Returns None for names with a ".." component.
pub(crate) fn clean_fname(name: &[u8]) -> Option<Vec<u8>> {
    let anchored = name.first() == Some(&b'/');
    let mut out: Vec<u8> = Vec::with_capacity(name.len());
    if anchored {
        out.push(b'/');
    }
    let comps: Vec<&[u8]> = name.split(|&b| b == b'/').filter(|c| !c.is_empty()).collect();
    let n = comps.len();
    for (i, c) in comps.iter().enumerate() {
        if *c == b".." {
            return None;
        }
        // interior "." components vanish; a final "." stays
        if *c == b"." && (i + 1 < n || name.last() == Some(&b'/')) {
            continue;
        }
        out.extend_from_slice(c);
        out.push(b'/');
    }
    if out.len() > usize::from(anchored) && out.last() == Some(&b'/') {
        out.pop();
    }
    if out.is_empty() {
        out.push(b'.');
    }
    Some(out)
}
