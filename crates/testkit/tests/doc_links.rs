//! Every relative link of the README and the docs/ pages resolves: the file exists and, for a
//! `#anchor` into a Markdown file, a heading of that file has that anchor (GitHub's rule:
//! lower case, punctuation other than `-` and `_` dropped, spaces to `-`, repeats get `-1`,
//! `-2`, …). Links in fenced code blocks and links with a scheme (`https:`) are not checked.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The Markdown files whose links are checked.
fn documents(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.join("README.md"), root.join("benches-data/README.md")];
    let mut docs: Vec<PathBuf> = fs::read_dir(root.join("docs"))
        .expect("docs/ is readable")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    assert!(docs.len() >= 5, "docs/ has its pages: {docs:?}");
    out.extend(docs);
    out
}

/// The lines of `text` outside fenced code blocks.
fn prose(text: &str) -> impl Iterator<Item = &str> {
    let mut fenced = false;
    text.lines().filter(move |l| {
        if l.trim_start().starts_with("```") {
            fenced = !fenced;
            return false;
        }
        !fenced
    })
}

/// GitHub's anchor for a heading's text.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown text's headings.
fn anchors(text: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    for line in prose(text) {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(&line[hashes + 1..]);
        let mut anchor = base.clone();
        let mut n = 0;
        while !out.insert(anchor.clone()) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
    }
    out
}

/// The targets of the `[text](target)` links of a Markdown text.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in prose(text) {
        let mut rest = line;
        while let Some(i) = rest.find("](") {
            rest = &rest[i + 2..];
            let end = rest.find([')', ' ']).unwrap_or(rest.len());
            out.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    out
}

/// The broken links of the Markdown file `doc`, each as `doc: target: why`.
fn broken_links(doc: &Path) -> Vec<String> {
    let text = fs::read_to_string(doc).unwrap_or_else(|e| panic!("{}: {e}", doc.display()));
    let dir = doc.parent().expect("a file has a directory");
    let mut bad = Vec::new();
    for link in links(&text) {
        if link.starts_with('<') || link.split_once(':').is_some_and(|(s, _)| !s.contains('/')) {
            continue; // a URL
        }
        let (path, fragment) = link.split_once('#').unwrap_or((&link, ""));
        let target = if path.is_empty() {
            doc.to_path_buf()
        } else {
            dir.join(path)
        };
        if !target.exists() {
            bad.push(format!("{}: {link}: no such file", doc.display()));
        } else if !fragment.is_empty() && target.extension().is_some_and(|e| e == "md") {
            let heads = anchors(&fs::read_to_string(&target).expect("a linked page is readable"));
            if !heads.contains(fragment) {
                bad.push(format!("{}: {link}: no such heading", doc.display()));
            }
        }
    }
    bad
}

#[test]
fn every_relative_link_of_the_readme_and_the_docs_resolves() {
    let root = testkit::workspace_root();
    let docs = documents(&root);
    let bad: Vec<String> = docs.iter().flat_map(|d| broken_links(d)).collect();
    assert!(bad.is_empty(), "broken links:\n{}", bad.join("\n"));
    // The README does link to the docs, so the check had something to check.
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        links(&readme)
            .iter()
            .filter(|l| l.starts_with("docs/"))
            .count()
            >= 5
    );
}

#[test]
fn the_check_finds_a_missing_file_and_a_missing_heading() {
    let dir = std::env::temp_dir().join(format!("testkit-doc-links-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("page.md"),
        "# A page\n## The sweep's columns\n## Twice\n## Twice\n",
    )
    .unwrap();
    let doc = dir.join("index.md");
    fs::write(
        &doc,
        "[ok](page.md#the-sweeps-columns) [ok](page.md#twice-1) [url](https://example.com/x)\n\
         ```\n[in code](nowhere.md)\n```\n\
         [gone](missing.md) [no heading](page.md#nope) [self](#a-title)\n# A title\n",
    )
    .unwrap();
    let bad = broken_links(&doc);
    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(bad[0].ends_with("missing.md: no such file"), "{bad:?}");
    assert!(bad[1].ends_with("page.md#nope: no such heading"), "{bad:?}");
}
