//! `-X` on a push, the long values: after the item flags of an entry
//! whose attributes differ, the generator asks for the long values it
//! lacks (upstream's `send_xattr_request` from the generator: their
//! numbers as differences, ended by 0), and the client's sender answers
//! after its echo of the item (number, length, value), which the receiver
//! keeps (`recv_xattr_request` on the receiving side). A value is asked
//! for at most once per set, as the client's sender refuses a second
//! request; the receiver takes only values it asked for, each once.

use std::collections::HashMap;
use std::io::{self, Read, Write};

use oxrsyncd_protocol::item;
use oxrsyncd_protocol::wire::{read_varint, write_varint};

use crate::transfer::limits::budget;
use crate::transfer::receive::meta::store::{MetaStore, ValueState};
use crate::transfer::receive::meta::xattr_wire::{XattrSet, MAX_VALUE_LEN};
use crate::transfer::receive::setup::ReceiveError;

/// Whether a request (and its answer) follows an item with `iflags`
/// (upstream: not for a hard link's local change when `optim`, the
/// protocol 31 xattr optimisation, is on).
pub(crate) fn request_follows(iflags: u16, optim: bool) -> bool {
    iflags & item::REPORT_XATTR != 0 && !(optim && iflags & item::XNAME_FOLLOWS != 0 && iflags & item::LOCAL_CHANGE != 0)
}

/// The generator's side, after an item with `iflags` for an entry of set
/// `set_ndx`: the request, when one follows the item, else only the
/// states settled (a value left abbreviated matched ours).
pub(crate) fn write_request(
    out: &mut impl Write,
    store: &MetaStore,
    set_ndx: u32,
    set: &XattrSet,
    iflags: u16,
    optim: bool,
) -> io::Result<()> {
    let mut states = store.states.lock().unwrap_or_else(|e| e.into_inner());
    let writing = request_follows(iflags, optim);
    let mut prior = 0;
    for it in set.items.iter().filter(|i| i.abbreviated()) {
        let state = states.entry((set_ndx, it.num)).or_insert(ValueState::Done);
        if *state == ValueState::Todo && writing {
            write_varint(out, it.num - prior)?;
            prior = it.num;
        }
        *state = ValueState::Done;
    }
    if writing {
        out.write_all(&[0])?;
    }
    Ok(())
}

/// The receiver's side: the client's answer for the entry `fname` of set
/// `set_ndx`, each value kept for the session. A number the set lacks, a
/// value that is not long or arrived before, or one past the limit ends
/// the push in upstream's words.
pub(crate) fn read_answer(input: &mut impl Read, store: &MetaStore, set_ndx: Option<u32>, fname: &[u8]) -> Result<(), ReceiveError> {
    let shown = String::from_utf8_lossy(fname);
    let Some((set_ndx, set)) = set_ndx.and_then(|n| store.xattr_set(n).map(|s| (n, s))) else {
        return Err(ReceiveError::Violation("recv_xattr_request: internal data error!\n".into()));
    };
    let mut num: i32 = 0;
    let mut got: HashMap<(u32, i32), Vec<u8>> = HashMap::new();
    loop {
        let step = read_varint(input)?;
        if step == 0 {
            break;
        }
        num = num
            .checked_add(step)
            .ok_or_else(|| ReceiveError::Violation("xattr rel_pos accumulation overflow [receiver]\n".into()))?;
        let Some(it) = set.items.iter().find(|i| i.num == num) else {
            return Err(ReceiveError::Violation(format!(
                "[receiver] could not find xattr #{num} for {shown}\n"
            )));
        };
        let already = got.contains_key(&(set_ndx, num))
            || store
                .fetched
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(&(set_ndx, num));
        if !it.abbreviated() || already {
            return Err(ReceiveError::Violation(format!(
                "[receiver] internal abbrev error on {shown} ({}, len={})!\n",
                String::from_utf8_lossy(&it.name),
                it.len
            )));
        }
        let len = read_varint(input)?;
        if len < 0 || i64::from(len) > MAX_VALUE_LEN {
            return Err(ReceiveError::Violation(
                "xattr datum_len exceeds per-value limit [receiver]\n".into(),
            ));
        }
        budget::charge(len as usize, "the extended attributes")?;
        let mut value = vec![0u8; len as usize];
        input.read_exact(&mut value)?;
        got.insert((set_ndx, num), value);
    }
    store.fetched.lock().unwrap_or_else(|e| e.into_inner()).extend(got);
    Ok(())
}
