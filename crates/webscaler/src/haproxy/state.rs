//! `show servers state [backend]`: each server's address, operational and administrative
//! state, in the format of HAProxy's server-state file.
//!
//! The first line is the format version (`1`), then a `# be_id be_name ...` header, then one
//! space-separated row per server; columns are read by name.

use std::collections::HashMap;

use serde::Serialize;

/// A reply that could not be read as `show servers state` output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("show servers state: {0}")]
pub struct StateParseError(pub String);

/// `srv_op_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OpState {
    /// 0: down.
    Stopped,
    /// 1: coming up (slowstart).
    Starting,
    /// 2: up.
    Running,
    /// 3: going down (soft-stop).
    Stopping,
}

/// `srv_admin_state`: a bit field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AdminState(pub u32);

impl AdminState {
    /// Forced maintenance (`state maint`).
    pub const FMAINT: u32 = 0x01;
    /// Maintenance inherited from a tracked server.
    pub const IMAINT: u32 = 0x02;
    /// Maintenance from the configuration (`disabled`).
    pub const CMAINT: u32 = 0x04;
    /// Forced drain (`state drain`).
    pub const FDRAIN: u32 = 0x08;
    /// Drain inherited from a tracked server.
    pub const IDRAIN: u32 = 0x10;
    /// Maintenance because a DNS resolution failed.
    pub const RMAINT: u32 = 0x20;
    /// Maintenance because the address is not resolved yet.
    pub const HMAINT: u32 = 0x40;

    /// Whether the server is in maintenance for any reason.
    pub fn maint(self) -> bool {
        self.0 & (Self::FMAINT | Self::IMAINT | Self::CMAINT | Self::RMAINT | Self::HMAINT) != 0
    }

    /// Whether the server is draining (and not in maintenance).
    pub fn drain(self) -> bool {
        !self.maint() && self.0 & (Self::FDRAIN | Self::IDRAIN) != 0
    }

    /// Whether it is ready (neither maintenance nor drain).
    pub fn ready(self) -> bool {
        !self.maint() && !self.drain()
    }
}

/// One server of `show servers state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerState {
    /// `be_id`.
    pub backend_id: u32,
    /// `be_name`.
    pub backend: String,
    /// `srv_id`.
    pub id: u32,
    /// `srv_name`.
    pub name: String,
    /// `srv_addr`: the IP address (no port).
    pub addr: String,
    /// `srv_port`.
    pub port: u16,
    /// `srv_op_state`.
    pub op_state: OpState,
    /// `srv_admin_state`.
    pub admin_state: AdminState,
    /// `srv_uweight`: the weight set by the user.
    pub weight: u32,
    /// `srv_check_state`: bit 2 (4) set when checks are enabled.
    pub check_state: u32,
}

impl ServerState {
    /// `IP:port` as HAProxy takes it (`[v6]:port` for IPv6).
    pub fn socket_addr(&self) -> String {
        if self.addr.contains(':') {
            format!("[{}]:{}", self.addr, self.port)
        } else {
            format!("{}:{}", self.addr, self.port)
        }
    }

    /// Whether health checks are enabled (`enable health` was done, or `check` in the file).
    pub fn checks_enabled(&self) -> bool {
        self.check_state & 0x04 != 0
    }
}

/// Parses the reply of `show servers state`.
pub fn parse_servers_state(reply: &str) -> Result<Vec<ServerState>, StateParseError> {
    let mut lines = reply.lines().map(str::trim).filter(|l| !l.is_empty());
    match lines.next() {
        Some("1") => {}
        Some(other) => {
            return Err(StateParseError(format!(
                "expected format version 1, got {other:?}"
            )));
        }
        None => return Err(StateParseError("empty reply".into())),
    }
    let header = lines
        .next()
        .and_then(|l| l.strip_prefix('#'))
        .ok_or_else(|| StateParseError("no '# be_id ...' header".into()))?;
    let index: HashMap<&str, usize> = header
        .split_whitespace()
        .enumerate()
        .map(|(i, c)| (c, i))
        .collect();
    let mut out = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split_whitespace().collect();
        let get = |c: &str| -> Result<&str, StateParseError> {
            let i = index
                .get(c)
                .ok_or_else(|| StateParseError(format!("the header has no {c:?} column")))?;
            f.get(*i)
                .copied()
                .ok_or_else(|| StateParseError(format!("row {line:?}: no {c} field")))
        };
        let num = |c: &str| -> Result<u32, StateParseError> {
            let v = get(c)?;
            v.parse()
                .map_err(|_| StateParseError(format!("row {line:?}: {c} {v:?} is not a number")))
        };
        let op_state = match num("srv_op_state")? {
            0 => OpState::Stopped,
            1 => OpState::Starting,
            2 => OpState::Running,
            3 => OpState::Stopping,
            n => {
                return Err(StateParseError(format!(
                    "row {line:?}: unknown srv_op_state {n}"
                )));
            }
        };
        let port = num("srv_port")?;
        out.push(ServerState {
            backend_id: num("be_id")?,
            backend: get("be_name")?.to_owned(),
            id: num("srv_id")?,
            name: get("srv_name")?.to_owned(),
            addr: get("srv_addr")?.to_owned(),
            port: u16::try_from(port)
                .map_err(|_| StateParseError(format!("row {line:?}: port {port}")))?,
            op_state,
            admin_state: AdminState(num("srv_admin_state")?),
            weight: num("srv_uweight")?,
            check_state: num("srv_check_state")?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_real_2_6_sample() {
        let s = parse_servers_state(include_str!(
            "../../tests/fixtures/haproxy-show-servers-state-sample.txt"
        ))
        .unwrap();
        let names: Vec<_> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["node-1", "node-2", "node-3", "node-4", "node-9"]);
        let n1 = &s[0];
        assert_eq!((n1.backend_id, n1.backend.as_str(), n1.id), (4, "nodes", 1));
        assert_eq!(n1.socket_addr(), "127.0.0.1:18081");
        assert_eq!(n1.op_state, OpState::Running);
        assert!(n1.admin_state.ready());
        assert!(n1.checks_enabled());
        assert!(s[1].admin_state.drain(), "node-2 drains");
        assert!(s[3].admin_state.maint(), "node-4 is in maint");
        assert_eq!(s[3].op_state, OpState::Stopped);
        assert_eq!(s[4].port, 18089);
    }

    #[test]
    fn ipv6_addresses_get_brackets() {
        let reply = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_port srv_check_state\n\
                     3 nodes 2 v6 ::1 0 1 1 1 8080 2\n\n";
        let s = parse_servers_state(reply).unwrap();
        assert_eq!(s[0].socket_addr(), "[::1]:8080");
        assert!(!s[0].checks_enabled());
    }

    #[test]
    fn errors_say_what_was_wrong() {
        for (reply, want) in [
            ("", "empty reply"),
            ("Can't find backend.\n", "expected format version 1"),
            ("1\n", "no '# be_id"),
            (
                "1\n# be_id be_name\n1 nodes\n",
                "no \"srv_op_state\" column",
            ),
            (
                "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_port srv_check_state\n1 nodes x n 1.2.3.4 2 0 1 80 6\n",
                "srv_id \"x\"",
            ),
        ] {
            let e = parse_servers_state(reply).unwrap_err().to_string();
            assert!(e.contains(want), "{reply:?}: {e}");
        }
    }
}
