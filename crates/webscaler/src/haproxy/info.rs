//! `show info`: `Key: value` lines about the HAProxy process that answered (in master-worker
//! mode, the worker).

use std::collections::BTreeMap;

/// A reply that could not be read as `show info` output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("show info: {0}")]
pub struct InfoParseError(pub String);

/// The parsed reply of `show info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// `Version` (`2.6.12-1+deb12u4`).
    pub version: String,
    /// `Pid`: the process that answered. It changes on every reload.
    pub pid: u32,
    /// `Uptime_sec`: whole seconds since that process started.
    pub uptime_sec: u64,
    /// `CurrConns`.
    pub curr_conns: Option<u64>,
    /// `CumConns`.
    pub cum_conns: Option<u64>,
    /// `CumReq`.
    pub cum_req: Option<u64>,
    /// `Stopping`: 1 while the process is an old worker finishing its connections.
    pub stopping: bool,
    /// Every key as sent (keys may hold spaces: `Unstoppable Jobs`).
    pub fields: BTreeMap<String, String>,
}

impl Info {
    /// Any key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }
}

/// Parses the reply of `show info`.
pub fn parse_show_info(reply: &str) -> Result<Info, InfoParseError> {
    let mut fields = BTreeMap::new();
    for line in reply.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
        let Some((k, v)) = line.split_once(':') else {
            return Err(InfoParseError(format!(
                "expected 'Key: value' lines, got {line:?}"
            )));
        };
        fields.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    let required = |k: &str| -> Result<&String, InfoParseError> {
        fields
            .get(k)
            .ok_or_else(|| InfoParseError(format!("no {k:?} line")))
    };
    let num = |k: &str| -> Result<Option<u64>, InfoParseError> {
        match fields.get(k) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| InfoParseError(format!("{k}: {v:?} is not a number"))),
        }
    };
    let pid = required("Pid")?;
    let pid = pid
        .parse()
        .map_err(|_| InfoParseError(format!("Pid: {pid:?} is not a number")))?;
    required("Uptime_sec")?;
    Ok(Info {
        version: required("Version")?.clone(),
        pid,
        uptime_sec: num("Uptime_sec")?.unwrap_or(0),
        curr_conns: num("CurrConns")?,
        cum_conns: num("CumConns")?,
        cum_req: num("CumReq")?,
        stopping: num("Stopping")?.unwrap_or(0) != 0,
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_real_2_6_sample() {
        let i = parse_show_info(include_str!(
            "../../tests/fixtures/haproxy-show-info-sample.txt"
        ))
        .unwrap();
        assert_eq!(i.version, "2.6.12-1+deb12u4");
        assert_eq!(i.pid, 2075);
        assert_eq!(i.uptime_sec, 28);
        assert_eq!(i.cum_req, Some(39));
        assert_eq!(i.cum_conns, Some(128));
        assert_eq!(i.curr_conns, Some(0));
        assert!(!i.stopping);
        assert_eq!(i.get("Unstoppable Jobs"), Some("1"));
        assert_eq!(i.get("Uptime"), Some("0d 0h00m28s"));
        assert_eq!(i.fields.len(), 69);
    }

    #[test]
    fn garbage_and_missing_keys_are_errors() {
        for (reply, want) in [
            ("Unknown command.\n", "expected 'Key: value'"),
            ("Version: 2.6\nUptime_sec: 3\n", "no \"Pid\""),
            ("Version: 2.6\nPid: x\nUptime_sec: 3\n", "Pid: \"x\""),
            ("Version: 2.6\nPid: 7\n", "no \"Uptime_sec\""),
            ("Version: 2.6\nPid: 7\nUptime_sec: -1\n", "Uptime_sec"),
        ] {
            let e = parse_show_info(reply).unwrap_err().to_string();
            assert!(e.contains(want), "{reply:?}: {e}");
        }
    }
}
