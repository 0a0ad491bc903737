//! The configuration file of `webscaler run` and `webscaler status` (TOML; `etc/webscaler.toml`
//! documents every key), read as one [`Layer`].
//!
//! Every key is optional; an unknown key, a wrong type or a bad value is an error that names
//! the file and the key, so a typo never silently falls back to a default.

use std::path::{Path, PathBuf};

use super::layer::Layer;

/// A configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// It could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// It is not valid (TOML syntax, an unknown key, a bad value).
    #[error("{path}: {message}")]
    Invalid {
        path: PathBuf,
        /// toml's message (line, column and key), on one line.
        message: String,
    },
}

/// Reads and checks a file.
pub fn load(path: &Path) -> Result<Layer, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text).map_err(|message| ConfigError::Invalid {
        path: path.to_path_buf(),
        message,
    })
}

/// Parses the text of a file; the error is one line.
pub fn parse(text: &str) -> Result<Layer, String> {
    let mut cfg: Layer = toml::from_str(text).map_err(|e| {
        e.to_string()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('|') && *l != "^")
            .collect::<Vec<_>>()
            .join(" ")
    })?;
    if let (Some(a), Some(b)) = (&cfg.state_dir, &cfg.cloud.state_dir)
        && a != b
    {
        return Err(format!(
            "state_dir ({}) and cloud.state_dir ({}) differ; give one",
            a.display(),
            b.display()
        ));
    }
    if cfg.cloud.state_dir.is_none() {
        cfg.cloud.state_dir.clone_from(&cfg.state_dir);
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::balancer::Metric;
    use crate::rate::Threshold;
    use crate::settings::cloud::Provider;
    use crate::settings::haproxy::HaproxyMode;

    #[test]
    fn every_key_of_the_shipped_file_parses() {
        // etc/webscaler.toml has every key commented out; uncommented, it must parse.
        let shipped = include_str!("../../../../etc/webscaler.toml");
        let uncommented: String = shipped
            .lines()
            .map(|l| {
                l.strip_prefix("# ")
                    .filter(|r| r.contains(" = "))
                    .unwrap_or(l)
            })
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        let cfg = parse(&uncommented).unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
        assert_eq!(cfg.interval, Some(Duration::from_secs(5)));
        assert_eq!(cfg.threshold, Some(Threshold::SEED));
        assert_eq!(cfg.min, Some(2));
        assert_eq!(cfg.warm_pool, Some(1));
        assert_eq!(cfg.metric, Some(Metric::Sessions));
        assert_eq!(
            cfg.haproxy.frontend,
            Some(vec!["127.0.0.1:8080".parse().unwrap()])
        );
        assert_eq!(cfg.haproxy.mode, Some(HaproxyMode::Auto));
        assert_eq!(cfg.cloud.provider, Some(Provider::Local));
        assert_eq!(cfg.cloud.prefix.as_deref(), Some("node-"));
        // Every key is documented: uncommented, nothing is left unset.
        let all = format!("{cfg:?}");
        // (The `--os-*` flags, last, are never in the file.)
        let all = all.split("openstack: Overrides").next().unwrap_or_default();
        assert!(
            !all.contains("None"),
            "a key missing from etc/webscaler.toml: {all}"
        );
        // And the file as shipped (all commented out) is empty.
        assert_eq!(parse(shipped).unwrap(), Layer::default());
    }

    #[test]
    fn durations_are_text_or_seconds() {
        let c =
            parse("interval = \"1m30s\"\nscale_down_window = 90\ndrain_timeout = 0.5\n").unwrap();
        assert_eq!(c.interval, Some(Duration::from_secs(90)));
        assert_eq!(c.scale_down_window, Some(Duration::from_secs(90)));
        assert_eq!(c.drain_timeout, Some(Duration::from_millis(500)));
    }

    #[test]
    fn errors_name_the_key_and_the_line() {
        let e = parse("interval = \"5 parsecs\"\n").unwrap_err();
        assert!(e.contains("interval") && e.contains("5 parsecs"), "{e}");
        let e = parse("thresold = 10\n").unwrap_err();
        assert!(e.contains("thresold") && e.contains("line 1"), "{e}");
        let e = parse("[haproxy]\nfrontend = \"localhost\"\n").unwrap_err();
        assert!(e.contains("frontend"), "{e}");
        let e = parse("threshold = -3\n").unwrap_err();
        assert!(e.contains("threshold"), "{e}");
        let e = parse("metric = \"bytes\"\n").unwrap_err();
        assert!(e.contains("bytes"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn the_state_dir_is_one_setting() {
        let c = parse("state_dir = \"/var/lib/webscaler\"\n").unwrap();
        assert_eq!(
            c.cloud.state_dir.as_deref(),
            Some(Path::new("/var/lib/webscaler"))
        );
        assert!(
            parse("state_dir = \"/a\"\n[cloud]\nstate_dir = \"/b\"\n")
                .unwrap_err()
                .contains("differ")
        );
    }
}
