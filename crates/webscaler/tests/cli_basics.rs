//! The binary answers `--help` and `--version`, and follows the exit-code convention.

#[test]
fn help_version_and_a_usage_error() {
    testkit::assert_cli_basics(
        env!("CARGO_BIN_EXE_webscaler"),
        "webscaler",
        env!("CARGO_PKG_VERSION"),
    );
}
