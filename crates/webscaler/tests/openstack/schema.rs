//! A small JSON Schema validator for the keywords the OpenStack request schemas use
//! (`tests/fixtures/openstack/schemas/`, extracted from the gtema/openstack OpenAPI specs):
//! type, properties, required, additionalProperties, patternProperties, items, oneOf,
//! anyOf, allOf, enum, pattern, min/maxLength, min/maxItems, minimum, maximum, and the
//! formats uuid, ipv4, ipv6 and base64 (others are not checked).

#![allow(dead_code)]

use serde_json::Value;

/// Loads a schema from the fixtures.
pub fn load(name: &str) -> Value {
    let p = super::fixture(&format!("schemas/{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

/// Checks `v` against `schema`; the error names the path of the first violation.
pub fn validate(schema: &Value, v: &Value) -> Result<(), String> {
    check(schema, v, "$")
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "number" => v.is_number(),
        "integer" => v.as_i64().is_some() || v.as_u64().is_some(),
        _ => true,
    }
}

fn format_ok(f: &str, s: &str) -> bool {
    use base64::Engine;
    match f {
        "uuid" => {
            let hex: String = s.chars().filter(|c| *c != '-').collect();
            hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
        }
        "ipv4" => s.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<std::net::Ipv6Addr>().is_ok(),
        // Nova decodes with base64.decodebytes, which skips whitespace.
        "base64" => {
            let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .is_ok()
        }
        _ => true,
    }
}

fn check(schema: &Value, v: &Value, path: &str) -> Result<(), String> {
    let Some(s) = schema.as_object() else {
        return Ok(());
    };
    if let Some(t) = s.get("type") {
        let ok = match t {
            Value::String(t) => type_ok(t, v),
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).any(|t| type_ok(t, v)),
            _ => true,
        };
        if !ok {
            return Err(format!("{path}: {v} is not of type {t}"));
        }
    }
    if let Some(Value::Array(e)) = s.get("enum")
        && !e.contains(v)
    {
        return Err(format!("{path}: {v} is not one of {e:?}"));
    }
    if let Some(c) = s.get("const")
        && c != v
    {
        return Err(format!("{path}: {v} is not {c}"));
    }
    if let Value::String(st) = v {
        let n = st.chars().count() as u64;
        if let Some(m) = s.get("minLength").and_then(Value::as_u64)
            && n < m
        {
            return Err(format!("{path}: shorter than {m}"));
        }
        if let Some(m) = s.get("maxLength").and_then(Value::as_u64)
            && n > m
        {
            return Err(format!("{path}: longer than {m}"));
        }
        if let Some(p) = s.get("pattern").and_then(Value::as_str) {
            let re = regex::Regex::new(p).map_err(|e| format!("{path}: bad pattern {p}: {e}"))?;
            if !re.is_match(st) {
                return Err(format!("{path}: {st:?} does not match {p}"));
            }
        }
        if let Some(f) = s.get("format").and_then(Value::as_str)
            && !format_ok(f, st)
        {
            return Err(format!("{path}: {st:?} is not a valid {f}"));
        }
    }
    if let Some(n) = v.as_f64() {
        if let Some(m) = s.get("minimum").and_then(Value::as_f64)
            && n < m
        {
            return Err(format!("{path}: {n} < {m}"));
        }
        if let Some(m) = s.get("maximum").and_then(Value::as_f64)
            && n > m
        {
            return Err(format!("{path}: {n} > {m}"));
        }
    }
    if let Value::Array(items) = v {
        if let Some(m) = s.get("minItems").and_then(Value::as_u64)
            && (items.len() as u64) < m
        {
            return Err(format!("{path}: fewer than {m} items"));
        }
        if let Some(m) = s.get("maxItems").and_then(Value::as_u64)
            && (items.len() as u64) > m
        {
            return Err(format!("{path}: more than {m} items"));
        }
        if let Some(is) = s.get("items") {
            for (i, it) in items.iter().enumerate() {
                check(is, it, &format!("{path}[{i}]"))?;
            }
        }
    }
    if let Value::Object(m) = v {
        if let Some(Value::Array(req)) = s.get("required") {
            for r in req.iter().filter_map(Value::as_str) {
                if !m.contains_key(r) {
                    return Err(format!("{path}: required property {r:?} is missing"));
                }
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        let pattern_props = s.get("patternProperties").and_then(Value::as_object);
        for (k, val) in m {
            let sub = format!("{path}.{k}");
            let mut matched = false;
            if let Some(ps) = props.and_then(|p| p.get(k)) {
                matched = true;
                check(ps, val, &sub)?;
            }
            if let Some(pp) = pattern_props {
                for (pat, ps) in pp {
                    let re =
                        regex::Regex::new(pat).map_err(|e| format!("bad pattern {pat}: {e}"))?;
                    if re.is_match(k) {
                        matched = true;
                        check(ps, val, &sub)?;
                    }
                }
            }
            if !matched {
                match s.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        return Err(format!("{path}: additional property {k:?} is not allowed"));
                    }
                    Some(ap @ Value::Object(_)) => check(ap, val, &sub)?,
                    _ => {}
                }
            }
        }
    }
    if let Some(Value::Array(all)) = s.get("allOf") {
        for a in all {
            check(a, v, path)?;
        }
    }
    if let Some(Value::Array(any)) = s.get("anyOf")
        && !any.iter().any(|a| check(a, v, path).is_ok())
    {
        return Err(format!("{path}: matches none of anyOf"));
    }
    if let Some(Value::Array(one)) = s.get("oneOf") {
        let n = one.iter().filter(|a| check(a, v, path).is_ok()).count();
        if n != 1 {
            return Err(format!("{path}: matches {n} of oneOf, not exactly one"));
        }
    }
    Ok(())
}
