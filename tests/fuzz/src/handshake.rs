//! Targets of the connection's first bytes: the daemon text handshake as
//! the client side feeds it (greeting, module name, auth response,
//! arguments, through the blocking driver's own input reader), and the
//! PROXY protocol header a load balancer puts in front of it.

use std::io::BufReader;
use std::net::IpAddr;

use oxrsyncd_worker::fuzzing::handshake::{
    negotiate_protocol, parse_client_greeting, parse_proxy_header, proxy_trusted, read_input, read_proxy_header, AuthDigest, Handshake,
    Parsed, Progress, SessionRequest, Want, MAX_ARGS, MAX_LINE,
};

use crate::fixture::{self, USERS};
use crate::input::{no_deadline, Input, NoSocket};

/// Client addresses: allowed, denied by `hosts deny`, IPv6, IPv4-mapped.
const ADDRS: &[&str] = &["127.0.0.1", "10.1.2.3", "::1", "::ffff:10.0.0.9", "fd00::5", "192.0.2.7"];

/// Input: one byte picks the client address, the rest is what the client
/// sends. An auth response `USER AUTO` is replaced by the right answer to
/// the challenge, so inputs get past authentication into the arguments.
pub fn handshake(data: &[u8]) {
    let Ok(fx) = fixture::get() else { return };
    let mut input = Input::new(data);
    let addr: IpAddr = input.choose(ADDRS).parse().expect("a fixed address");
    let mut reader = BufReader::new(input.rest());
    let clock = no_deadline();
    let mut hs = Handshake::new(fx.config.clone(), addr);
    let mut progress = hs.begin();
    let greeting = hs.take_output();
    assert!(greeting.starts_with(b"@RSYNCD: 32.0 ") && greeting.ends_with(b"\n"), "{greeting:?}");
    let mut client_greeting: Option<Vec<u8>> = None;
    let mut challenge: Option<String> = None;
    loop {
        let want = match progress {
            Progress::Need(want) => want,
            Progress::Close => return,
            Progress::Session(request) => return check_session(&request),
        };
        let Ok(mut line) = read_input(&mut reader, want, &NoSocket, &clock) else {
            return;
        };
        match want {
            Want::Bytes(n) => assert_eq!(line.len(), n),
            Want::Line => assert!(line.len() <= MAX_LINE && !line.contains(&b'\n')),
            Want::Arg { nul_terminated } => assert!(!line.contains(&if nul_terminated { 0 } else { b'\n' })),
        }
        if let Some(challenge) = challenge.take() {
            line = auto_response(line, &challenge, client_greeting.as_deref());
        }
        client_greeting.get_or_insert_with(|| line.clone());
        progress = hs.feed(&line);
        let out = hs.take_output();
        if !out.is_empty() {
            assert!(out.ends_with(b"\n"), "output lines end in a newline: {out:?}");
        }
        if let Some(at) = find(&out, b"@RSYNCD: AUTHREQD ") {
            let rest = &out[at + 18..];
            let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            challenge = Some(String::from_utf8_lossy(&rest[..end]).into_owned());
        }
        if matches!(progress, Progress::Close) && want == Want::Line {
            assert!(
                find(&out, b"@ERROR: ").is_some() || find(&out, b"@RSYNCD: EXIT\n").is_some(),
                "a conversation closed after a line says why: {out:?}"
            );
        }
    }
}

/// What an admitted client must have been through.
fn check_session(request: &SessionRequest) {
    assert!((27..=32).contains(&request.protocol), "protocol {}", request.protocol);
    let module = request.module();
    assert!(module.settings.path.is_some(), "admitted to a module without a path");
    if !module.settings.auth_users.is_empty() {
        assert!(request.user.is_some(), "admitted to {} without auth", module.name);
    }
    if module.name == "pub" {
        assert!(request.read_only);
    }
    assert!(request.options.len() + request.paths.len() <= 2 * MAX_ARGS);
    let _ = request.paths_text();
    let _ = request.expand("%RSYNC_MODULE_NAME% %RSYNC_USER_NAME% %RSYNC_HOST_ADDR%");
    let refuse = module.settings.refuse_options.as_deref().unwrap_or("");
    crate::args::check_options(&request.options, refuse);
}

/// `USER AUTO` becomes `USER RESPONSE` for a user of the secrets file.
fn auto_response(line: Vec<u8>, challenge: &str, greeting: Option<&[u8]>) -> Vec<u8> {
    let Some(user) = line.strip_suffix(b" AUTO") else { return line };
    let Some((name, password)) = USERS.iter().find(|(u, _)| u.as_bytes() == user) else {
        return line;
    };
    let greeting = String::from_utf8_lossy(greeting.unwrap_or_default()).into_owned();
    let Ok(parsed) = parse_client_greeting(&greeting) else {
        return line;
    };
    let Ok(protocol) = negotiate_protocol(&parsed) else { return line };
    let Ok(digest) = AuthDigest::negotiate(parsed.digests.as_deref(), protocol) else {
        return line;
    };
    let response = digest.hash_b64(&[password.as_bytes(), challenge.as_bytes()]);
    format!("{name} {response}").into_bytes()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Upstream's bounds: a v1 line of at most 107 bytes, a v2 header of at
/// most 16 + 216.
const PROXY_MAX: usize = 16 + 216;

/// Input: the start of a connection, parsed as it grows (as the reader
/// does) and read by the blocking reader; both must agree.
pub fn proxy_header(data: &[u8]) {
    let mut end = 0;
    let parsed = loop {
        match parse_proxy_header(&data[..end]) {
            Parsed::NeedMore(n) => {
                assert!(n >= 1 && end + n <= PROXY_MAX, "asks for {n} more after {end}");
                if end + n > data.len() {
                    break None;
                }
                end += n;
            }
            done => break Some(done),
        }
    };
    let peer: IpAddr = "192.0.2.1".parse().expect("a fixed address");
    let read = read_proxy_header(&mut &data[..], peer);
    match parsed {
        None => assert!(read.is_err(), "a short header is an error"),
        Some(Parsed::Invalid) => assert!(matches!(read, Ok(None))),
        Some(Parsed::Header { len, source }) => {
            assert_eq!(len, end, "the header is what was read");
            assert!(len <= PROXY_MAX);
            assert_eq!(read.ok().flatten(), Some(source.unwrap_or(peer)));
            if let Some(source) = source {
                let _ = proxy_trusted(Some("10.0.0.0/8 127.0.0.1 fd00::/8"), source);
            }
        }
        Some(Parsed::NeedMore(_)) => {}
    }
}
