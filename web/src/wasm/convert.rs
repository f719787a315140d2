//! Conversion between JavaScript values and AEMP [`Value`]s.
//!
//! | JavaScript | AEMP value | back to JavaScript |
//! |---|---|---|
//! | `null`, `undefined` | `Null` | `null` |
//! | boolean | `Bool` | boolean |
//! | number, safe integer | `Int` | number |
//! | number, otherwise (fraction, NaN, ±Infinity, > 2⁵³) | `Float` | number |
//! | `BigInt` (within −2⁶⁴ … 2⁶⁴−1) | `Int` | number if safe, else `BigInt` |
//! | string | `Text` | string |
//! | `Uint8Array`, `ArrayBuffer` | `Bytes` | string if valid UTF-8, else `Uint8Array` |
//! | `Array` | `Array` | `Array` |
//! | plain object (`{…}`, prototype `Object.prototype` or `null`) | `Map`, text keys | plain object |
//! | `Map` | `Map`, any keys | plain object if all keys are strings, else `Map` |
//!
//! Anything else (functions, symbols, class instances, other typed arrays,
//! values nested deeper than [`MAX_DEPTH`], e.g. cycles) is an error.
//!
//! Byte strings that are valid UTF-8 become JavaScript strings because Perl
//! peers send *all* their strings as CBOR byte strings (see the text/bytes
//! rule of `aemp_core::value`). The price: a `Uint8Array` whose bytes happen
//! to be valid UTF-8 comes back as a string.

use aemp_core::Value;
use js_sys::{Array, ArrayBuffer, Map, Object, Reflect, Uint8Array};
use serde_json::Value as Json;
use wasm_bindgen::{JsCast, JsValue};

use crate::helpers::{int_as_number, int_in_wire_range, number_to_value};

/// How deep JavaScript values may nest (deeper is refused: it is almost
/// certainly a cycle, and the recursion must not exhaust the stack).
pub const MAX_DEPTH: usize = 128;

fn kind_of(v: &JsValue) -> String {
    let t = v.js_typeof().as_string().unwrap_or_default();
    if t != "object" {
        return t;
    }
    let ctor = Reflect::get(v, &JsValue::from_str("constructor"))
        .ok()
        .and_then(|c| Reflect::get(&c, &JsValue::from_str("name")).ok())
        .and_then(|n| n.as_string());
    match ctor {
        Some(name) if !name.is_empty() => format!("an instance of {name}"),
        _ => "an object".into(),
    }
}

fn is_plain_object(v: &JsValue) -> bool {
    let Some(obj) = v.dyn_ref::<Object>() else {
        return false;
    };
    let proto = Object::get_prototype_of(obj);
    if proto.is_null() {
        return true;
    }
    // Object.prototype's own prototype is null; that of an object from
    // another realm (iframe) is too, so compare structurally.
    Object::get_prototype_of(&proto).is_null()
}

/// Converts a JavaScript value to a [`Value`] (see the [module docs](self)).
pub fn from_js(v: &JsValue) -> Result<Value, String> {
    from_js_depth(v, 0)
}

fn from_js_depth(v: &JsValue, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "value nested deeper than {MAX_DEPTH} levels (a cycle?)"
        ));
    }
    if v.is_null() || v.is_undefined() {
        return Ok(Value::Null);
    }
    if let Some(b) = v.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Some(x) = v.as_f64() {
        return Ok(number_to_value(x));
    }
    if let Some(s) = v.as_string() {
        return Ok(Value::from(s));
    }
    if v.is_bigint() {
        return match i128::try_from(v.clone()) {
            Ok(i) if int_in_wire_range(i) => Ok(Value::Int(i)),
            _ => Err("BigInt out of range (−2^64 … 2^64−1)".into()),
        };
    }
    if Array::is_array(v) {
        let a: &Array = v.unchecked_ref();
        let mut out = Vec::with_capacity(a.length() as usize);
        for x in a.iter() {
            out.push(from_js_depth(&x, depth + 1)?);
        }
        return Ok(Value::Array(out));
    }
    if let Some(u) = v.dyn_ref::<Uint8Array>() {
        return Ok(Value::Bytes(u.to_vec()));
    }
    if let Some(b) = v.dyn_ref::<ArrayBuffer>() {
        return Ok(Value::Bytes(Uint8Array::new(b).to_vec()));
    }
    if let Some(m) = v.dyn_ref::<Map>() {
        let mut out = Vec::with_capacity(m.size() as usize);
        let mut err = None;
        m.for_each(&mut |val, key| {
            if err.is_some() {
                return;
            }
            match (
                from_js_depth(&key, depth + 1),
                from_js_depth(&val, depth + 1),
            ) {
                (Ok(k), Ok(x)) => out.push((k, x)),
                (Err(e), _) | (_, Err(e)) => err = Some(e),
            }
        });
        return match err {
            Some(e) => Err(e),
            None => Ok(Value::Map(out)),
        };
    }
    if is_plain_object(v) {
        let entries = Object::entries(v.unchecked_ref());
        let mut out = Vec::with_capacity(entries.length() as usize);
        for e in entries.iter() {
            let e: Array = e.unchecked_into();
            let key = e.get(0).as_string().unwrap_or_default();
            out.push((Value::from(key), from_js_depth(&e.get(1), depth + 1)?));
        }
        return Ok(Value::Map(out));
    }
    Err(format!("cannot send {} as an AEMP value", kind_of(v)))
}

/// Converts a JavaScript array (a message, a reason) to a list of values.
pub fn msg_from_js(a: &Array) -> Result<Vec<Value>, String> {
    a.iter().map(|x| from_js(&x)).collect()
}

/// Converts a [`Value`] to JavaScript (see the [module docs](self)).
pub fn to_js(v: &Value) -> JsValue {
    match v {
        Value::Null => JsValue::NULL,
        Value::Bool(b) => JsValue::from_bool(*b),
        Value::Int(i) => match int_as_number(*i) {
            Some(f) => JsValue::from_f64(f),
            None => JsValue::from(*i),
        },
        Value::Float(x) => JsValue::from_f64(*x),
        Value::Text(s) => JsValue::from_str(s),
        Value::Bytes(b) => match std::str::from_utf8(b) {
            Ok(s) => JsValue::from_str(s),
            Err(_) => Uint8Array::from(b.as_slice()).into(),
        },
        Value::Array(a) => msg_to_js(a).into(),
        Value::Map(m) => {
            if m.iter().all(|(k, _)| k.as_str().is_some()) {
                // Object.fromEntries defines own data properties, so even a
                // "__proto__" key stays a plain key.
                let entries: Array = m
                    .iter()
                    .map(|(k, x)| {
                        Array::of2(
                            &JsValue::from_str(k.as_str().unwrap_or_default()),
                            &to_js(x),
                        )
                    })
                    .collect();
                match Object::from_entries(&entries) {
                    Ok(o) => o.into(),
                    Err(_) => JsValue::NULL,
                }
            } else {
                let map = Map::new();
                for (k, x) in m {
                    map.set(&to_js(k), &to_js(x));
                }
                map.into()
            }
        }
    }
}

/// Converts a list of values (a message, a reason) to a JavaScript array.
pub fn msg_to_js(m: &[Value]) -> Array {
    m.iter().map(to_js).collect()
}

/// Converts a JavaScript value (the configuration object) to JSON. Numbers
/// stay numbers, `undefined` becomes `null`; only JSON-like values are allowed.
pub fn json_from_js(v: &JsValue) -> Result<Json, String> {
    Ok(json_of(from_js(v)?))
}

fn json_of(v: Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(b),
        Value::Int(i) => match i64::try_from(i) {
            Ok(i) => Json::from(i),
            Err(_) => Json::from(i as f64),
        },
        Value::Float(x) => serde_json::Number::from_f64(x).map_or(Json::Null, Json::Number),
        Value::Text(s) => Json::String(s.to_string()),
        Value::Bytes(b) => Json::String(String::from_utf8_lossy(&b).into_owned()),
        Value::Array(a) => Json::Array(a.into_iter().map(json_of).collect()),
        Value::Map(m) => Json::Object(
            m.into_iter()
                .map(|(k, x)| (k.as_str().unwrap_or_default().to_string(), json_of(x)))
                .collect(),
        ),
    }
}
