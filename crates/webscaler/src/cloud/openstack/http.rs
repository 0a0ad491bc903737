//! The HTTP transport (ureq 3, rustls): TLS settings, timeouts, and one request → one
//! [`Reply`], whatever the status code. Retries, authentication and error mapping live in
//! [`super::auth::Session`].

use std::fs;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use ureq::http;
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use super::config::TlsOptions;
use crate::cloud::CloudError;

/// An HTTP reply of any status.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("bad JSON in reply: {e}"))
    }

    /// The body, lossily, cut to a readable length (for error messages).
    pub fn text(&self) -> String {
        let s = String::from_utf8_lossy(&self.body);
        let s = s.trim();
        if s.chars().count() > 300 {
            format!("{}...", s.chars().take(300).collect::<String>())
        } else {
            s.to_owned()
        }
    }
}

/// Failures below HTTP: worth a retry if `transient`.
#[derive(Debug, Clone)]
pub(crate) struct TransportError {
    pub message: String,
    pub transient: bool,
}

/// A blocking HTTP client with connection pooling.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    agent: ureq::Agent,
}

fn read_pem(path: &std::path::Path, what: &str) -> Result<Vec<u8>, CloudError> {
    fs::read(path).map_err(|e| CloudError::io(format!("cannot read {what} {}", path.display()), e))
}

impl Transport {
    /// A client with these TLS settings; `timeout` bounds each whole request.
    pub fn new(tls: &TlsOptions, timeout: Duration) -> Result<Transport, CloudError> {
        let mut b = TlsConfig::builder().disable_verification(tls.insecure);
        if let Some(ca) = &tls.cacert {
            let pem = read_pem(ca, "CA bundle")?;
            let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
                .filter_map(|i| match i {
                    Ok(PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err(CloudError::config(format!(
                    "cacert {}: no PEM certificate in it",
                    ca.display()
                )));
            }
            b = b.root_certs(RootCerts::new_with_certs(&certs));
        }
        match (&tls.cert, &tls.key) {
            (Some(cert), key) => {
                let pem = read_pem(cert, "client certificate")?;
                let chain: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
                    .filter_map(|i| match i {
                        Ok(PemItem::Certificate(c)) => Some(c),
                        _ => None,
                    })
                    .collect();
                let key_pem = match key {
                    Some(k) => read_pem(k, "client key")?,
                    None => pem.clone(),
                };
                let key = PrivateKey::from_pem(&key_pem).map_err(|e| {
                    CloudError::config(format!("client key for {}: {e}", cert.display()))
                })?;
                if chain.is_empty() {
                    return Err(CloudError::config(format!(
                        "cert {}: no PEM certificate in it",
                        cert.display()
                    )));
                }
                b = b.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
            }
            (None, Some(k)) => {
                return Err(CloudError::config(format!(
                    "key {} given without cert",
                    k.display()
                )));
            }
            (None, None) => {}
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout.min(Duration::from_secs(10))))
            .user_agent(concat!("webscaler/", env!("CARGO_PKG_VERSION")))
            .tls_config(b.build())
            .build();
        Ok(Transport {
            agent: ureq::Agent::new_with_config(config),
        })
    }

    /// Sends one request. A JSON body is sent with `Content-Type: application/json`.
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Reply, TransportError> {
        let fail = |message: String, transient: bool| TransportError { message, transient };
        let mut req = http::Request::builder()
            .method(method)
            .uri(url)
            .header("Accept", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let result = match body {
            Some(b) => {
                let bytes = serde_json::to_vec(b).map_err(|e| fail(e.to_string(), false))?;
                let r = req
                    .header("Content-Type", "application/json")
                    .body(bytes)
                    .map_err(|e| fail(format!("bad request {method} {url}: {e}"), false))?;
                self.agent.run(r)
            }
            None => {
                let r = req
                    .body(ureq::SendBody::none())
                    .map_err(|e| fail(format!("bad request {method} {url}: {e}"), false))?;
                self.agent.run(r)
            }
        };
        let mut resp = result.map_err(|e| {
            // TLS failures (an unknown CA, a bad certificate) come as InvalidData I/O
            // errors: retrying cannot help.
            let tls = matches!(&e, ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData)
                || matches!(e, ureq::Error::Tls(_));
            let transient = !tls
                && matches!(
                    e,
                    ureq::Error::Timeout(_)
                        | ureq::Error::Io(_)
                        | ureq::Error::ConnectionFailed
                        | ureq::Error::HostNotFound
                        | ureq::Error::Protocol(_)
                );
            let hint = if e.to_string().contains("certificate") {
                " (give the cloud's CA bundle with cacert / --os-cacert, or --insecure)"
            } else {
                ""
            };
            fail(format!("{method} {url}: {e}{hint}"), transient)
        })?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()
            .map_err(|e| fail(format!("{method} {url}: reading the reply: {e}"), true))?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay as they are).
pub(crate) fn encode_query(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The query string of a link (`http://x/servers/detail?limit=1&marker=abc` → `limit=1&marker=abc`).
pub(crate) fn query_of(href: &str) -> Option<&str> {
    href.split_once('?')
        .map(|(_, q)| q)
        .filter(|q| !q.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_encoded() {
        assert_eq!(encode_query("^node-"), "%5Enode-");
        assert_eq!(encode_query("a b/c"), "a%20b%2Fc");
        assert_eq!(encode_query("ubuntu-24.04_x~"), "ubuntu-24.04_x~");
        assert_eq!(
            query_of("http://h/x?limit=1&marker=m"),
            Some("limit=1&marker=m")
        );
        assert_eq!(query_of("http://h/x"), None);
    }
}
