//! Validated names and addresses: the only values that go into a runtime-API command or the
//! generated backend file.
//!
//! A name must match `[A-Za-z0-9._-]+` and an address must parse as `IP:port`, so no `;`
//! (HAProxy's command separator), space, newline or other byte that could change a command
//! or a config line can ever get through. Everything that builds a command takes these types,
//! never a plain `&str`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// The longest name accepted. HAProxy has no hard limit; this keeps commands and logs sane.
pub const MAX_NAME_LEN: usize = 100;

/// A value that was refused before it could reach HAProxy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {reason}")]
pub struct InvalidValue {
    /// What the value was meant to be ("server name", "address").
    pub what: &'static str,
    /// The value as given (printed escaped, so a newline stays on one line).
    pub value: String,
    /// Why it was refused.
    pub reason: String,
}

fn check_name(what: &'static str, s: &str) -> Result<(), InvalidValue> {
    let bad = |reason: String| InvalidValue {
        what,
        value: s.to_owned(),
        reason,
    };
    if s.is_empty() {
        return Err(bad("it is empty".into()));
    }
    if s.len() > MAX_NAME_LEN {
        return Err(bad(format!("longer than {MAX_NAME_LEN} characters")));
    }
    if let Some(c) = s.chars().find(|c| !is_name_char(*c)) {
        return Err(bad(format!(
            "{c:?} is not allowed (only letters, digits, '.', '_' and '-')"
        )));
    }
    Ok(())
}

/// Whether `c` may appear in a server or backend name: `[A-Za-z0-9._-]`.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
        #[serde(transparent)]
        pub struct $ty(String);

        impl $ty {
            /// Validates `s` (`[A-Za-z0-9._-]+`, at most [`MAX_NAME_LEN`] characters).
            pub fn new(s: &str) -> Result<Self, InvalidValue> {
                check_name($what, s)?;
                Ok($ty(s.to_owned()))
            }

            /// The name.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $ty {
            type Err = InvalidValue;
            fn from_str(s: &str) -> Result<Self, InvalidValue> {
                $ty::new(s)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(
    /// A server name inside a backend (`node-1`).
    ServerName,
    "server name"
);
name_type!(
    /// A backend (proxy) name (`nodes`).
    BackendName,
    "backend name"
);

impl Default for BackendName {
    /// The lab report's backend, `nodes`.
    fn default() -> Self {
        BackendName("nodes".to_owned())
    }
}

/// A server address: an IP address and a port other than 0.
///
/// Parses `192.0.2.7:80` and `[2001:db8::7]:80`; prints the same forms, which HAProxy reads
/// both in `add server` and in a config file. Host names are refused: HAProxy would resolve
/// them once at start-up (or never, for a dynamic server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerAddr(SocketAddr);

impl ServerAddr {
    /// Validates `s` as `IP:port`.
    pub fn new(s: &str) -> Result<Self, InvalidValue> {
        let bad = |reason: &str| InvalidValue {
            what: "address",
            value: s.to_owned(),
            reason: reason.to_owned(),
        };
        let addr = SocketAddr::from_str(s).map_err(|_| {
            if IpAddr::from_str(s).is_ok() {
                bad("the port is missing (expected IP:PORT)")
            } else {
                bad("expected IP:PORT with a numeric IPv4 or [IPv6] address")
            }
        })?;
        ServerAddr::from_socket_addr(addr).map_err(|e| InvalidValue {
            value: s.to_owned(),
            ..e
        })
    }

    /// Checks a socket address (the port must not be 0).
    pub fn from_socket_addr(addr: SocketAddr) -> Result<Self, InvalidValue> {
        if addr.port() == 0 {
            return Err(InvalidValue {
                what: "address",
                value: addr.to_string(),
                reason: "port 0 is not a server port".into(),
            });
        }
        Ok(ServerAddr(addr))
    }

    /// The address.
    pub fn socket_addr(&self) -> SocketAddr {
        self.0
    }

    /// The IP address.
    pub fn ip(&self) -> IpAddr {
        self.0.ip()
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.0.port()
    }
}

impl FromStr for ServerAddr {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        ServerAddr::new(s)
    }
}

impl fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SocketAddr prints `1.2.3.4:80` and `[::1]:80`; HAProxy parses both.
        write!(f, "{}", self.0)
    }
}

impl serde::Serialize for ServerAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn good_names_pass() {
        for n in ["node-1", "a", "web_2.example", "A-Z.a-z_0-9", "-"] {
            assert_eq!(ServerName::new(n).unwrap().as_str(), n);
            assert_eq!(BackendName::new(n).unwrap().to_string(), n);
        }
        assert_eq!(BackendName::default().as_str(), "nodes");
    }

    #[test]
    fn injection_attempts_are_refused() {
        for n in [
            "",
            "node-1;shutdown sessions server nodes/node-2",
            "node-1\nset server nodes/node-2 state maint",
            "node-1\r",
            "node 1",
            "nodes/node-1",
            "node\0",
            "nöde",
            "node#1",
            "$(reboot)",
        ] {
            let e = ServerName::new(n).unwrap_err();
            assert_eq!(e.what, "server name");
            // The message stays on one line and shows the value escaped.
            assert!(!e.to_string().contains('\n'), "{e}");
            assert!(BackendName::new(n).is_err());
        }
        assert!(ServerName::new(&"x".repeat(MAX_NAME_LEN + 1)).is_err());
        assert!(ServerName::new(&"x".repeat(MAX_NAME_LEN)).is_ok());
    }

    #[test]
    fn addresses_must_be_ip_and_port() {
        assert_eq!(
            ServerAddr::new("127.0.0.1:8080").unwrap().to_string(),
            "127.0.0.1:8080"
        );
        assert_eq!(ServerAddr::new("[::1]:80").unwrap().to_string(), "[::1]:80");
        for a in [
            "127.0.0.1",
            "127.0.0.1:0",
            "localhost:80",
            "127.0.0.1:80;disable server nodes/x",
            "127.0.0.1:80\n",
            " 127.0.0.1:80",
            "127.0.0.1:80 check",
            "127.0.0.1:99999",
            "::1:80",
            "",
        ] {
            let e = ServerAddr::new(a).unwrap_err();
            assert_eq!(e.what, "address", "{a:?}");
        }
        assert!(
            ServerAddr::new("10.0.0.1")
                .unwrap_err()
                .reason
                .contains("port is missing")
        );
    }

    proptest! {
        #[test]
        fn a_name_is_accepted_iff_every_char_is_allowed(s in "\\PC{0,20}|[A-Za-z0-9._;\\n -]{0,20}") {
            let ok = !s.is_empty() && s.chars().all(is_name_char);
            prop_assert_eq!(ServerName::new(&s).is_ok(), ok);
        }

        #[test]
        fn accepted_values_never_hold_separators(s in "\\PC{0,30}") {
            if let Ok(n) = ServerName::new(&s) {
                prop_assert!(!n.as_str().contains([';', '\n', '\r', ' ', '/', '\0']));
            }
            if let Ok(a) = ServerAddr::new(&s) {
                let shown = a.to_string();
                prop_assert!(!shown.contains([';', '\n', '\r', ' ', '\0']));
                prop_assert_eq!(ServerAddr::new(&shown).unwrap(), a);
            }
        }

        #[test]
        fn every_ipv4_address_round_trips(ip in any::<[u8; 4]>(), port in 1u16..) {
            let s = format!("{}.{}.{}.{}:{port}", ip[0], ip[1], ip[2], ip[3]);
            prop_assert_eq!(ServerAddr::new(&s).unwrap().to_string(), s);
        }
    }
}
