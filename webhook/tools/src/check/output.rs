//! What `check` prints: the table (a transient warning's verdict marked,
//! the summary counting it apart) or `-o json` (each finding marked
//! `transient`, the counts at the top).

use std::io::Write;

use serde_json::{Value, json};
use tollgate_preflight::Replayed;

use super::table::{self, Row};
use super::{finding_json, row};

/// The verdict column of a warning a later object of the input resolves.
const TRANSIENT: &str = "warn (transient)";

/// The findings as rows, then the summary, the denials and the result.
pub fn write_table(
    out: &mut dyn Write,
    checked: &[Replayed<'_>],
    source: &str,
) -> std::io::Result<()> {
    let colour = table::colour_stdout();
    let rows: Vec<Row> = checked
        .iter()
        .flat_map(|c| {
            let object = format!("{} {}", c.operation(), c.manifest.display_name());
            c.findings.iter().zip(&c.transient).map(move |(f, &t)| {
                let mut row = row(object.clone(), f);
                if t {
                    row.verdict = TRANSIENT;
                }
                row
            })
        })
        .collect();
    table::write(out, &rows, colour)?;
    let count = |op: &str| checked.iter().filter(|c| c.operation() == op).count();
    let denied: Vec<&Replayed<'_>> = checked.iter().filter(|c| !c.judged.allowed()).collect();
    let repaired = checked
        .iter()
        .filter(|c| c.judged.patched.is_some())
        .count();
    let transient = rows.iter().filter(|r| r.verdict == TRANSIENT).count();
    let counted = rows.len() - transient;
    if !rows.is_empty() {
        writeln!(out)?;
    }
    writeln!(
        out,
        "{} objects ({} CREATE, {} UPDATE) against {source}: {} denied, {} repaired, {} finding{}{}",
        checked.len(),
        count("CREATE"),
        count("UPDATE"),
        denied.len(),
        repaired,
        counted,
        if counted == 1 { "" } else { "s" },
        match transient {
            0 => String::new(),
            n => format!(", {n} transient"),
        },
    )?;
    for c in &denied {
        writeln!(
            out,
            "denied: {} {} ({})",
            c.operation(),
            c.manifest.display_name(),
            c.manifest.origin
        )?;
    }
    let result = if denied.is_empty() {
        "admitted"
    } else {
        "DENIED"
    };
    writeln!(out, "result: {}", table::paint(result, result, colour))
}

/// Every object with its findings, as one JSON document.
pub fn write_json(
    out: &mut dyn Write,
    checked: &[Replayed<'_>],
    source: &str,
) -> std::io::Result<()> {
    let objects: Vec<Value> = checked
        .iter()
        .map(|c| {
            let findings: Vec<Value> = c
                .findings
                .iter()
                .zip(&c.transient)
                .map(|(f, &t)| {
                    let mut finding = finding_json(f);
                    finding["transient"] = json!(t);
                    finding
                })
                .collect();
            json!({
                "object": c.manifest.display_name(),
                "apiVersion": c.manifest.object["apiVersion"],
                "origin": c.manifest.origin.to_string(),
                "operation": c.operation(),
                // Where the API server puts it: `default` when the manifest
                // names none, nothing for a cluster-scoped kind.
                "namespace": c.review["request"]["namespace"],
                "allowed": c.judged.allowed(),
                "repaired": c.judged.patched.is_some(),
                "findings": findings,
            })
        })
        .collect();
    let doc = json!({
        "allowed": checked.iter().all(|c| c.judged.allowed()),
        "cluster": source,
        "findings": checked.iter().map(|c| c.counted().count()).sum::<usize>(),
        "transient": checked.iter().flat_map(|c| &c.transient).filter(|t| **t).count(),
        "objects": objects,
    });
    let text = serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)?;
    writeln!(out, "{text}")
}
