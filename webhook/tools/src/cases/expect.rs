//! A case's expectations checked against the host's [`Decision`]: the
//! review's verdict, its message, warnings, patch and patched object, and
//! what each policy did. Classification only; the decision itself is the
//! host's (the same `PolicySet::judge` that serves).

use serde_json::Value;
use tollgate_host::{Decision, Effect as HostEffect, Outcome};

use super::file::{CaseVerdict, Effect, Expect};

/// One judged review, as the expectations read it.
pub struct Judged<'a> {
    pub decision: &'a Decision,
    /// The policy ids of the set, by index.
    pub ids: &'a [&'a str],
    /// `request.object`, for the patched object.
    pub object: Option<Value>,
}

/// What one policy did: allowed advice is a warning.
pub fn effect(outcome: &Outcome) -> Effect {
    match &outcome.effect {
        HostEffect::Failure { .. } => Effect::Failure,
        HostEffect::Deny(_) => Effect::Deny,
        HostEffect::Patch(_) => Effect::Patch,
        HostEffect::Warn(_) => Effect::Warn,
        HostEffect::Audit(_) => Effect::Audit,
        HostEffect::Allow if !outcome.advice.is_empty() => Effect::Warn,
        HostEffect::Allow => Effect::Allow,
    }
}

impl Judged<'_> {
    /// The review's verdict: the strongest of its policies' effects.
    pub fn verdict(&self) -> CaseVerdict {
        let strongest = self.decision.outcomes.iter().map(|o| match effect(o) {
            Effect::Failure => CaseVerdict::Failure,
            Effect::Deny => CaseVerdict::Deny,
            Effect::Patch => CaseVerdict::Patch,
            Effect::Warn => CaseVerdict::Warn,
            Effect::Audit => CaseVerdict::Audit,
            Effect::Allow | Effect::Unselected => CaseVerdict::Allow,
        });
        let verdict = strongest.min().unwrap_or(CaseVerdict::Allow);
        if self.decision.denial.is_some() {
            verdict.min(CaseVerdict::Deny)
        } else {
            verdict
        }
    }

    /// The messages `message:` is looked for in: those of the verdict.
    fn messages(&self, verdict: CaseVerdict) -> Vec<&str> {
        let d = self.decision;
        match verdict {
            CaseVerdict::Deny => d.denial.as_deref().into_iter().collect(),
            CaseVerdict::Warn => d.warnings.iter().map(String::as_str).collect(),
            CaseVerdict::Failure | CaseVerdict::Audit => d
                .outcomes
                .iter()
                .filter(|o| match o.effect {
                    HostEffect::Failure { .. } => verdict == CaseVerdict::Failure,
                    HostEffect::Audit(_) => verdict == CaseVerdict::Audit,
                    _ => false,
                })
                .filter_map(Outcome::reason)
                .collect(),
            CaseVerdict::Patch | CaseVerdict::Allow => Vec::new(),
        }
    }

    /// What policy `id` did.
    fn effect_of(&self, id: &str) -> Effect {
        let index = self.ids.iter().position(|i| *i == id);
        self.decision
            .outcomes
            .iter()
            .find(|o| Some(o.policy) == index)
            .map_or(Effect::Unselected, effect)
    }

    /// One line saying what the review got, for a failing case.
    pub fn summary(&self) -> String {
        let verdict = self.verdict();
        let mut text = format!("got {}", verdict.as_str());
        let messages = self.messages(verdict);
        if !messages.is_empty() {
            text.push_str(&format!(": {}", messages.join(" | ")));
        }
        if verdict != CaseVerdict::Warn && !self.decision.warnings.is_empty() {
            text.push_str(&format!(
                "; warnings: {}",
                self.decision.warnings.join(" | ")
            ));
        }
        if let Some(patch) = self.decision.patch() {
            let ops = serde_json::to_string(patch).unwrap_or_default();
            text.push_str(&format!("; patch: {ops}"));
        }
        let outcomes: Vec<String> = (self.decision.outcomes.iter())
            .map(|o| format!("{} {}", self.ids[o.policy], effect(o).as_str()))
            .collect();
        if outcomes.is_empty() {
            text.push_str("; no policy selected the review");
        } else {
            text.push_str(&format!("; policies: {}", outcomes.join(", ")));
        }
        text
    }

    /// Every expectation that does not hold, each as one line.
    pub fn mismatches(&self, expect: &Expect) -> Vec<String> {
        let mut out = Vec::new();
        let verdict = self.verdict();
        if let Some(allowed) = expect.allowed
            && allowed != self.decision.allowed()
        {
            out.push(format!(
                "expected {}, but it was {}",
                if allowed { "allowed" } else { "denied" },
                if allowed { "denied" } else { "allowed" }
            ));
        }
        if let Some(expected) = expect.verdict
            && expected != verdict
        {
            out.push(format!(
                "expected verdict {}, got {}",
                expected.as_str(),
                verdict.as_str()
            ));
        }
        if let Some(part) = &expect.message {
            let messages = self.messages(verdict);
            if messages.is_empty() {
                out.push(format!(
                    "expected a message containing {part:?}, but a verdict {} has none",
                    verdict.as_str()
                ));
            } else if !messages.iter().any(|m| m.contains(part.as_str())) {
                out.push(format!("no {} message contains {part:?}", verdict.as_str()));
            }
        }
        if let Some(expected) = &expect.warnings {
            out.extend(self.warning_mismatches(expected));
        }
        if let Some(expected) = &expect.patch {
            let sent = serde_json::to_value(&self.decision.patch).unwrap_or_default();
            if &sent != expected {
                out.push(format!("expected the patch {expected}, got {sent}"));
            }
        }
        if let Some(expected) = &expect.patched {
            match self.patched() {
                Ok(object) => {
                    if let Some(difference) = contains(&object, expected, "") {
                        out.push(format!("patched object: {difference}"));
                    }
                }
                Err(error) => out.push(format!("patched object: {error}")),
            }
        }
        for (id, expected) in expect.outcomes.iter().flatten() {
            let got = self.effect_of(id);
            if got != *expected {
                out.push(format!(
                    "expected policy {id} to {}, got {}",
                    expected.as_str(),
                    got.as_str()
                ));
            }
        }
        out
    }

    /// Each expected substring must be found in a warning of its own; an
    /// empty list means no warnings at all.
    fn warning_mismatches(&self, expected: &[String]) -> Vec<String> {
        let warnings = &self.decision.warnings;
        if expected.is_empty() {
            return match warnings.is_empty() {
                true => Vec::new(),
                false => vec![format!(
                    "expected no warnings, got: {}",
                    warnings.join(" | ")
                )],
            };
        }
        let mut unused: Vec<&str> = warnings.iter().map(String::as_str).collect();
        let mut out = Vec::new();
        for part in expected {
            match unused.iter().position(|w| w.contains(part.as_str())) {
                Some(i) => {
                    unused.remove(i);
                }
                None => out.push(format!(
                    "no warning contains {part:?} (warnings: {})",
                    if warnings.is_empty() {
                        "none".to_owned()
                    } else {
                        warnings.join(" | ")
                    }
                )),
            }
        }
        out
    }

    /// `request.object` with the decision's patch applied.
    fn patched(&self) -> Result<Value, String> {
        let mut object = self
            .object
            .clone()
            .ok_or("the request has no object to patch")?;
        let ops = serde_json::to_value(&self.decision.patch).map_err(|e| e.to_string())?;
        let patch: json_patch::Patch = serde_json::from_value(ops).map_err(|e| e.to_string())?;
        // On a copy: patch_unsafe, since json_patch::patch can panic undoing a failure.
        json_patch::patch_unsafe(&mut object, &patch)
            .map_err(|e| format!("the patch does not apply: {e}"))?;
        Ok(object)
    }
}

/// Where `actual` does not hold what `expected` names: mappings are
/// compared key by key (a `null` expects the key absent), anything else
/// must be equal.
fn contains(actual: &Value, expected: &Value, at: &str) -> Option<String> {
    let Value::Object(fields) = expected else {
        return (actual != expected).then(|| {
            let at = if at.is_empty() { "/" } else { at };
            format!("{at} is {actual}, expected {expected}")
        });
    };
    let Value::Object(actual) = actual else {
        return Some(format!("{at} is {actual}, expected a mapping"));
    };
    fields.iter().find_map(|(key, want)| {
        let path = format!("{at}/{}", jsonptr::Token::new(key.as_str()).encoded());
        match (actual.get(key), want) {
            (None | Some(Value::Null), Value::Null) => None,
            (Some(got), Value::Null) => Some(format!("{path} is {got}, expected it absent")),
            (None, _) => Some(format!("{path} is absent, expected {want}")),
            (Some(got), want) => contains(got, want, &path),
        }
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use tollgate_host::FailureCause;
    use tollgate_sdk::PatchOp;

    use super::*;

    fn outcome(policy: usize, effect: HostEffect, advice: &[&str]) -> Outcome {
        Outcome {
            policy,
            elapsed: Duration::ZERO,
            effect,
            advice: advice.iter().map(|a| a.to_string()).collect(),
            overran: false,
        }
    }

    const IDS: &[&str] = &["r1", "r2", "r3"];

    fn judged(decision: &Decision) -> Judged<'_> {
        Judged {
            decision,
            ids: IDS,
            object: Some(json!({"spec": {"replicas": 3, "paused": false}})),
        }
    }

    fn expect(yaml: &str) -> Expect {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn the_verdict_is_the_strongest_effect() {
        let warn = Decision::new(vec![
            outcome(0, HostEffect::Allow, &["r1: pre-pull"]),
            outcome(1, HostEffect::Audit("r2: bad".into()), &[]),
        ]);
        assert_eq!(judged(&warn).verdict(), CaseVerdict::Warn);
        let audit = Decision::new(vec![outcome(1, HostEffect::Audit("r2: bad".into()), &[])]);
        assert_eq!(judged(&audit).verdict(), CaseVerdict::Audit);
        let failure = Decision::new(vec![
            outcome(0, HostEffect::Deny("r1: no".into()), &[]),
            outcome(
                1,
                HostEffect::Failure {
                    cause: FailureCause::Trap,
                    message: "r2: policy failed".into(),
                    deny: false,
                },
                &[],
            ),
        ]);
        assert_eq!(judged(&failure).verdict(), CaseVerdict::Failure);
        assert_eq!(
            judged(&Decision::new(Vec::new())).verdict(),
            CaseVerdict::Allow
        );
    }

    #[test]
    fn every_expectation_is_checked() {
        let denied = Decision::new(vec![
            outcome(0, HostEffect::Deny("r1: 3 replicas".into()), &["r1: a"]),
            outcome(1, HostEffect::Allow, &[]),
        ]);
        let j = judged(&denied);
        let holds = expect(
            "{allowed: false, verdict: deny, message: '3 replicas', warnings: [a], \
             outcomes: {r1: deny, r2: allow, r3: unselected}, patch: []}",
        );
        assert_eq!(j.mismatches(&holds), Vec::<String>::new());
        let wrong = expect(
            "{allowed: true, verdict: patch, message: '4 replicas', warnings: [a, a], \
             outcomes: {r3: deny}}",
        );
        assert_eq!(
            j.mismatches(&wrong),
            [
                "expected allowed, but it was denied",
                "expected verdict patch, got deny",
                "no deny message contains \"4 replicas\"",
                "no warning contains \"a\" (warnings: r1: a)",
                "expected policy r3 to deny, got unselected",
            ]
        );
        assert_eq!(
            j.mismatches(&expect("{warnings: []}")),
            ["expected no warnings, got: r1: a"]
        );
        assert!(
            j.summary()
                .starts_with("got deny: r1: 3 replicas; warnings: r1: a")
        );
        assert!(j.summary().ends_with("policies: r1 deny, r2 allow"));
    }

    #[test]
    fn an_allowed_review_has_no_message() {
        let allowed = Decision::new(vec![outcome(0, HostEffect::Allow, &[])]);
        let problems = judged(&allowed).mismatches(&expect("{message: x}"));
        assert_eq!(
            problems,
            ["expected a message containing \"x\", but a verdict allow has none"]
        );
    }

    #[test]
    fn the_patched_object_is_compared_field_by_field() {
        let ops = vec![PatchOp::replace("/spec/replicas", json!(1))];
        let patched = Decision::new(vec![outcome(0, HostEffect::Patch(ops), &[])]);
        let j = judged(&patched);
        assert_eq!(j.verdict(), CaseVerdict::Patch);
        let ok = expect(
            "{patched: {spec: {replicas: 1, strategy: null}}, patch: [{op: replace, path: /spec/replicas, value: 1}]}",
        );
        assert_eq!(j.mismatches(&ok), Vec::<String>::new());
        let wrong = expect("{patched: {spec: {replicas: 2}}}");
        assert_eq!(
            j.mismatches(&wrong),
            ["patched object: /spec/replicas is 1, expected 2"]
        );
        let absent = expect("{patched: {spec: {paused: null}}}");
        assert_eq!(
            j.mismatches(&absent),
            ["patched object: /spec/paused is false, expected it absent"]
        );
        let missing = expect("{patched: {metadata: {name: x}}}");
        assert_eq!(
            j.mismatches(&missing),
            ["patched object: /metadata is absent, expected {\"name\":\"x\"}"]
        );
        let deleted = Judged {
            object: None,
            ..judged(&patched)
        };
        assert_eq!(
            deleted.mismatches(&expect("{patched: {}}")),
            ["patched object: the request has no object to patch"]
        );
    }
}
