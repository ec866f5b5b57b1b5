//! The console's one search box: what a manager scans or types, read as the GS1 thing it
//! names. Pure: the database look-ups that settle what is left open are in
//! [`super::pages`].

use swt_domain::gs1::{self, Gln, ParseOptions};
use swt_domain::unit::UnitKey;

/// The longest query read; a scanned DataMatrix of a pack is well under 100 characters.
pub const MAX_QUERY: usize = 512;

/// What a query names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// Nothing typed.
    Empty,
    /// A serialized pack or a logistic unit.
    Unit(UnitKey),
    /// A lot of a GTIN. `lost_separator` holds the (lot, serial) readings when a scanner
    /// dropped the separator after the lot, so that `(10)` swallowed `(21)` and its serial.
    Lot {
        /// GTIN-14.
        gtin: String,
        /// Lot as read.
        lot: String,
        /// Other readings: (lot, serial).
        lost_separator: Vec<(String, String)>,
    },
    /// A GTIN alone.
    Gtin(String),
    /// 13 digits with a valid check digit: a GLN, or a GTIN-13 keyed in.
    GlnOrGtin13(String),
    /// A GLN (from AI 414 and friends).
    Gln(String),
    /// Free text: a serial, a lot or an order number.
    Text(String),
    /// GS1 data that names none of the above, with what it holds.
    Unsupported(String),
}

/// Reads a query. Never fails: what is not GS1 is text to look up.
pub fn classify(raw: &str) -> Query {
    let q: String = raw.trim().chars().take(MAX_QUERY).collect();
    if q.is_empty() {
        return Query::Empty;
    }
    if let Ok(key) = UnitKey::parse(&q) {
        return Query::Unit(key);
    }
    let digits = q.bytes().all(|b| b.is_ascii_digit());
    if digits && q.len() == 13 && Gln::parse(&q).is_ok() {
        return Query::GlnOrGtin13(q);
    }
    if digits
        && let Ok(d) = gs1::parse_keyed(q.as_bytes())
        && let Some(g) = d.get("01")
    {
        return Query::Gtin(g.to_owned());
    }
    // Scanners in keyboard mode often send the group separator as a visible stand-in.
    let data = gs1::parse_str(&q, &ParseOptions::default()).or_else(|e| {
        gs1::parse_str(
            &q,
            &ParseOptions {
                separator_substitute: Some(b'|'),
                ..ParseOptions::default()
            },
        )
        .map_err(|_| e)
    });
    let Ok(data) = data else {
        return Query::Text(q);
    };
    // A numeric serial or order number can happen to read as AI data (`11…` a date).
    if digits && data.get("01").is_none() {
        return Query::Text(q);
    }
    if let Some(gtin) = data.get("01") {
        return match data.get("10") {
            Some(lot) => Query::Lot {
                gtin: gtin.to_owned(),
                lot: lot.to_owned(),
                lost_separator: lost_separator_readings(lot),
            },
            None => Query::Gtin(gtin.to_owned()),
        };
    }
    for ai in ["414", "410", "411", "412", "413", "415", "416", "417"] {
        if let Some(gln) = data.get(ai) {
            return Query::Gln(gln.to_owned());
        }
    }
    let held: Vec<String> = data.iter().map(|v| format!("({})", v.ai)).collect();
    Query::Unsupported(held.join(""))
}

/// Every way a lot that swallowed `21<serial>` splits: at each `21` after the first
/// character, (lot before it, serial after it). A GS1 lot is at most 20 characters and a
/// serial at least one.
fn lost_separator_readings(lot: &str) -> Vec<(String, String)> {
    lot.match_indices("21")
        .filter(|(i, _)| *i > 0 && *i + 2 < lot.len())
        .map(|(i, _)| (lot[..i].to_owned(), lot[i + 2..].to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(gtin: &str, serial: &str) -> Query {
        Query::Unit(UnitKey::Sgtin {
            gtin: gtin.into(),
            serial: serial.into(),
        })
    }

    #[test]
    fn a_scanned_pack_in_any_form_names_the_pack() {
        let want = pack("00361500231012", "ABC123");
        for q in [
            // DataMatrix with its symbology identifier and group separator.
            "]d201003615002310121727123110LOT7\u{1d}21ABC123",
            "(01)00361500231012(17)271231(10)LOT7(21)ABC123",
            "https://id.gs1.org/01/00361500231012/21/ABC123",
            "sgtin:00361500231012:ABC123",
            "0100361500231012172712312 1ABC123"
                .replace(' ', "")
                .as_str(),
        ] {
            assert_eq!(classify(q), want, "{q:?}");
        }
    }

    #[test]
    fn an_sscc_names_the_container() {
        let want = Query::Unit(UnitKey::Sscc("106141411234567897".into()));
        assert_eq!(classify("106141411234567897"), want);
        assert_eq!(classify("(00)106141411234567897"), want);
        assert_eq!(classify(" ]C100106141411234567897 "), want);
    }

    #[test]
    fn a_lot_that_swallowed_the_serial_offers_the_splits() {
        // Lot, then serial with no separator between: (10) reads to the end.
        match classify("010036150023101210LOT721ABC123") {
            Query::Lot {
                gtin,
                lot,
                lost_separator,
            } => {
                assert_eq!(
                    (gtin.as_str(), lot.as_str()),
                    ("00361500231012", "LOT721ABC123")
                );
                assert!(lost_separator.contains(&("LOT7".into(), "ABC123".into())));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn digits_and_text_are_read_for_what_they_can_be() {
        assert_eq!(
            classify("0614141000005"),
            Query::GlnOrGtin13("0614141000005".into())
        );
        assert_eq!(
            classify("00361500231012"),
            Query::Gtin("00361500231012".into())
        );
        assert_eq!(
            classify("(414)0614141000005"),
            Query::Gln("0614141000005".into())
        );
        assert_eq!(classify("SO-2026-0042"), Query::Text("SO-2026-0042".into()));
        assert_eq!(classify("   "), Query::Empty);
        // A 13-digit string with a wrong check digit is just text.
        assert_eq!(
            classify("0614141000006"),
            Query::Text("0614141000006".into())
        );
    }

    #[test]
    fn hostile_queries_are_text_and_bounded() {
        let long = "x".repeat(10_000);
        assert_eq!(classify(&long), Query::Text("x".repeat(MAX_QUERY)));
        assert_eq!(
            classify("<script>alert(1)</script>"),
            Query::Text("<script>alert(1)</script>".into())
        );
        let _ = classify("]d2\u{0}\u{1d}\u{1d}((((");
    }
}
