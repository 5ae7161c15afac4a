//! Shared pieces of the integration suite: starting the real `oxrsyncd`
//! binary and stock `rsync --daemon`, the differential pull and push
//! setups, running the stock client, building and comparing test trees, a
//! raw protocol client for load loops, and /proc helpers.

pub mod client;
pub mod daemon;
pub mod hostile;
pub mod metrics;
pub mod pair;
pub mod procfs;
pub mod push_pair;
pub mod raw;
pub mod stock;
pub mod tree;

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Wait until something accepts on `addr`.
pub fn wait_for_port(addr: SocketAddr, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A port that was free a moment ago (for daemons that must bind themselves).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Poll `check` until it holds or `within` passes.
pub fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}
