//! Scraping the daemon's Prometheus `/metrics`, as a scraper does.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One `GET /metrics`: the body of a `200` in the Prometheus text format,
/// or the whole answer as the error.
pub fn scrape(addr: SocketAddr) -> io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    match text.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200") && head.contains("text/plain; version=0.0.4") => Ok(body.to_string()),
        _ => Err(io::Error::other(text)),
    }
}

/// Each sample line of a page as `name{labels}` -> value.
pub fn samples(body: &str) -> HashMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').expect("a sample line");
            (k.to_string(), v.parse().expect("a sample value"))
        })
        .collect()
}
