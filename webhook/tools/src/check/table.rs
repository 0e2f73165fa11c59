//! The table `check` and `audit` print: one row per object and policy that
//! did not simply allow, columns aligned, the message last (whole, on one
//! line, so it can be searched), a repair's patch on the line below it.
//! Colour only when the output is a terminal and `NO_COLOR` is unset.

use std::io::{self, IsTerminal, Write};

use serde_json::Value;

/// One row.
#[derive(Debug, Clone)]
pub struct Row {
    /// `UPDATE DaemonSet kube-system/calico-node`.
    pub object: String,
    pub policy: String,
    /// `mutate` or `validate`.
    pub stage: &'static str,
    pub verdict: &'static str,
    pub message: String,
    pub patch: Option<Value>,
}

/// Whether to colour what goes to stdout (<https://no-color.org>: any
/// non-empty `NO_COLOR` turns colour off).
pub fn colour_stdout() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    io::stdout().is_terminal() && !no_color
}

/// ANSI colour of a verdict (or of the closing result).
pub fn paint(text: &str, verdict: &str, colour: bool) -> String {
    let code = match verdict {
        "deny" | "failure" | "fail" | "error" | "DENIED" => "31",
        "patch" | "admitted" | "pass" => "32",
        _ => "33",
    };
    if colour {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

const HEADER: [&str; 5] = ["OBJECT", "POLICY", "STAGE", "VERDICT", "MESSAGE"];

/// Writes `rows` under a header (nothing at all when there are none).
pub fn write(out: &mut dyn Write, rows: &[Row], colour: bool) -> io::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut width = HEADER.map(str::len);
    for row in rows {
        for (w, cell) in width
            .iter_mut()
            .zip([&row.object, &row.policy, row.stage, row.verdict])
        {
            *w = (*w).max(cell.len());
        }
    }
    let indent = width[..4].iter().map(|w| w + 2).sum::<usize>();
    writeln!(
        out,
        "{:w0$}  {:w1$}  {:w2$}  {:w3$}  {}",
        HEADER[0],
        HEADER[1],
        HEADER[2],
        HEADER[3],
        HEADER[4],
        w0 = width[0],
        w1 = width[1],
        w2 = width[2],
        w3 = width[3],
    )?;
    for row in rows {
        // Pad before painting: escape codes have no width on screen.
        let verdict = format!("{:w$}", row.verdict, w = width[3]);
        writeln!(
            out,
            "{:w0$}  {:w1$}  {:w2$}  {}  {}",
            row.object,
            row.policy,
            row.stage,
            paint(&verdict, row.verdict, colour),
            row.message,
            w0 = width[0],
            w1 = width[1],
            w2 = width[2],
        )?;
        if let Some(patch) = &row.patch {
            writeln!(out, "{:indent$}patch: {patch}", "")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rows() -> Vec<Row> {
        vec![
            Row {
                object: "CREATE Deployment kube-system/calico-policy-controller".into(),
                policy: "controller-recreate".into(),
                stage: "mutate",
                verdict: "patch",
                message: "repaired".into(),
                patch: Some(
                    json!([{"op": "replace", "path": "/spec/strategy", "value": {"type": "Recreate"}}]),
                ),
            },
            Row {
                object: "UPDATE DaemonSet kube-system/calico-node".into(),
                policy: "kdd-v2.5-migration".into(),
                stage: "validate",
                verdict: "deny",
                message: "migrate first".into(),
                patch: None,
            },
        ]
    }

    #[test]
    fn columns_align_and_the_patch_sits_under_the_message() {
        let mut out = Vec::new();
        write(&mut out, &rows(), false).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        let column = lines[0].find("MESSAGE").unwrap();
        assert_eq!(lines[1].find("repaired"), Some(column), "{text}");
        assert_eq!(lines[2].find("patch: ["), Some(column), "{text}");
        assert_eq!(lines[3].find("migrate first"), Some(column), "{text}");
        assert_eq!(
            lines[1].find("controller-recreate"),
            lines[0].find("POLICY")
        );
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn colour_paints_only_the_verdict_and_keeps_the_alignment() {
        let mut out = Vec::new();
        write(&mut out, &rows(), true).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\x1b[31mdeny "), "{text}");
        assert!(text.contains("\x1b[32mpatch"), "{text}");
        let plain = text.replace("\x1b[31m", "").replace("\x1b[32m", "");
        let plain = plain.replace("\x1b[0m", "");
        let mut uncoloured = Vec::new();
        write(&mut uncoloured, &rows(), false).unwrap();
        assert_eq!(plain, String::from_utf8(uncoloured).unwrap());
        let mut none = Vec::new();
        write(&mut none, &[], true).unwrap();
        assert!(none.is_empty());
    }
}
