//! TLS termination in the lab: a certificate authority made for the lab, a certificate for
//! 127.0.0.1 signed by it that every balancer serves, and an HTTPS GET that trusts only that
//! authority (the readiness check of a balancer that terminates TLS).
//!
//! The files live in the lab's directory, `tls/` (mode 0700), each mode 0600:
//!
//! - `lab-ca.pem`: the authority's certificate, for clients (`curl --cacert`);
//! - `balancer.pem`: the balancer's certificate followed by its private key, the one file
//!   HAProxy (`crt`), Pound (`Cert`) and nginx (`ssl_certificate`, `ssl_certificate_key`)
//!   all read.
//!
//! Keys are ECDSA P-256 (what most certificates issued today use); the authority's own key
//! is never written anywhere, so nothing else can ever be signed by it. A lab resumed later
//! serves the same certificate.

use std::fs;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, Utc};
use common::net::HttpReply;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::LabError;

/// The directory of the lab's TLS files, inside the lab's directory.
pub const TLS_DIR: &str = "tls";
/// The authority's certificate.
pub const CA_FILE: &str = "lab-ca.pem";
/// The balancer's certificate and key.
pub const SERVER_FILE: &str = "balancer.pem";
/// The names the balancer's certificate is valid for.
pub const SERVER_NAMES: [&str; 2] = ["127.0.0.1", "localhost"];
/// The names (and addresses) the certificate was made for, one per line, when they are more
/// than [`SERVER_NAMES`].
pub const NAMES_FILE: &str = "names";

/// The lab's TLS material: where the files are, and the authority's certificate.
#[derive(Debug, Clone)]
pub struct LabTls {
    ca_path: PathBuf,
    pem_path: PathBuf,
    ca: CertificateDer<'static>,
}

impl LabTls {
    /// The TLS files in `dir/tls/`, made there first if they are missing or unreadable. The
    /// paths are absolute: a balancer reads them relative to its own idea of a base
    /// directory otherwise (Pound takes a relative `Cert` from `/etc`).
    pub fn in_dir(dir: &Path) -> Result<LabTls, LabError> {
        LabTls::in_dir_for(dir, &[])
    }

    /// The TLS files in `dir/tls/` with a certificate valid for [`SERVER_NAMES`] and
    /// `addresses` too (a balancer on another host, in a lab across hosts): made there
    /// first if they are missing, unreadable, or made for other addresses (listed in
    /// [`NAMES_FILE`]).
    pub fn in_dir_for(dir: &Path, addresses: &[IpAddr]) -> Result<LabTls, LabError> {
        let tls_dir = std::path::absolute(dir)
            .map_err(LabError::io(format!("cannot resolve {}", dir.display())))?
            .join(TLS_DIR);
        let ca_path = tls_dir.join(CA_FILE);
        let pem_path = tls_dir.join(SERVER_FILE);
        let names_path = tls_dir.join(NAMES_FILE);
        let mut names: Vec<String> = SERVER_NAMES.map(String::from).to_vec();
        names.extend(addresses.iter().map(ToString::to_string));
        let made_for: Vec<String> = fs::read_to_string(&names_path)
            .map(|t| t.lines().map(str::to_owned).collect())
            .unwrap_or_else(|_| SERVER_NAMES.map(String::from).to_vec());
        if names.iter().all(|n| made_for.contains(n))
            && let Ok(tls) = LabTls::load(&ca_path, &pem_path)
        {
            return Ok(tls);
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&tls_dir)
            .map_err(LabError::io(format!("cannot create {}", tls_dir.display())))?;
        let (ca_pem, server_pem) = generate(&names).map_err(|e| LabError::Io {
            what: "cannot make the lab's TLS certificates".into(),
            source: io::Error::other(e.to_string()),
        })?;
        let names_text = names.join("\n") + "\n";
        for (path, text) in [
            (&pem_path, &server_pem),
            (&ca_path, &ca_pem),
            (&names_path, &names_text),
        ] {
            common::atomic::write_with_mode(path, text.as_bytes(), 0o600)
                .map_err(LabError::io(format!("cannot write {}", path.display())))?;
        }
        LabTls::load(&ca_path, &pem_path)
    }

    /// The authority's certificate and the balancer's certificate and key, as PEM texts (to
    /// hand them to a balancer on another host).
    pub fn pems(&self) -> Result<(String, String), LabError> {
        let read = |p: &Path| {
            fs::read_to_string(p).map_err(LabError::io(format!("cannot read {}", p.display())))
        };
        Ok((read(&self.ca_path)?, read(&self.pem_path)?))
    }

    /// Writes PEM texts made by [`LabTls::pems`] into `dir/tls/` (mode 0600) and uses them:
    /// how a host of a lab across hosts gets the lab's certificate.
    pub fn install(dir: &Path, ca_pem: &str, server_pem: &str) -> Result<LabTls, LabError> {
        let tls_dir = dir.join(TLS_DIR);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&tls_dir)
            .map_err(LabError::io(format!("cannot create {}", tls_dir.display())))?;
        let (ca_path, pem_path) = (tls_dir.join(CA_FILE), tls_dir.join(SERVER_FILE));
        for (path, text) in [(&pem_path, server_pem), (&ca_path, ca_pem)] {
            common::atomic::write_with_mode(path, text.as_bytes(), 0o600)
                .map_err(LabError::io(format!("cannot write {}", path.display())))?;
        }
        LabTls::load(&ca_path, &pem_path)
    }

    fn load(ca_path: &Path, pem_path: &Path) -> Result<LabTls, LabError> {
        let bad = |path: &Path, what: &str| LabError::Io {
            what: format!("cannot read {}", path.display()),
            source: io::Error::new(io::ErrorKind::InvalidData, what.to_owned()),
        };
        let ca = CertificateDer::from_pem_file(ca_path)
            .map_err(|_| bad(ca_path, "no PEM certificate"))?;
        CertificateDer::from_pem_file(pem_path).map_err(|_| bad(pem_path, "no PEM certificate"))?;
        PrivateKeyDer::from_pem_file(pem_path).map_err(|_| bad(pem_path, "no PEM private key"))?;
        Ok(LabTls {
            ca_path: ca_path.to_owned(),
            pem_path: pem_path.to_owned(),
            ca,
        })
    }

    /// The authority's certificate (for `curl --cacert`).
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// The balancer's certificate and key, in one PEM file.
    pub fn pem_path(&self) -> &Path {
        &self.pem_path
    }

    /// `GET path` over TLS on `addr`, trusting only the lab's authority and checking that the
    /// certificate is valid for the address.
    pub fn https_get(
        &self,
        addr: SocketAddr,
        path: &str,
        timeout: Duration,
    ) -> io::Result<HttpReply> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.ca.clone())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = ServerName::IpAddress(addr.ip().into());
        let conn =
            rustls::ClientConnection::new(Arc::new(config), name).map_err(io::Error::other)?;
        let tcp = common::net::connect(addr, timeout)?;
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        common::net::http_exchange(&mut stream, &addr.to_string(), path)
    }
}

/// A new authority and a certificate for `names` signed by it: the authority's
/// certificate, and the server's certificate followed by its key (both PEM).
fn generate(names: &[String]) -> Result<(String, String), rcgen::Error> {
    // From yesterday (a clock a little behind still accepts it) for ten years; the key
    // that could sign more is gone once this returns.
    let yesterday = Utc::now().date_naive() - chrono::Days::new(1);
    let not_before = rcgen::date_time_ymd(
        yesterday.year(),
        yesterday.month() as u8,
        yesterday.day() as u8,
    );
    let not_after = rcgen::date_time_ymd(yesterday.year() + 10, 1, 1);
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, "lbbench lab CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = not_before;
    ca.not_after = not_after;
    let ca_cert = ca.self_signed(&ca_key)?;

    let key = KeyPair::generate()?;
    let mut server = CertificateParams::new(names.to_vec())?;
    server.distinguished_name = DistinguishedName::new();
    server
        .distinguished_name
        .push(DnType::CommonName, SERVER_NAMES[0]);
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server.not_before = not_before;
    server.not_after = not_after;
    let cert = server.signed_by(&key, &Issuer::from_params(&ca, &ca_key))?;
    Ok((
        ca_cert.pem(),
        format!("{}{}", cert.pem(), key.serialize_pem()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn makes_private_files_once_and_reuses_them() {
        let dir = tempfile::tempdir().unwrap();
        let tls = LabTls::in_dir(dir.path()).unwrap();
        for p in [tls.ca_path(), tls.pem_path()] {
            let mode = fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
        let mode = fs::metadata(dir.path().join(TLS_DIR))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        let pem = fs::read_to_string(tls.pem_path()).unwrap();
        assert!(pem.contains("BEGIN CERTIFICATE") && pem.contains("PRIVATE KEY"));
        assert!(
            !fs::read_to_string(tls.ca_path())
                .unwrap()
                .contains("PRIVATE")
        );
        assert!(tls.pem_path().is_absolute());
        let again = LabTls::in_dir(dir.path()).unwrap();
        assert_eq!(
            again.ca, tls.ca,
            "a second lab session serves the same certificate"
        );
        // A damaged file is made again.
        fs::write(tls.pem_path(), "garbage").unwrap();
        let fresh = LabTls::in_dir(dir.path()).unwrap();
        assert_ne!(fresh.ca, tls.ca);
    }
}
