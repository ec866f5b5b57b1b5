//! The CBV 2.0 "EPCIS Event Hash ID": a fingerprint of an event that does not depend on
//! how it was written (URN or Digital Link, bare word or URI, field order, time zone).
//! swt uses it as the `eventID` of its own events, so re-projection yields the same ids.
//!
//! Implemented: every field swt emits and the common fields partners send (EPC lists,
//! quantities, parent, business transactions, sources/destinations, persistent
//! dispositions, ILMD and extensions). Not implemented (answered with
//! [`HashError::Unsupported`], never with a wrong hash): sensor data, extensions inside
//! `readPoint`/`bizLocation`, and identifier schemes the GS1 engine cannot convert.

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};
use swt_domain::gs1;

use super::DL_STEM;

/// Why no hash was computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// The event uses a feature this implementation does not canonicalise.
    #[error("event hash: unsupported {0}")]
    Unsupported(String),
    /// The event is malformed (not an object, bad time, …).
    #[error("event hash: invalid {0}")]
    Invalid(String),
    /// Serialising the event failed.
    #[error("event hash: {0}")]
    Json(String),
}

/// JSON-LD prefixes in force for an event (from the document's `@context`).
#[derive(Debug, Clone, Default)]
pub struct Prefixes(BTreeMap<String, String>);

impl Prefixes {
    /// The prefixes every EPCIS 2.0 document has, plus `swt`.
    pub fn swt() -> Self {
        let mut p = Self::standard();
        p.0.insert("swt".to_owned(), super::SWT_NS.to_owned());
        p
    }

    /// The prefixes predefined by the EPCIS context.
    pub fn standard() -> Self {
        let mut m = BTreeMap::new();
        m.insert("cbvmda".to_owned(), super::CBV_MDA_NS.to_owned());
        m.insert("gs1".to_owned(), "https://gs1.org/voc/".to_owned());
        m.insert("epcis".to_owned(), "https://ref.gs1.org/epcis/".to_owned());
        m.insert("cbv".to_owned(), "https://ref.gs1.org/cbv/".to_owned());
        m.insert(
            "xsd".to_owned(),
            "http://www.w3.org/2001/XMLSchema#".to_owned(),
        );
        Self(m)
    }

    /// Standard prefixes plus those a document's `@context` declares.
    pub fn from_context(context: &Value) -> Self {
        let mut p = Self::standard();
        let mut add = |o: &serde_json::Map<String, Value>| {
            for (k, v) in o {
                if let Some(s) = v.as_str() {
                    p.0.insert(k.clone(), s.to_owned());
                }
            }
        };
        match context {
            Value::Object(o) => add(o),
            Value::Array(items) => {
                for i in items {
                    if let Value::Object(o) = i {
                        add(o);
                    }
                }
            }
            _ => {}
        }
        p
    }

    fn expand(&self, curie: &str) -> Result<(String, String), HashError> {
        let (prefix, local) = curie
            .split_once(':')
            .ok_or_else(|| HashError::Invalid(format!("key without namespace: {curie}")))?;
        match self.0.get(prefix) {
            Some(ns) => Ok((ns.clone(), local.to_owned())),
            // A full URI used as a key: namespace up to the last '/' or '#'.
            None => match curie.rfind(['/', '#']) {
                Some(i) => Ok((curie[..=i].to_owned(), curie[i + 1..].to_owned())),
                None => Err(HashError::Unsupported(format!(
                    "undeclared prefix in {curie}"
                ))),
            },
        }
    }
}

/// `ni:///sha-256;<hex>?ver=CBV2.0` of an event (a JSON object as in EPCIS JSON-LD).
pub fn event_hash_id(event: &Value, prefixes: &Prefixes) -> Result<String, HashError> {
    let pre = pre_hash(event, prefixes)?;
    let digest = Sha256::digest(pre.as_bytes());
    Ok(format!("ni:///sha-256;{}?ver=CBV2.0", hex::encode(digest)))
}

/// Fields that are never hashed.
const SKIPPED: &[&str] = &[
    "type",
    "eventID",
    "recordTime",
    "errorDeclaration",
    "@context",
    "certificationInfo",
];

/// The pre-hash string (exposed for tests and for explaining a mismatch to a partner).
pub fn pre_hash(event: &Value, prefixes: &Prefixes) -> Result<String, HashError> {
    let obj = event
        .as_object()
        .ok_or_else(|| HashError::Invalid("event is not an object".to_owned()))?;
    let s = |k: &str| obj.get(k).and_then(Value::as_str);
    let mut out = String::with_capacity(512);
    let event_type = s("type").ok_or_else(|| HashError::Invalid("no type".to_owned()))?;
    out.push_str("eventType=");
    out.push_str(event_type);
    let time = s("eventTime").ok_or_else(|| HashError::Invalid("no eventTime".to_owned()))?;
    out.push_str("eventTime=");
    out.push_str(&norm_time(time)?);
    if let Some(off) = s("eventTimeZoneOffset") {
        out.push_str("eventTimeZoneOffset=");
        out.push_str(off.trim());
    }
    for (key, value) in ordered(obj)? {
        let v = &obj[key];
        match key {
            "epcList" | "childEPCs" | "inputEPCList" | "outputEPCList" => {
                let items = strings(v, key)?
                    .into_iter()
                    .map(|e| Ok(format!("epc={}", norm_epc(&e)?)))
                    .collect::<Result<Vec<_>, HashError>>()?;
                list(&mut out, key, items);
            }
            "parentID" => {
                out.push_str("parentID=");
                out.push_str(&norm_epc(value)?);
            }
            "quantityList" | "childQuantityList" | "inputQuantityList" | "outputQuantityList" => {
                let arr = v
                    .as_array()
                    .ok_or_else(|| HashError::Invalid(key.to_owned()))?;
                let mut items = Vec::new();
                for q in arr {
                    let class = q
                        .get("epcClass")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let mut item = format!("quantityElementepcClass={}", norm_epc(class)?);
                    if let Some(n) = q.get("quantity") {
                        item.push_str("quantity=");
                        item.push_str(&norm_number(n));
                    }
                    if let Some(u) = q.get("uom").and_then(Value::as_str) {
                        item.push_str("uom=");
                        item.push_str(u.trim());
                    }
                    items.push(item);
                }
                list(&mut out, key, items);
            }
            "action" => {
                out.push_str("action=");
                out.push_str(value.trim());
            }
            "transformationID" => {
                out.push_str("transformationID=");
                out.push_str(&norm_epc(value)?);
            }
            "bizStep" => {
                out.push_str("bizStep=");
                out.push_str(&norm_vocab(value, "BizStep-", "urn:epcglobal:cbv:bizstep:"));
            }
            "disposition" => {
                out.push_str("disposition=");
                out.push_str(&norm_vocab(value, "Disp-", "urn:epcglobal:cbv:disp:"));
            }
            "persistentDisposition" => {
                out.push_str("persistentDisposition");
                for part in ["set", "unset"] {
                    if let Some(p) = v.get(part) {
                        let mut items: Vec<String> = strings(p, part)?
                            .iter()
                            .map(|d| {
                                format!(
                                    "{part}={}",
                                    norm_vocab(d, "Disp-", "urn:epcglobal:cbv:disp:")
                                )
                            })
                            .collect();
                        items.sort();
                        items.iter().for_each(|i| out.push_str(i));
                    }
                }
            }
            "readPoint" | "bizLocation" => {
                let o = v
                    .as_object()
                    .ok_or_else(|| HashError::Invalid(key.to_owned()))?;
                if o.keys().any(|k| k != "id") {
                    return Err(HashError::Unsupported(format!("extension inside {key}")));
                }
                let id = o.get("id").and_then(Value::as_str).unwrap_or_default();
                out.push_str(key);
                out.push_str("id=");
                out.push_str(&norm_epc(id)?);
            }
            "bizTransactionList" | "sourceList" | "destinationList" => {
                let (field, tprefix) = match key {
                    "bizTransactionList" => ("bizTransaction", "BTT-"),
                    "sourceList" => ("source", "SDT-"),
                    _ => ("destination", "SDT-"),
                };
                let arr = v
                    .as_array()
                    .ok_or_else(|| HashError::Invalid(key.to_owned()))?;
                let mut items = Vec::new();
                for e in arr {
                    let mut item = String::new();
                    if let Some(t) = e.get("type").and_then(Value::as_str) {
                        item.push_str("type=");
                        item.push_str(&norm_vocab(t, tprefix, "urn:epcglobal:cbv:"));
                    }
                    let val = e.get(field).and_then(Value::as_str).unwrap_or_default();
                    item.push_str(field);
                    item.push('=');
                    // Parties and locations are GS1 keys; transactions stay as written.
                    if field == "bizTransaction" {
                        item.push_str(val.trim());
                    } else {
                        item.push_str(&norm_epc(val)?);
                    }
                    items.push(item);
                }
                list(&mut out, key, items);
            }
            "sensorElementList" => {
                return Err(HashError::Unsupported("sensorElementList".to_owned()));
            }
            "ilmd" => {
                let o = v
                    .as_object()
                    .ok_or_else(|| HashError::Invalid("ilmd".to_owned()))?;
                out.push_str("ilmd");
                let mut items = Vec::new();
                for (k, val) in o {
                    extension(&mut items, k, val, prefixes)?;
                }
                items.sort();
                items.iter().for_each(|i| out.push_str(i));
            }
            _ => {}
        }
    }
    let mut ext = Vec::new();
    for (k, v) in obj {
        if !is_standard(k) && !SKIPPED.contains(&k.as_str()) {
            extension(&mut ext, k, v, prefixes)?;
        }
    }
    ext.sort();
    ext.iter().for_each(|i| out.push_str(i));
    Ok(out)
}

/// Canonical order of the standard fields after the time fields.
const ORDER: &[&str] = &[
    "epcList",
    "parentID",
    "inputEPCList",
    "childEPCs",
    "quantityList",
    "childQuantityList",
    "inputQuantityList",
    "outputEPCList",
    "outputQuantityList",
    "action",
    "transformationID",
    "bizStep",
    "disposition",
    "persistentDisposition",
    "readPoint",
    "bizLocation",
    "bizTransactionList",
    "sourceList",
    "destinationList",
    "sensorElementList",
    "ilmd",
];

fn is_standard(k: &str) -> bool {
    ORDER.contains(&k) || matches!(k, "eventTime" | "eventTimeZoneOffset")
}

/// The standard fields present, in canonical order, with their string value if scalar.
fn ordered(obj: &serde_json::Map<String, Value>) -> Result<Vec<(&'static str, &str)>, HashError> {
    for k in obj.keys() {
        if !is_standard(k) && !SKIPPED.contains(&k.as_str()) && !k.contains(':') {
            return Err(HashError::Invalid(format!("unknown field {k}")));
        }
    }
    Ok(ORDER
        .iter()
        .filter_map(|k| obj.get(*k).map(|v| (*k, v.as_str().unwrap_or_default())))
        .collect())
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, HashError> {
    v.as_array()
        .ok_or_else(|| HashError::Invalid(what.to_owned()))?
        .iter()
        .map(|i| {
            i.as_str()
                .map(str::to_owned)
                .ok_or_else(|| HashError::Invalid(what.to_owned()))
        })
        .collect()
}

fn list(out: &mut String, name: &str, mut items: Vec<String>) {
    items.sort();
    out.push_str(name);
    items.iter().for_each(|i| out.push_str(i));
}

/// `{namespace}local=value` for leaves; `{ns}local` then the sorted children for objects;
/// one entry per item for arrays.
fn extension(
    out: &mut Vec<String>,
    key: &str,
    v: &Value,
    prefixes: &Prefixes,
) -> Result<(), HashError> {
    let (ns, local) = prefixes.expand(key)?;
    let name = format!("{{{ns}}}{local}");
    match v {
        Value::Object(o) => {
            let mut children = Vec::new();
            for (k, cv) in o {
                extension(&mut children, k, cv, prefixes)?;
            }
            children.sort();
            out.push(format!("{name}{}", children.concat()));
        }
        Value::Array(items) => {
            for i in items {
                extension(out, key, i, prefixes)?;
            }
        }
        Value::String(s) => out.push(format!("{name}={}", s.trim())),
        Value::Number(_) => out.push(format!("{name}={}", norm_number(v))),
        Value::Bool(b) => out.push(format!("{name}={b}")),
        Value::Null => out.push(name),
    }
    Ok(())
}

fn norm_number(v: &Value) -> String {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(f) = n.as_f64() {
                let s = format!("{f}");
                if s.contains('.') {
                    s.trim_end_matches('0').trim_end_matches('.').to_owned()
                } else {
                    s
                }
            } else {
                n.to_string()
            }
        }
        Value::String(s) => s.trim().to_owned(),
        other => other.to_string(),
    }
}

/// Timestamps to UTC with exactly three decimals (truncating finer digits, as CBV 2.0).
fn norm_time(t: &str) -> Result<String, HashError> {
    let parsed = chrono::DateTime::parse_from_rfc3339(t.trim())
        .map_err(|e| HashError::Invalid(format!("time {t}: {e}")))?;
    Ok(parsed
        .with_timezone(&chrono::Utc)
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string())
}

/// Bare CBV words and URN forms to the Web URI form.
fn norm_vocab(v: &str, web_prefix: &str, urn_prefix: &str) -> String {
    let v = v.trim();
    if let Some(word) = v.strip_prefix(urn_prefix) {
        // `urn:epcglobal:cbv:btt:po` / `urn:epcglobal:cbv:sdt:owning_party`.
        let word = word.rsplit(':').next().unwrap_or(word);
        return format!("https://ref.gs1.org/cbv/{web_prefix}{word}");
    }
    if v.contains(':') {
        v.to_owned()
    } else {
        format!("https://ref.gs1.org/cbv/{web_prefix}{v}")
    }
}

/// Every GS1 identifier to canonical Digital Link on `https://id.gs1.org`.
fn norm_epc(v: &str) -> Result<String, HashError> {
    let v = v.trim();
    if let Some(rest) = v.strip_prefix("urn:epc:id:pgln:") {
        return pgln(rest).ok_or_else(|| HashError::Unsupported(format!("identifier {v}")));
    }
    if let Some(rest) = v.strip_prefix("urn:epc:idpat:sgtin:") {
        // A GTIN class pattern (`GCP.item.*`) is the bare GTIN in Digital Link.
        let mut parts = rest.split('.');
        if let (Some(gcp), Some(item), Some("*")) = (parts.next(), parts.next(), parts.next())
            && let Some((ind, item)) = item.split_at_checked(1)
        {
            let body = format!("{ind}{gcp}{item}");
            let check = char::from(gs1::mod10_check_digit(body.as_bytes()));
            return Ok(format!("{DL_STEM}/01/{body}{check}"));
        }
        return Err(HashError::Unsupported(format!("identifier {v}")));
    }
    if v.starts_with("urn:epc:") {
        let (data, _) =
            gs1::parse_epc_urn(v).map_err(|_| HashError::Unsupported(format!("identifier {v}")))?;
        return data
            .to_digital_link(DL_STEM)
            .map_err(|e| HashError::Unsupported(format!("identifier {v}: {e}")));
    }
    if v.starts_with("http://") || v.starts_with("https://") {
        // A Digital Link on any domain: re-generate it on the canonical domain, without
        // query string. Other URIs stay as written.
        let no_query = v.split('?').next().unwrap_or(v);
        if let Ok(data) = gs1::parse_str(no_query, &gs1::ParseOptions::default())
            && data.is_gs1()
            && let Ok(dl) = data.to_digital_link(DL_STEM)
        {
            return Ok(dl);
        }
        return Ok(v.to_owned());
    }
    Ok(v.to_owned())
}

fn pgln(rest: &str) -> Option<String> {
    let (gcp, party) = rest.split_once('.')?;
    let body = format!("{gcp}{party}");
    if body.len() != 12 || !body.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let check = char::from(gs1::mod10_check_digit(body.as_bytes()));
    Some(format!("{DL_STEM}/417/{body}{check}"))
}
