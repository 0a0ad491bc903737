//! Writes the synthetic traces of `webscaler::simulation::trace::synthetic::shipped` to `benches-data/`
//! (or the directory given). A unit test checks that the shipped files match.
//!
//! `cargo run -p webscaler --example write-synthetic-traces [-- DIR]`

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../benches-data"));
    for (name, trace) in webscaler::simulation::trace::synthetic::shipped() {
        let path = dir.join(name);
        std::fs::write(&path, trace.to_csv())?;
        println!("{}: {trace}", path.display());
    }
    Ok(())
}
