//! Staged load profiles: several httperf runs, each starting at its own offset, that run at the
//! same time and so add up to a load that rises and falls (the lab report's load generator, its
//! listing 1.2).
//!
//! `lbbench profile` plays a profile with httperf; `webscaler simulate --profile` turns the same
//! file into a request-rate trace. The format is TOML:
//!
//! ```toml
//! name = "seed"          # optional
//! server = "127.0.0.1"   # optional defaults for every stage
//! port = 8080
//! uri = "/"
//!
//! [[stage]]
//! start = 0              # seconds after the profile starts
//! rate = 1               # new connections per second (httperf --rate)
//! num_conns = 1200       # connections in total (httperf --num-conns)
//!
//! [[stage]]
//! start = 120
//! rate = 10
//! num_conns = 4800
//! server = "10.0.0.5"    # optional per-stage overrides of server, port and uri
//! ```
//!
//! A stage lasts `num_conns / rate` seconds: httperf opens one connection every `1/rate` s.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A staged load profile.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// A name for reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Default host for every stage (httperf --server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Default port for every stage (httperf --port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Default URI for every stage (httperf --uri).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// The stages, in the order they are written (`[[stage]]` tables).
    #[serde(rename = "stage", default)]
    pub stages: Vec<Stage>,
}

/// One httperf run of a profile.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Seconds after the start of the profile at which this stage starts.
    pub start: f64,
    /// New connections per second (httperf --rate).
    pub rate: f64,
    /// Connections in total (httperf --num-conns).
    pub num_conns: u64,
    /// Host, overriding the profile's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Port, overriding the profile's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// URI, overriding the profile's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}

impl Stage {
    /// How long the stage runs, in seconds: `num_conns / rate`.
    pub fn duration_secs(&self) -> f64 {
        self.num_conns as f64 / self.rate
    }

    /// When the stage ends, in seconds after the start of the profile.
    pub fn end_secs(&self) -> f64 {
        self.start + self.duration_secs()
    }
}

/// A profile that could not be read or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not valid TOML or does not have the profile's fields.
    #[error("{origin}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Parse {
        /// Where the text came from (a path, or a name given by the caller).
        origin: String,
        /// The line of the error, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// The profile parses but cannot be played.
    #[error("{origin}: {message}")]
    Invalid {
        /// Where the text came from.
        origin: String,
        /// What is wrong, naming the stage.
        message: String,
    },
}

impl Profile {
    /// Reads and checks a profile file.
    pub fn load(path: impl AsRef<Path>) -> Result<Profile, ProfileError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Profile::parse(&text, &path.display().to_string())
    }

    /// Parses and checks a profile; `origin` names the text in errors (usually its path).
    pub fn parse(text: &str, origin: &str) -> Result<Profile, ProfileError> {
        let profile: Profile = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            ProfileError::Parse {
                origin: origin.to_string(),
                line,
                message: e.message().trim().replace('\n', " "),
            }
        })?;
        profile.validate(origin)?;
        Ok(profile)
    }

    fn validate(&self, origin: &str) -> Result<(), ProfileError> {
        let invalid = |message: String| ProfileError::Invalid {
            origin: origin.to_string(),
            message,
        };
        if self.stages.is_empty() {
            return Err(invalid(
                "no stages (add at least one [[stage]] table)".into(),
            ));
        }
        for (i, s) in self.stages.iter().enumerate() {
            let n = i + 1;
            if let Err(e) = crate::time::seconds(&format!("stage {n}: start"), s.start) {
                return Err(invalid(e));
            }
            if !(s.rate.is_finite() && s.rate > 0.0) {
                return Err(invalid(format!(
                    "stage {n}: rate must be a number > 0, not {}",
                    s.rate
                )));
            }
            if s.num_conns == 0 {
                return Err(invalid(format!("stage {n}: num_conns must be at least 1")));
            }
        }
        Ok(())
    }

    /// When the last stage ends, in seconds after the start.
    pub fn duration_secs(&self) -> f64 {
        self.stages.iter().map(Stage::end_secs).fold(0.0, f64::max)
    }

    /// The host of a stage: its own, else the profile's, else `None` (the caller's default).
    pub fn server_of<'a>(&'a self, stage: &'a Stage) -> Option<&'a str> {
        stage.server.as_deref().or(self.server.as_deref())
    }

    /// The port of a stage: its own, else the profile's.
    pub fn port_of(&self, stage: &Stage) -> Option<u16> {
        stage.port.or(self.port)
    }

    /// The URI of a stage: its own, else the profile's.
    pub fn uri_of<'a>(&'a self, stage: &'a Stage) -> Option<&'a str> {
        stage.uri.as_deref().or(self.uri.as_deref())
    }

    /// The profile as TOML text (what [`Profile::parse`] reads back).
    pub fn to_toml(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        toml::to_string(self).unwrap_or_default()
    }
}

impl fmt::Display for Profile {
    /// One line per stage: `start +120s  rate 10/s  4800 conns  (480s)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.stages.iter().enumerate() {
            writeln!(
                f,
                "stage {}: start +{}s  rate {}/s  {} conns  ({}s)",
                i + 1,
                s.start,
                s.rate,
                s.num_conns,
                s.duration_secs()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = r#"
name = "seed"
[[stage]]
start = 0
rate = 1
num_conns = 1200
[[stage]]
start = 120
rate = 10
num_conns = 4800
server = "10.0.0.5"
port = 8080
uri = "/perf.php"
"#;

    #[test]
    fn parses_stages_with_defaults_and_overrides() {
        let p = Profile::parse(SEED, "seed.toml").unwrap();
        assert_eq!(p.name.as_deref(), Some("seed"));
        assert_eq!(p.stages.len(), 2);
        assert_eq!(p.stages[0].start, 0.0);
        assert_eq!(p.stages[0].rate, 1.0);
        assert_eq!(p.stages[0].num_conns, 1200);
        assert_eq!(p.stages[0].duration_secs(), 1200.0);
        assert_eq!(p.stages[1].end_secs(), 600.0);
        assert_eq!(p.duration_secs(), 1200.0);
        assert_eq!(p.server_of(&p.stages[0]), None);
        assert_eq!(p.server_of(&p.stages[1]), Some("10.0.0.5"));
        assert_eq!(p.port_of(&p.stages[1]), Some(8080));
        assert_eq!(p.uri_of(&p.stages[1]), Some("/perf.php"));
    }

    #[test]
    fn profile_defaults_apply_to_stages_without_their_own() {
        let p = Profile::parse(
            "server = \"h\"\nport = 81\nuri = \"/x\"\n[[stage]]\nstart = 1.5\nrate = 0.5\nnum_conns = 3\n",
            "t",
        )
        .unwrap();
        let s = &p.stages[0];
        assert_eq!(
            (p.server_of(s), p.port_of(s), p.uri_of(s)),
            (Some("h"), Some(81), Some("/x"))
        );
        assert_eq!(s.duration_secs(), 6.0);
        assert_eq!(s.end_secs(), 7.5);
    }

    #[test]
    fn round_trips_through_toml() {
        let p = Profile::parse(SEED, "seed.toml").unwrap();
        let again = Profile::parse(&p.to_toml(), "again").unwrap();
        assert_eq!(p, again);
    }

    #[test]
    fn an_absurd_start_is_refused() {
        let e = Profile::parse(
            "[[stage]]\nstart = 1e300\nrate = 1\nnum_conns = 5\n",
            "p.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("stage 1: start must be at most"), "{e}");
    }

    #[test]
    fn errors_name_the_origin_the_line_and_the_stage() {
        let e = Profile::parse("[[stage]]\nstart = 0\nrate = 1\nnum_conn = 5\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("p.toml:"), "{e}");
        assert!(e.contains("num_conn"), "{e}");
        assert!(!e.contains('\n'), "{e}");

        let e = Profile::parse(
            "[[stage]]\nstart = 0\nrate = \"fast\"\nnum_conns = 5\n",
            "p.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("p.toml:3:"), "{e}");

        let e = Profile::parse(
            "[[stage]]\nstart = 0\nrate = 1\nnum_conns = 5\n[[stage]]\nstart = 3\nrate = 0\nnum_conns = 5\n",
            "p.toml",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "p.toml: stage 2: rate must be a number > 0, not 0");

        let e = Profile::parse("[[stage]]\nstart = -1\nrate = 1\nnum_conns = 5\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("stage 1: start"), "{e}");

        let e = Profile::parse("[[stage]]\nstart = 0\nrate = 1\nnum_conns = 0\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("stage 1: num_conns"), "{e}");

        let e = Profile::parse("name = \"x\"\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no stages"), "{e}");
    }

    #[test]
    fn load_names_a_missing_file() {
        let e = Profile::load("/nonexistent/profile.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/nonexistent/profile.toml: "), "{e}");
    }
}
