//! `show stat`: HAProxy's CSV statistics, mapped by header name into typed rows.
//!
//! The first line is the header, `# pxname,svname,...,` (128 columns in 2.6, more in 3.x;
//! one column is literally named `-`, and a trailing comma leaves an empty last name). Only
//! the columns before `-` keep a fixed order across versions, so every value is looked up by
//! name. Text fields that hold commas are quoted by HAProxy, so a real CSV reader is used.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

/// A reply that could not be read as `show stat` output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("show stat: {0}")]
pub struct StatParseError(pub String);

/// What a row describes (the `type` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RowKind {
    /// `type` 0.
    Frontend,
    /// `type` 1: the `BACKEND` row, a backend's totals.
    Backend,
    /// `type` 2: one server of a backend.
    Server,
    /// `type` 3: a listening socket (with `option socket-stats`).
    Listener,
}

/// The first word of the `status` column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// `UP` (also `UP 1/3` while going down, `UP (agent)`).
    Up,
    /// `DOWN` (also `DOWN 1/2` while coming up).
    Down,
    /// `NOLB`: up, but takes no new load-balanced traffic.
    NoLb,
    /// `MAINT` (also `MAINT (via b/s)`, `MAINT (resolution)`).
    Maint,
    /// `DRAIN`.
    Drain,
    /// `no check`: checks disabled; the server takes traffic.
    NoCheck,
    /// A frontend's `OPEN`.
    Open,
    /// A frontend's `FULL`.
    Full,
    /// A frontend's `STOP`.
    Stop,
    /// Anything else, as HAProxy wrote it.
    Other(String),
}

impl Status {
    /// Reads the `status` column.
    pub fn parse(s: &str) -> Status {
        let s = s.trim();
        if s == "no check" {
            return Status::NoCheck;
        }
        match s.split_whitespace().next().unwrap_or("") {
            "UP" => Status::Up,
            "DOWN" => Status::Down,
            "NOLB" => Status::NoLb,
            "MAINT" => Status::Maint,
            "DRAIN" => Status::Drain,
            "OPEN" => Status::Open,
            "FULL" => Status::Full,
            "STOP" => Status::Stop,
            _ => Status::Other(s.to_owned()),
        }
    }

    /// Whether a server in this state takes new load-balanced traffic.
    pub fn takes_traffic(&self) -> bool {
        matches!(self, Status::Up | Status::NoCheck)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Up => "UP",
            Status::Down => "DOWN",
            Status::NoLb => "NOLB",
            Status::Maint => "MAINT",
            Status::Drain => "DRAIN",
            Status::NoCheck => "no check",
            Status::Open => "OPEN",
            Status::Full => "FULL",
            Status::Stop => "STOP",
            Status::Other(s) => s,
        })
    }
}

/// Health-check results that mean "passed" (`L7OK` for an HTTP check; `L7OKC` is a
/// conditional pass, `L4OK`/`L6OK` are TCP/SSL checks, `PROCOK` an external check).
pub fn check_passed(check_status: &str) -> bool {
    matches!(check_status, "L7OK" | "L7OKC" | "L6OK" | "L4OK" | "PROCOK")
}

/// One row of `show stat`, with the columns the tools use typed and every column reachable
/// by name through [`StatRow::get`].
#[derive(Debug, Clone, PartialEq)]
pub struct StatRow {
    /// `pxname`: the proxy (frontend or backend) name.
    pub proxy: String,
    /// `svname`: `FRONTEND`, `BACKEND`, or the server name.
    pub name: String,
    /// `type`.
    pub kind: RowKind,
    /// `status`, typed.
    pub status: Status,
    /// `status` as HAProxy wrote it (`UP 1/3`).
    pub status_text: String,
    /// `scur`: current sessions.
    pub scur: Option<u64>,
    /// `smax`: most sessions at once.
    pub smax: Option<u64>,
    /// `stot`: cumulative sessions (on a backend or server in HTTP mode, one per request).
    pub stot: Option<u64>,
    /// `req_tot`: cumulative HTTP requests (frontends and backends).
    pub req_tot: Option<u64>,
    /// `rate`: sessions per second over the last second.
    pub rate: Option<u64>,
    /// `req_rate`: HTTP requests per second over the last second (frontends only).
    pub req_rate: Option<u64>,
    /// `lbtot`: times the server was picked by the load balancer.
    pub lbtot: Option<u64>,
    /// `weight` (on a backend: the sum of its usable servers' weights).
    pub weight: Option<u64>,
    /// `check_status` without the `* ` that marks a check in progress (`L7OK`, `L4CON`, ...).
    pub check_status: Option<String>,
    /// Whether a check was running when the stats were taken.
    pub check_in_progress: bool,
    /// `check_code`: the HTTP status of the last check.
    pub check_code: Option<u32>,
    /// `check_desc`: the last check's result in words.
    pub check_desc: Option<String>,
    /// `last_chk`: details of the last check.
    pub last_chk: Option<String>,
    /// `econ`: failed connections to the server.
    pub econ: Option<u64>,
    /// `eresp`: response errors.
    pub eresp: Option<u64>,
    /// `hrsp_5xx`: responses with a 5xx status.
    pub hrsp_5xx: Option<u64>,
    /// `addr`: the server's `IP:port`.
    pub addr: Option<String>,
    /// `iid`: the proxy's id.
    pub iid: Option<u64>,
    /// `sid`: the server's id.
    pub sid: Option<u64>,
    columns: Arc<HashMap<String, usize>>,
    values: Vec<String>,
}

impl StatRow {
    /// Any column by its header name; `None` if there is no such column, `Some("")` if it
    /// is empty in this row.
    pub fn get(&self, column: &str) -> Option<&str> {
        let i = *self.columns.get(column)?;
        Some(self.values.get(i).map(String::as_str).unwrap_or(""))
    }

    /// Any numeric column by name; `Ok(None)` when missing or empty.
    pub fn get_u64(&self, column: &str) -> Result<Option<u64>, StatParseError> {
        number(self.get(column), column, &self.proxy, &self.name)
    }

    /// Whether the last health check passed.
    pub fn check_passed(&self) -> bool {
        self.check_status.as_deref().is_some_and(check_passed)
    }
}

/// The parsed reply of `show stat`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatTable {
    /// Column names in the order HAProxy sent them (without the trailing empty one).
    pub columns: Vec<String>,
    /// The rows in HAProxy's order.
    pub rows: Vec<StatRow>,
}

impl StatTable {
    /// The `BACKEND` row of `backend`.
    pub fn backend(&self, backend: &str) -> Option<&StatRow> {
        self.rows
            .iter()
            .find(|r| r.kind == RowKind::Backend && r.proxy == backend)
    }

    /// The server rows of `backend`, in HAProxy's order.
    pub fn servers<'a>(&'a self, backend: &'a str) -> impl Iterator<Item = &'a StatRow> + 'a {
        self.rows
            .iter()
            .filter(move |r| r.kind == RowKind::Server && r.proxy == backend)
    }

    /// One server of `backend`.
    pub fn server(&self, backend: &str, server: &str) -> Option<&StatRow> {
        self.rows
            .iter()
            .find(|r| r.kind == RowKind::Server && r.proxy == backend && r.name == server)
    }
}

fn number(
    v: Option<&str>,
    column: &str,
    proxy: &str,
    name: &str,
) -> Result<Option<u64>, StatParseError> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| {
            StatParseError(format!(
                "row {proxy}/{name}: column {column}: {s:?} is not a number"
            ))
        }),
    }
}

/// Parses the reply of `show stat` (any filter, any HAProxy version that sends the `# `
/// header).
pub fn parse_show_stat(reply: &str) -> Result<StatTable, StatParseError> {
    let body = reply.trim_start_matches(['\n', '\r']);
    let Some(header_line_and_rest) = body.strip_prefix("# ") else {
        let first = body.lines().next().unwrap_or("").trim();
        return Err(StatParseError(if first.is_empty() {
            "empty reply".to_owned()
        } else {
            format!("expected a '# pxname,...' header, got {first:?}")
        }));
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(header_line_and_rest.as_bytes());
    let mut records = reader.records();
    let header = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => return Err(StatParseError(format!("bad header: {e}"))),
        None => return Err(StatParseError("empty header".to_owned())),
    };
    let columns: Vec<String> = header
        .iter()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    let index: HashMap<String, usize> = header
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.trim().is_empty())
        .map(|(i, c)| (c.trim().to_owned(), i))
        .collect();
    for required in ["pxname", "svname", "type"] {
        if !index.contains_key(required) {
            return Err(StatParseError(format!(
                "the header has no {required:?} column"
            )));
        }
    }
    let index = Arc::new(index);
    let mut rows = Vec::new();
    for (n, rec) in records.enumerate() {
        let rec = rec.map_err(|e| StatParseError(format!("line {}: {e}", n + 2)))?;
        if rec.len() == 1 && rec.get(0).is_some_and(|f| f.trim().is_empty()) {
            continue;
        }
        rows.push(parse_row(&index, rec.iter().map(str::to_owned).collect())?);
    }
    Ok(StatTable { columns, rows })
}

fn parse_row(
    columns: &Arc<HashMap<String, usize>>,
    values: Vec<String>,
) -> Result<StatRow, StatParseError> {
    let get = |c: &str| -> Option<&str> {
        columns
            .get(c)
            .map(|&i| values.get(i).map(String::as_str).unwrap_or(""))
    };
    let text = |c: &str| {
        get(c)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let proxy = get("pxname").unwrap_or("").to_owned();
    let name = get("svname").unwrap_or("").to_owned();
    if proxy.is_empty() || name.is_empty() {
        return Err(StatParseError(format!(
            "a row without pxname or svname: {:?}",
            values.iter().take(4).collect::<Vec<_>>()
        )));
    }
    let num = |c: &str| number(get(c), c, &proxy, &name);
    let kind = match num("type")? {
        Some(0) => RowKind::Frontend,
        Some(1) => RowKind::Backend,
        Some(2) => RowKind::Server,
        Some(3) => RowKind::Listener,
        other => {
            return Err(StatParseError(format!(
                "row {proxy}/{name}: unknown type {other:?}"
            )));
        }
    };
    let status_text = get("status").unwrap_or("").trim().to_owned();
    let raw_check = text("check_status");
    let check_in_progress = raw_check.as_deref().is_some_and(|c| c.starts_with("* "));
    let check_status = raw_check.map(|c| c.trim_start_matches("* ").to_owned());
    Ok(StatRow {
        kind,
        status: Status::parse(&status_text),
        status_text,
        scur: num("scur")?,
        smax: num("smax")?,
        stot: num("stot")?,
        req_tot: num("req_tot")?,
        rate: num("rate")?,
        req_rate: num("req_rate")?,
        lbtot: num("lbtot")?,
        weight: num("weight")?,
        check_status,
        check_in_progress,
        check_code: num("check_code")?.map(|c| c.min(u64::from(u32::MAX)) as u32),
        check_desc: text("check_desc"),
        last_chk: text("last_chk"),
        econ: num("econ")?,
        eresp: num("eresp")?,
        hrsp_5xx: num("hrsp_5xx")?,
        addr: text("addr"),
        iid: num("iid")?,
        sid: num("sid")?,
        proxy,
        name,
        columns: Arc::clone(columns),
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../../tests/fixtures/haproxy-show-stat-sample.csv");

    #[test]
    fn parses_the_real_2_6_sample_by_name() {
        let t = parse_show_stat(SAMPLE).unwrap();
        assert_eq!(t.columns.len(), 128);
        assert_eq!(t.columns[0], "pxname");
        assert!(t.columns.iter().any(|c| c == "-"));
        let fe = &t.rows[0];
        assert_eq!(
            (fe.proxy.as_str(), fe.name.as_str()),
            ("fe_http", "FRONTEND")
        );
        assert_eq!(fe.kind, RowKind::Frontend);
        assert_eq!(fe.status, Status::Open);
        assert_eq!(fe.stot, Some(30));
        assert_eq!(fe.req_tot, Some(30));
        assert_eq!(fe.get("mode"), Some("http"));
        let n1 = t.server("nodes", "node-1").unwrap();
        assert_eq!(n1.kind, RowKind::Server);
        assert_eq!(n1.status, Status::Up);
        assert_eq!(n1.stot, Some(10));
        assert_eq!(n1.scur, Some(0));
        assert_eq!(n1.check_status.as_deref(), Some("L7OK"));
        assert!(n1.check_passed());
        assert_eq!(n1.check_code, Some(200));
        assert_eq!(n1.check_desc.as_deref(), Some("Layer7 check passed"));
        assert_eq!(n1.addr.as_deref(), Some("127.0.0.1:18081"));
        assert_eq!(n1.get("-"), Some("-"));
        assert_eq!(n1.get_u64("bout").unwrap(), Some(2380));
        assert_eq!(n1.get("no-such-column"), None);
        let be = t.backend("nodes").unwrap();
        assert_eq!(be.kind, RowKind::Backend);
        assert_eq!(be.req_rate, None, "empty on backend rows");
        // Each row's stot is the same number that sits at its 2.6 index 7.
        for (row, line) in t.rows.iter().zip(SAMPLE.lines().skip(1)) {
            let raw: Vec<&str> = line.split(',').collect();
            assert_eq!(row.stot, raw[7].parse().ok(), "{}/{}", row.proxy, row.name);
            assert_eq!(row.req_tot, raw[48].parse().ok());
        }
        let servers: Vec<_> = t.servers("nodes").map(|r| r.name.as_str()).collect();
        assert!(servers.len() >= 2, "{servers:?}");
        assert!(servers.iter().all(|s| s.starts_with("node-")));
    }

    #[test]
    fn columns_are_found_by_name_whatever_their_order() {
        // A 3.x-like header: new columns, a different order after `-`, quoted text.
        let reply = "# svname,pxname,type,new_col,stot,status,check_status,check_desc,-,req_tot,\n\
                     node-9,nodes,2,x,42,DRAIN,* L7OK,\"a, quoted desc\",-,,\n\n";
        let t = parse_show_stat(reply).unwrap();
        let r = &t.rows[0];
        assert_eq!((r.proxy.as_str(), r.name.as_str()), ("nodes", "node-9"));
        assert_eq!(r.stot, Some(42));
        assert_eq!(r.status, Status::Drain);
        assert_eq!(r.check_status.as_deref(), Some("L7OK"));
        assert!(r.check_in_progress);
        assert_eq!(r.check_desc.as_deref(), Some("a, quoted desc"));
        assert_eq!(r.req_tot, None);
        assert_eq!(r.scur, None, "no such column");
    }

    #[test]
    fn statuses() {
        for (s, want) in [
            ("UP", Status::Up),
            ("UP 1/3", Status::Up),
            ("DOWN 1/2", Status::Down),
            ("MAINT (via nodes/x)", Status::Maint),
            ("DRAIN", Status::Drain),
            ("no check", Status::NoCheck),
            ("NOLB", Status::NoLb),
            ("OPEN", Status::Open),
        ] {
            assert_eq!(Status::parse(s), want, "{s}");
        }
        assert_eq!(Status::parse("WEIRD 9"), Status::Other("WEIRD 9".into()));
        assert!(Status::Up.takes_traffic() && !Status::Drain.takes_traffic());
    }

    #[test]
    fn garbage_is_an_error_that_says_what_was_wrong() {
        for (reply, want) in [
            ("", "empty reply"),
            ("No such proxy.\n\n", "No such proxy."),
            ("Unknown command\n", "Unknown command"),
            ("# a,b,c\n1,2,3\n", "no \"pxname\" column"),
            (
                "# pxname,svname,type,stot\nnodes,x,2,lots\n",
                "row nodes/x: column stot: \"lots\" is not a number",
            ),
            ("# pxname,svname,type\nnodes,x,7\n", "unknown type"),
        ] {
            let e = parse_show_stat(reply).unwrap_err().to_string();
            assert!(e.contains(want), "{reply:?}: {e}");
        }
    }

    #[test]
    fn the_header_alone_is_an_empty_table() {
        let t = parse_show_stat("# pxname,svname,type,\n\n").unwrap();
        assert!(t.rows.is_empty());
        assert_eq!(t.columns, ["pxname", "svname", "type"]);
    }
}
