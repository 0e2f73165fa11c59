//! Answers to queries with `except`, made from the answers of their two
//! parts as [`LookupQuery::except_answer`] defines them.
//!
//! A backend asks the `except` query first (its answer is kept by its own
//! type's cache), then hands it to the store of the query's type, which
//! keeps the difference for as long as both answers stand
//! ([`crate::answers`]).

use serde_json::Value;

use crate::{LookupError, LookupQuery};

/// `answer` without the elements `left_out` holds.
pub(crate) fn subtract(answer: &[u8], left_out: &[u8]) -> Result<Vec<u8>, LookupError> {
    let parse = |what: &str, json: &[u8]| {
        serde_json::from_slice::<Vec<Value>>(json)
            .map_err(|e| LookupError::Unavailable(format!("{what} is not a list: {e}")))
    };
    let answer = parse("the answer", answer)?;
    if answer.is_empty() {
        return Ok(b"[]".to_vec());
    }
    let left_out = parse("the answer of `except`", left_out)?;
    let answer = LookupQuery::except_answer(answer, &left_out);
    serde_json::to_vec(&answer).map_err(|e| LookupError::Unavailable(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtracts_by_json_value_and_keeps_order() {
        let got = subtract(br#"["b","a",{"x":1},null,2]"#, br#"[ "a", {"x": 1}, 2.0 ]"#).unwrap();
        assert_eq!(got, br#"["b",null,2]"#);
        assert_eq!(subtract(b"[]", b"not json").unwrap(), b"[]");
        assert!(subtract(b"[1]", b"{}").is_err());
        assert!(subtract(b"{}", b"[]").is_err());
    }
}
