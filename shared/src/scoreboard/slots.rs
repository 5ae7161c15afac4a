//! Connection slots: one per live connection (handshake or session), so
//! `oxrsyncd --status` can list them and a dead worker's per-host counts
//! can be given back. A worker claims a slot when it accepts, fills it in
//! as the connection advances, and frees it when the connection ends.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::modules::ModuleIndex;
use super::{text, Scoreboard};

/// Connections the scoreboard can show at once (past it, connections are
/// served but refused a slot: see the worker's listener).
pub const SLOTS: usize = 1 << 16;
/// Longest user name shown by `--status` (longer ones are cut).
const USER_BYTES: usize = 32;
/// Per-host counts one connection can hold (see [`HeldHost`]).
pub const HELD_HOSTS: usize = 3;

/// The `owner` value of a slot held by the worker of `row`.
pub(crate) fn owner_of_row(row: usize) -> u32 {
    row as u32 + 1
}

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Greeting, module choice, authentication, arguments.
    Handshake = 1,
    /// Admitted; the daemon sends files (the client pulls).
    Sending = 2,
    /// Admitted; the daemon receives files (the client pushes).
    Receiving = 3,
    /// The transfer is over; hooks and the goodbye are running.
    Ending = 4,
}

impl Phase {
    fn from_u32(v: u32) -> Phase {
        match v {
            2 => Phase::Sending,
            3 => Phase::Receiving,
            4 => Phase::Ending,
            _ => Phase::Handshake,
        }
    }

    /// How `--status` names it.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Handshake => "handshake",
            Phase::Sending => "sending",
            Phase::Receiving => "receiving",
            Phase::Ending => "ending",
        }
    }
}

/// Which per-host count a connection holds (an index into `host_entries`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldHost {
    /// `max sessions per host`.
    Connections = 0,
    /// `max handshakes per host`, until admission.
    Handshakes = 1,
    /// The module's `max connections per host`.
    Module = 2,
}

/// One connection's slot.
#[repr(C)]
pub struct Slot {
    /// 0 when free; the owning worker's row + 1 when held.
    pub(crate) owner: AtomicU32,
    phase: AtomicU32,
    /// Module bucket + 1 (0: none chosen yet).
    module: AtomicU32,
    /// The worker process's id.
    pid: AtomicU32,
    generation: AtomicU64,
    /// Accept time, Unix milliseconds.
    started_ms: AtomicU64,
    /// The client as an IPv6 address (IPv4 mapped), and its port.
    addr: [AtomicU64; 2],
    port: AtomicU32,
    user_len: AtomicU32,
    user: [AtomicU64; USER_BYTES / 8],
    /// Host counter entries held, + 1 (0: none), by [`HeldHost`].
    host_entries: [AtomicU32; HELD_HOSTS],
    /// Bytes written to / read from the client so far.
    pub bytes_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    /// Files whose data travelled so far.
    pub files: AtomicU64,
}

/// A copy of one slot, for `--status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotView {
    pub index: usize,
    pub pid: u32,
    pub generation: u64,
    pub phase: Phase,
    pub module: Option<ModuleIndex>,
    pub client: SocketAddr,
    pub user: Option<String>,
    pub started_ms: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub files: u64,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Slot {
    /// Set the phase.
    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u32, Ordering::Release);
    }

    /// Record the chosen module.
    pub fn set_module(&self, module: ModuleIndex) {
        self.module.store(u32::from(module.0) + 1, Ordering::Release);
    }

    /// Record the real client address (after a PROXY header).
    pub fn set_client(&self, client: SocketAddr) {
        let v6 = match client.ip() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        let b = v6.octets();
        self.addr[0].store(u64::from_be_bytes(b[..8].try_into().expect("8")), Ordering::Release);
        self.addr[1].store(u64::from_be_bytes(b[8..].try_into().expect("8")), Ordering::Release);
        self.port.store(u32::from(client.port()), Ordering::Release);
    }

    /// Record the authenticated user (cut to 32 bytes).
    pub fn set_user(&self, user: &str) {
        let stored = text::store(&self.user, user.as_bytes());
        self.user_len.store(stored as u32, Ordering::Release);
    }

    /// Remember that this connection holds host counter `entry`.
    pub fn hold_host(&self, which: HeldHost, entry: usize) {
        self.host_entries[which as usize].store(entry as u32 + 1, Ordering::Release);
    }

    /// Forget the host counter held as `which`, returning its entry.
    pub fn take_host(&self, which: HeldHost) -> Option<usize> {
        let v = self.host_entries[which as usize].swap(0, Ordering::AcqRel);
        (v != 0).then(|| v as usize - 1)
    }

    fn view(&self, index: usize) -> SlotView {
        let hi = self.addr[0].load(Ordering::Acquire).to_be_bytes();
        let lo = self.addr[1].load(Ordering::Acquire).to_be_bytes();
        let mut octets = [0u8; 16];
        octets[..8].copy_from_slice(&hi);
        octets[8..].copy_from_slice(&lo);
        let v6 = Ipv6Addr::from(octets);
        let ip = v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4);
        let user = text::load(&self.user, self.user_len.load(Ordering::Acquire) as usize);
        let module = self.module.load(Ordering::Acquire);
        SlotView {
            index,
            pid: self.pid.load(Ordering::Acquire),
            generation: self.generation.load(Ordering::Acquire),
            phase: Phase::from_u32(self.phase.load(Ordering::Acquire)),
            module: (module != 0).then(|| ModuleIndex((module - 1) as u16)),
            client: SocketAddr::new(ip, self.port.load(Ordering::Acquire) as u16),
            user: (!user.is_empty()).then(|| String::from_utf8_lossy(&user).into_owned()),
            started_ms: self.started_ms.load(Ordering::Acquire),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
            files: self.files.load(Ordering::Relaxed),
        }
    }
}

impl Scoreboard {
    /// Claim a free slot for a new connection of the worker in `row`
    /// (generation `generation`); `None` when every slot is taken.
    pub fn claim_slot(&self, row: usize, generation: u64, client: SocketAddr) -> Option<usize> {
        let owner = owner_of_row(row);
        let high = &self.header().slot_high_water;
        // From this process's lowest freed slot on, so an accept does not
        // look at every held slot below it (thousands, at W10k).
        let top = (high.load(Ordering::Acquire) as usize).min(SLOTS);
        let from = self.free_hint.load(Ordering::Relaxed).min(top);
        let mut index = None;
        for i in (from..top).chain(0..from) {
            let slot = self.slot(i);
            if slot.owner.load(Ordering::Relaxed) == 0 && slot.owner.compare_exchange(0, owner, Ordering::AcqRel, Ordering::Relaxed).is_ok()
            {
                index = Some(i);
                break;
            }
        }
        let index = match index {
            Some(i) => i,
            None => loop {
                let i = high.fetch_add(1, Ordering::AcqRel) as usize;
                if i >= SLOTS {
                    high.fetch_sub(1, Ordering::AcqRel);
                    return None;
                }
                if self
                    .slot(i)
                    .owner
                    .compare_exchange(0, owner, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    break i;
                }
            },
        };
        self.free_hint.store(index + 1, Ordering::Relaxed);
        let slot = self.slot(index);
        slot.phase.store(Phase::Handshake as u32, Ordering::Release);
        slot.module.store(0, Ordering::Release);
        slot.pid.store(std::process::id(), Ordering::Release);
        slot.generation.store(generation, Ordering::Release);
        slot.started_ms.store(now_ms(), Ordering::Release);
        slot.user_len.store(0, Ordering::Release);
        for e in &slot.host_entries {
            e.store(0, Ordering::Release);
        }
        slot.bytes_sent.store(0, Ordering::Release);
        slot.bytes_received.store(0, Ordering::Release);
        slot.files.store(0, Ordering::Release);
        slot.set_client(client);
        Some(index)
    }

    /// Give back every host count `slot` holds.
    pub(crate) fn release_slot_hosts(&self, slot: &Slot) {
        for which in [HeldHost::Connections, HeldHost::Handshakes, HeldHost::Module] {
            // Bounds-checked: the supervisor must not trust a worker's
            // writes enough to panic on them.
            if let Some(entry) = slot.take_host(which).filter(|&e| e < super::HOST_ENTRIES) {
                self.host_release(entry);
            }
        }
    }

    /// Free a slot the calling worker holds (and the host counts in it).
    pub fn release_slot(&self, index: usize) {
        let slot = self.slot(index);
        self.release_slot_hosts(slot);
        slot.owner.store(0, Ordering::Release);
        self.free_hint.fetch_min(index, Ordering::Relaxed);
    }

    /// Every held slot, as it is now.
    pub fn live_slots(&self) -> Vec<SlotView> {
        let high = (self.header().slot_high_water.load(Ordering::Acquire) as usize).min(SLOTS);
        (0..high)
            .filter(|&i| self.slot(i).owner.load(Ordering::Acquire) != 0)
            .map(|i| self.slot(i).view(i))
            .collect()
    }
}
