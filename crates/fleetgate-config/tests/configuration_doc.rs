//! docs/configuration.md lists every key the TOML schema accepts.
//!
//! The keys are not copied here: each section of a configuration is given
//! a key no section has, and the loader's error names the keys that
//! section accepts (the schema refuses unknown keys). Every one of them
//! must appear as a `` `key` `` table row, or inside the first cell of a
//! row, under the section's heading in the reference.

use std::path::Path;

use fleetgate_config::Config;

/// A key no section accepts.
const UNKNOWN: &str = "zz_not_a_key";

/// The keys the section under test accepts, from the error for `toml`.
fn accepted_keys(toml: &str) -> Vec<String> {
    let err = match Config::from_toml_str(Path::new("/nonexistent/test.toml"), toml) {
        Ok(_) => panic!("{UNKNOWN} was accepted in:\n{toml}"),
        Err(e) => e.to_string(),
    };
    // "expected `a`, `b` or `c`", "expected `a` or `b`", "expected `a`":
    // every back-quoted word of the rest of that line.
    let Some(list) = err
        .split(", expected ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
    else {
        panic!("no key list in the error for:\n{toml}\n{err}");
    };
    let keys: Vec<String> = list
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    assert!(!keys.is_empty(), "no keys parsed from: {err}");
    keys
}

/// The part of the reference from the heading line containing `heading`
/// up to the next heading of the same or a higher level.
fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let start = doc
        .lines()
        .position(|l| l.starts_with('#') && l.contains(heading))
        .unwrap_or_else(|| panic!("docs/configuration.md has no heading with {heading}"));
    let lines: Vec<&str> = doc.lines().collect();
    let level = lines[start].chars().take_while(|&c| c == '#').count();
    let end = lines[start + 1..]
        .iter()
        .position(|l| {
            let n = l.chars().take_while(|&c| c == '#').count();
            n > 0 && n <= level
        })
        .map_or(lines.len(), |i| start + 1 + i);
    let from = doc.lines().take(start).map(|l| l.len() + 1).sum::<usize>();
    let to = doc.lines().take(end).map(|l| l.len() + 1).sum::<usize>();
    &doc[from..to.min(doc.len())]
}

/// Whether `key` is the first cell (or one of the keys listed there) of a
/// table row in `text`.
fn documented(text: &str, key: &str) -> bool {
    let quoted = format!("`{key}`");
    text.lines().any(|l| {
        l.starts_with("| ")
            && l.split('|')
                .nth(1)
                .is_some_and(|cell| cell.contains(&quoted))
    })
}

#[test]
fn every_key_of_the_schema_is_in_the_configuration_reference() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md"),
    )
    .expect("docs/configuration.md");
    let u = UNKNOWN;
    // (heading in the reference, a configuration with the unknown key in
    // that section). Required keys come after the unknown one, which the
    // schema reports first.
    let cases: Vec<(&str, String)> = vec![
        ("## `[gateway]`", format!("[gateway]\n{u} = 1\n")),
        (
            "## `[gateway]`",
            format!("[gateway]\ndefault_backend = {{ {u} = 1 }}\n"),
        ),
        (
            "## `[gateway]`",
            format!("[gateway]\ndefault_certificate = {{ {u} = 1 }}\n"),
        ),
        ("## `[admin]`", format!("[admin]\n{u} = 1\n")),
        ("## `[log]`", format!("[log]\n{u} = 1\n")),
        ("## `[compression]`", format!("[compression]\n{u} = 1\n")),
        ("## `[upstream]`", format!("[upstream]\n{u} = 1\n")),
        (
            "## `[upstream.outlier_detection]`",
            format!("[upstream.outlier_detection]\n{u} = 1\n"),
        ),
        ("## `[[cluster]]`", format!("[[cluster]]\n{u} = 1\n")),
        ("## `[[service]]`", format!("[[service]]\n{u} = 1\n")),
        (
            "## `[[service]]`",
            format!("[[service]]\nendpoints = [{{ {u} = 1 }}]\n"),
        ),
        (
            "## `[upstream.outlier_detection]`",
            format!("[[service]]\n[service.outlier_detection]\n{u} = 1\n"),
        ),
        (
            "## `[service.health_check]`",
            format!("[[service]]\n[service.health_check]\n{u} = 1\n"),
        ),
        (
            "## `[service.tls]`",
            format!("[[service]]\n[service.tls]\n{u} = 1\n"),
        ),
        (
            "## `[[certificate]]`",
            format!("[[certificate]]\n{u} = 1\n"),
        ),
        ("## `[manifests]`", format!("[manifests]\n{u} = 1\n")),
        ("## `[[ingress]]`", format!("[[ingress]]\n{u} = 1\n")),
        (
            "## `[[ingress]]`",
            format!("[[ingress]]\nrules = [{{ {u} = 1 }}]\n"),
        ),
        (
            "## `[[ingress]]`",
            format!("[[ingress]]\nrules = [{{ paths = [{{ {u} = 1 }}] }}]\n"),
        ),
        (
            "## `[[ingress]]`",
            format!("[[ingress]]\ntls = [{{ {u} = 1 }}]\n"),
        ),
        (
            "## `[[ingress]]`",
            format!("[[ingress]]\ndefault_backend = {{ {u} = 1 }}\n"),
        ),
    ];
    let top = accepted_keys(&format!("{u} = 1\n"));
    for key in &top {
        let heading = match key.as_str() {
            "cluster" | "service" | "ingress" | "certificate" => format!("## `[[{key}]]`"),
            _ => format!("## `[{key}]`"),
        };
        section(&doc, &heading);
    }
    let mut missing = Vec::new();
    for (heading, toml) in &cases {
        let text = section(&doc, heading);
        for key in accepted_keys(toml) {
            if !documented(text, &key) {
                missing.push(format!("{heading}: `{key}`"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "keys the schema accepts but docs/configuration.md does not list:\n{}",
        missing.join("\n")
    );
}
