//! The `@RSYNCD:` version greeting: what we send, how we parse the client's,
//! and the protocol both then speak.

/// The newest protocol we speak.
pub const PROTOCOL_VERSION: u32 = 32;
/// Our sub-protocol (0: a final release).
pub(crate) const SUBPROTOCOL_VERSION: u32 = 0;
/// The oldest protocol we speak.
pub const MIN_PROTOCOL_VERSION: u32 = 27;

/// What the client's greeting line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientGreeting {
    /// The client's protocol number.
    pub protocol: u32,
    /// Its sub-protocol, when given.
    pub sub: Option<u32>,
    /// The daemon-auth digest names the client offers, when given (protocol >= 32 must).
    pub digests: Option<String>,
}

/// Why a greeting is refused; `Display` is the text after `@ERROR: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GreetingError {
    #[error("protocol startup error")]
    NotAGreeting,
    #[error("your client omitted the subprotocol value: {0}")]
    MissingSubprotocol(String),
    #[error("your client omitted the digest name list: {0}")]
    MissingDigestList(String),
    #[error("protocol version {0} is not supported (this server speaks {MIN_PROTOCOL_VERSION} to {PROTOCOL_VERSION})")]
    Unsupported(u32),
}

/// Our greeting line, digest list included.
pub(crate) fn server_greeting(advertised_digests: &str) -> String {
    format!("@RSYNCD: {PROTOCOL_VERSION}.{SUBPROTOCOL_VERSION} {advertised_digests}\n")
}

/// Parse the client's greeting (newline already stripped).
pub fn parse_client_greeting(line: &str) -> Result<ClientGreeting, GreetingError> {
    let rest = line.strip_prefix("@RSYNCD: ").ok_or(GreetingError::NotAGreeting)?;
    let digits_end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    let protocol: u32 = rest[..digits_end].parse().map_err(|_| GreetingError::NotAGreeting)?;
    let after = &rest[digits_end..];
    let sub = after.strip_prefix('.').and_then(|s| {
        let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        s[..end].parse::<u32>().ok()
    });
    if sub.is_none() && protocol >= 30 {
        return Err(GreetingError::MissingSubprotocol(line.to_string()));
    }
    let digests = rest.split_once(' ').map(|(_, list)| list.trim_end().to_string());
    if digests.is_none() && protocol > 31 {
        return Err(GreetingError::MissingDigestList(line.to_string()));
    }
    Ok(ClientGreeting { protocol, sub, digests })
}

/// The protocol both sides speak, as upstream computes it from the two greetings.
pub fn negotiate_protocol(client: &ClientGreeting) -> Result<u32, GreetingError> {
    let remote_sub = client.sub.unwrap_or(0);
    // A client's pre-release sub-protocol steps one version down. The
    // numbers are the client's: a `0.1` must not wrap below zero into a
    // huge protocol that passes the minimum check.
    let step_down = |p: u32| p.checked_sub(1).ok_or(GreetingError::Unsupported(client.protocol));
    let mut ours = PROTOCOL_VERSION;
    if ours > client.protocol {
        ours = client.protocol;
        if remote_sub != 0 {
            ours = step_down(ours)?;
        }
    } else if ours == client.protocol && remote_sub != SUBPROTOCOL_VERSION {
        ours = step_down(ours)?;
    }
    if ours < MIN_PROTOCOL_VERSION {
        return Err(GreetingError::Unsupported(client.protocol));
    }
    Ok(ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_modern_and_old_greetings() {
        let g = parse_client_greeting("@RSYNCD: 32.0 sha512 sha256 sha1 md5 md4").unwrap();
        assert_eq!(
            (g.protocol, g.sub, g.digests.as_deref()),
            (32, Some(0), Some("sha512 sha256 sha1 md5 md4"))
        );
        assert_eq!(negotiate_protocol(&g).unwrap(), 32);
        let old = parse_client_greeting("@RSYNCD: 29").unwrap();
        assert_eq!((old.protocol, old.sub, old.digests.clone()), (29, None, None));
        assert_eq!(negotiate_protocol(&old).unwrap(), 29);
        assert_eq!(negotiate_protocol(&parse_client_greeting("@RSYNCD: 31.0").unwrap()).unwrap(), 31);
    }

    #[test]
    fn refuses_what_upstream_refuses() {
        assert_eq!(parse_client_greeting("HELLO"), Err(GreetingError::NotAGreeting));
        assert!(matches!(
            parse_client_greeting("@RSYNCD: 31"),
            Err(GreetingError::MissingSubprotocol(_))
        ));
        assert!(matches!(
            parse_client_greeting("@RSYNCD: 32.0"),
            Err(GreetingError::MissingDigestList(_))
        ));
        let ancient = parse_client_greeting("@RSYNCD: 26").unwrap();
        assert_eq!(negotiate_protocol(&ancient), Err(GreetingError::Unsupported(26)));
        // A pre-release of protocol 0 must not wrap around to 2^32 - 1.
        for line in ["@RSYNCD: 0.1", "@RSYNCD: 0", "@RSYNCD: 1.5", "@RSYNCD: 27.1"] {
            let g = parse_client_greeting(line).unwrap();
            assert!(matches!(negotiate_protocol(&g), Err(GreetingError::Unsupported(_))), "{line}");
        }
    }

    #[test]
    fn a_newer_client_or_odd_subprotocol_steps_down() {
        let newer = parse_client_greeting("@RSYNCD: 33.0 sha1").unwrap();
        assert_eq!(negotiate_protocol(&newer).unwrap(), 32);
        let pre = parse_client_greeting("@RSYNCD: 32.1 md5").unwrap();
        assert_eq!(negotiate_protocol(&pre).unwrap(), 31);
    }
}
