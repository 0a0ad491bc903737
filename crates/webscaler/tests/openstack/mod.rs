//! Support for the OpenStack tests: the fixtures, the fake OpenStack and a JSON Schema validator.

#![allow(dead_code)]

pub mod fake_openstack;
pub mod schema;

use std::path::PathBuf;

/// A file of `tests/fixtures/openstack/`. Panics if it is missing, so a test can never pass
/// without its fixture.
pub fn fixture(rel: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/openstack")
        .join(rel);
    assert!(p.is_file(), "missing fixture {}", p.display());
    p
}
