//! Offsets in requests: checked against the contract, numeric strings turned into the numbers
//! Connect needs.

use serde_json::Value;

/// Whether a string is a canonical integer (`0`, `-12`, `345`; no leading zeros, no `+`), i.e. one
/// that turns into a JSON number and back without change.
fn canonical_integer(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
        || text == "-0"
    {
        return None;
    }
    text.parse().ok()
}

fn numbers_from_strings(value: &Value) -> Value {
    match value {
        Value::String(s) => canonical_integer(s)
            .map(Value::from)
            .unwrap_or_else(|| value.clone()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), numbers_from_strings(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Checks an `offsets` array of `{partition: object, offset: object|null}` and returns it with
/// integer strings turned into numbers (Terraform's older requests send `"kafka_offset": "50"`;
/// Connect needs numbers). Errors name every bad element. `None`/`null` is an empty list.
pub fn normalize_offsets(offsets: Option<&Value>) -> Result<Vec<Value>, Vec<String>> {
    let items = match offsets {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(vec![
                "offsets: must be an array of {partition, offset}".into(),
            ]);
        }
    };
    let mut problems = Vec::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::Object(map) = item else {
            problems.push(format!(
                "offsets[{i}]: must be an object with partition and offset"
            ));
            continue;
        };
        match map.get("partition") {
            Some(Value::Object(_)) => {}
            _ => problems.push(format!("offsets[{i}].partition: must be an object")),
        }
        match map.get("offset") {
            Some(Value::Object(_)) | Some(Value::Null) => {}
            _ => problems.push(format!(
                "offsets[{i}].offset: must be an object (or null to reset that partition)"
            )),
        }
        for key in map.keys() {
            if key != "partition" && key != "offset" {
                problems.push(format!(
                    "offsets[{i}].{key}: unknown field; use partition and offset"
                ));
            }
        }
        out.push(numbers_from_strings(item));
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// Checks the `offsets` of a create against the contract (`connect.v1` create request): each
/// entry's `partition` and `offset` are non-empty objects. (`offset: null`, "reset this
/// partition", is only meaningful for an offsets request on an existing connector.)
pub fn check_create_offsets(offsets: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, item) in offsets.iter().enumerate() {
        for field in ["partition", "offset"] {
            match item.get(field) {
                Some(Value::Object(m)) if m.is_empty() => problems.push(format!(
                    "offsets[{i}].{field}: is empty; name the {}",
                    if field == "partition" {
                        "partition, e.g. {\"kafka_topic\": \"orders\", \"kafka_partition\": 0} (sink) or the source's own keys"
                    } else {
                        "position, e.g. {\"kafka_offset\": 1000} (sink) or the source's own keys"
                    }
                )),
                Some(Value::Null) => problems.push(format!(
                    "offsets[{i}].{field}: must be an object on create (null resets a partition \
                     only in an offsets request: POST .../offsets/request)"
                )),
                _ => {}
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn offsets_accept_numbers_and_numeric_strings() {
        let input = serde_json::json!([
            {"partition": {"kafka_partition": "0", "kafka_topic": "t"}, "offset": {"kafka_offset": "50"}},
            {"partition": {"file": "/a"}, "offset": {"position": 7, "name": "007"}},
            {"partition": {"kafka_partition": 1, "kafka_topic": "t"}, "offset": null}
        ]);
        let out = normalize_offsets(Some(&input)).unwrap();
        assert_eq!(out[0]["partition"]["kafka_partition"], 0);
        assert_eq!(out[0]["offset"]["kafka_offset"], 50);
        assert_eq!(out[0]["partition"]["kafka_topic"], "t");
        assert_eq!(out[1]["offset"]["name"], "007", "not canonical: stays text");
        assert!(out[2]["offset"].is_null());
        assert_eq!(normalize_offsets(None).unwrap(), Vec::<Value>::new());
        assert_eq!(
            normalize_offsets(Some(&Value::Null)).unwrap(),
            Vec::<Value>::new()
        );
    }

    #[test]
    fn bad_offsets_name_every_problem() {
        let input = serde_json::json!([1, {"partition": 2, "offset": "x", "extra": 1}]);
        let p = normalize_offsets(Some(&input)).unwrap_err();
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(p[0].starts_with("offsets[0]"));
        assert!(normalize_offsets(Some(&serde_json::json!({}))).is_err());
    }

    #[test]
    fn create_offsets_need_a_partition_and_a_position() {
        let ok = serde_json::json!([{"partition": {"kafka_partition": 0}, "offset": {"kafka_offset": 5}}]);
        assert!(check_create_offsets(ok.as_array().unwrap()).is_empty());
        let bad = serde_json::json!([{"partition": {}, "offset": null}]);
        let p = check_create_offsets(bad.as_array().unwrap());
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].starts_with("offsets[0].partition: is empty"));
        assert!(p[1].contains("offsets[0].offset: must be an object on create"));
    }

    proptest! {
        #[test]
        fn canonical_integer_strings_round_trip(n in any::<i64>()) {
            let v = numbers_from_strings(&Value::String(n.to_string()));
            prop_assert_eq!(v, Value::from(n));
        }
    }
}
