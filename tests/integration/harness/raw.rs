//! A minimal daemon-protocol client for load and lifecycle tests: greeting,
//! module listing, or an idle connection parked at any step.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How a raw exchange ended, by failure class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Refused,
    Reset,
    Eof,
    Timeout,
    Other(String),
}

fn classify(e: io::Error) -> Failure {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => Failure::Refused,
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted | io::ErrorKind::BrokenPipe => Failure::Reset,
        io::ErrorKind::UnexpectedEof => Failure::Eof,
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Failure::Timeout,
        _ => Failure::Other(e.to_string()),
    }
}

/// A connection that has read the server greeting.
pub struct Greeted {
    pub reader: BufReader<TcpStream>,
}

impl Greeted {
    pub fn connect(addr: SocketAddr, timeout: Duration) -> Result<Greeted, Failure> {
        let stream = TcpStream::connect_timeout(&addr, timeout).map_err(classify)?;
        stream.set_read_timeout(Some(timeout)).map_err(classify)?;
        let mut reader = BufReader::new(stream);
        let greeting = read_line(&mut reader)?;
        if !greeting.starts_with("@RSYNCD: ") {
            return Err(Failure::Other(format!("unexpected greeting {greeting:?}")));
        }
        Ok(Greeted { reader })
    }

    /// Send our greeting and `#list`; return the module names listed.
    pub fn list(mut self) -> Result<Vec<String>, Failure> {
        self.reader
            .get_mut()
            .write_all(b"@RSYNCD: 32.0 sha512 sha256 sha1 md5 md4\n#list\n")
            .map_err(classify)?;
        let mut names = Vec::new();
        loop {
            let line = read_line(&mut self.reader)?;
            if line == "@RSYNCD: EXIT" {
                return Ok(names);
            }
            if let Some(name) = line.split('\t').next() {
                names.push(name.trim_end().to_string());
            }
        }
    }

    /// Send our greeting and a module name; return the server's next line.
    pub fn select(&mut self, module: &str) -> Result<String, Failure> {
        let msg = format!("@RSYNCD: 32.0 sha512 sha256 sha1 md5 md4\n{module}\n");
        self.reader.get_mut().write_all(msg.as_bytes()).map_err(classify)?;
        read_line(&mut self.reader)
    }

    /// Whether the server closes the connection (EOF or reset) within `wait`,
    /// reading and ignoring any last words it sends first.
    pub fn closed_within(&mut self, wait: Duration) -> bool {
        let _ = self.reader.get_mut().set_read_timeout(Some(wait));
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) => return !matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut),
            }
        }
    }

    /// Local port, to find the worker owning this connection.
    pub fn local_port(&self) -> u16 {
        self.reader.get_ref().local_addr().unwrap().port()
    }
}

fn read_line(reader: &mut BufReader<TcpStream>) -> Result<String, Failure> {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) => Err(Failure::Eof),
        Ok(_) => Ok(line.trim_end_matches(['\n', '\r']).to_string()),
        Err(e) => Err(classify(e)),
    }
}

/// One full listing exchange.
pub fn list_modules(addr: SocketAddr, timeout: Duration) -> Result<Vec<String>, Failure> {
    Greeted::connect(addr, timeout)?.list()
}
