//! Rules and forms of the GS1 engine that the shared case file does not cover: one test
//! per rule of the General Specifications / Syntax Dictionary, every input form, the
//! options, warnings and typed accessors.

// Integration tests: an unwrap that fails is a failed test (clippy.toml allows it only
// inside #[test] functions, not in the helpers beside them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use swt_domain::gs1::{
    Date, ErrorKind, Gs1Data, Gtin, InputForm, ParseOptions, WarningKind, parse, parse_epc_urn,
    parse_keyed, parse_str,
};

fn ok(s: &str) -> Gs1Data {
    parse_str(s, &ParseOptions::default()).unwrap_or_else(|e| panic!("{s:?}: {} {e}", e.code()))
}

fn code(s: &str) -> &'static str {
    match parse_str(s, &ParseOptions::default()) {
        Ok(d) => panic!("{s:?} should be invalid, got {d}"),
        Err(e) => e.code(),
    }
}

fn err_ai(s: &str) -> (String, Option<String>) {
    let e = parse_str(s, &ParseOptions::default()).expect_err(s);
    (e.code().to_owned(), e.ai().map(str::to_owned))
}

#[test]
fn check_digits_of_every_key_that_has_one() {
    // GTIN-8/12/13 keyed in by hand, normalised to GTIN-14.
    let keyed = |s: &str| parse_keyed(s.as_bytes()).unwrap_or_else(|e| panic!("{s}: {e}"));
    assert_eq!(keyed("02345673").get("01"), Some("00000002345673"));
    assert_eq!(keyed("416000336108").get("01"), Some("00416000336108"));
    assert_eq!(keyed("2112345678900").get("01"), Some("02112345678900"));
    assert_eq!(keyed("09506000134352").form(), InputForm::PlainKey);
    assert_eq!(
        keyed("106141411234567897").get("00"),
        Some("106141411234567897")
    );
    // GTIN (02)/(03), GSIN (402), GRAI (8003), GSRN (8017/8018), GDTI (253), GCN (255),
    // ITIP (8026), GLN (410-417).
    assert_eq!(
        err_ai("(02)12345678901232(37)1(00)123456789012345675")
            .1
            .as_deref(),
        Some("02")
    );
    assert_eq!(code("(03)12345678901232"), "bad_check_digit");
    assert!(ok("(03)12345678901231").get("03").is_some());
    assert_eq!(code("(402)12345678901234561"), "bad_check_digit");
    assert!(ok("(402)12345678901234560").get("402").is_some());
    assert_eq!(code("(8003)01234567890129ABC"), "bad_check_digit");
    assert!(ok("(8003)01234567890128ABC").get("8003").is_some());
    assert_eq!(code("(8017)123456789012345676"), "bad_check_digit");
    assert!(ok("(8018)123456789012345675").get("8018").is_some());
    assert_eq!(code("(253)1234567890127X"), "bad_check_digit");
    assert_eq!(code("(255)1234567890127"), "bad_check_digit");
    assert_eq!(
        code("(00)123456789012345675(8026)123456789012350102(37)2"),
        "bad_check_digit"
    );
    for ai in ["411", "412", "413", "415", "416", "417"] {
        assert_eq!(
            err_ai(&format!("({ai})4012345000008")),
            ("bad_check_digit".into(), Some(ai.into()))
        );
    }
    // GMN check character pair (8013).
    assert!(ok("(8013)1987654Ad4X4bL5ttr2310c2K").get("8013").is_some());
    assert_eq!(
        code("(8013)1987654Ad4X4bL5ttr2310cXK"),
        "bad_check_characters"
    );
}

#[test]
fn dates_and_times() {
    // Day 00 only where the dictionary says yymmd0.
    for ai in ["11", "13", "15", "16", "17"] {
        assert!(
            ok(&format!("(01)09506000134352({ai})290200"))
                .get(ai)
                .is_some(),
            "{ai}"
        );
    }
    assert_eq!(code("(01)09506000134352(7006)290200"), "invalid_date_day");
    assert_eq!(
        code("(00)123456789012345675(4326)290200"),
        "invalid_date_day"
    );
    // 12 (due date) needs 8020 with 415.
    assert!(
        ok("(415)4012345000009(8020)X(12)290200")
            .get("12")
            .is_some()
    );
    // Leap years, by the engine's rule (YY divisible by 4).
    assert!(ok("(01)09506000134352(17)280229").get("17").is_some());
    assert_eq!(code("(01)09506000134352(17)270229"), "invalid_date_day");
    // Times: 8008 (hh, optional mi, ss), 7011 (optional hhmi), 4324 (hhmi).
    assert!(
        ok("(01)09506000134352(8008)2901012359")
            .get("8008")
            .is_some()
    );
    assert_eq!(code("(01)09506000134352(8008)29010124"), "invalid_time");
    assert_eq!(code("(01)09506000134352(8008)2901012360"), "invalid_time");
    assert_eq!(code("(01)09506000134352(8008)290101235960"), "invalid_time");
    assert!(ok("(01)09506000134352(7011)290101").get("7011").is_some());
    assert_eq!(code("(01)09506000134352(7011)2901012460"), "invalid_time");
    assert_eq!(
        code("(00)123456789012345675(4324)2901012400"),
        "invalid_time"
    );
    // YYYYMMDD (7250).
    assert!(
        ok("(8018)123456789012345675(7250)20000229")
            .get("7250")
            .is_some()
    );
    assert_eq!(
        code("(8018)123456789012345675(7250)19000229"),
        "invalid_date_day"
    );
    // The message says what a support person needs.
    let e = parse_str("(01)09506000134352(17)290431", &ParseOptions::default()).unwrap_err();
    assert_eq!(e.to_string(), "AI (17): day 31 does not exist in April");
    assert_eq!(e.position(), Some(26));
}

#[test]
fn century_window_and_expiry() {
    let d = ok("]d201003123456789061726123110A1B2C3\u{1d}21100000000001");
    let pi = d.product_identifier_at(2026).unwrap();
    assert_eq!(pi.gtin.as_str(), "00312345678906");
    assert_eq!(pi.lot.as_deref(), Some("A1B2C3"));
    assert_eq!(pi.serial.as_deref(), Some("100000000001"));
    let exp = pi.expiry.unwrap();
    assert_eq!(
        (exp.yymmdd.as_str(), exp.date),
        (
            "261231",
            Date {
                year: 2026,
                month: 12,
                day: 31
            }
        )
    );
    assert_eq!(pi.gtin.ndc10().as_deref(), Some("1234567890"));
    let old = ok("(01)09506000134352(17)991231")
        .product_identifier_at(2026)
        .unwrap();
    assert_eq!(old.expiry.unwrap().date.year, 1999);
    let eom = ok("(01)09506000134352(17)240200")
        .product_identifier_at(2026)
        .unwrap();
    assert_eq!(
        eom.expiry.unwrap().date,
        Date {
            year: 2024,
            month: 2,
            day: 29
        }
    );
    assert_eq!(
        Date::from_yymmdd("770101", 2026).map(|d| d.year),
        Some(1977)
    );
    assert_eq!(
        Date::from_yymmdd("760101", 2026).map(|d| d.year),
        Some(2076)
    );
}

#[test]
fn character_sets_and_other_linters() {
    assert_eq!(code("(01)09506000134352(10)AB^C"), "bad_charset_cset82");
    assert_eq!(code("(01)09506000134352(21)ä"), "bad_charset_cset82");
    assert_eq!(code("(8010)1234AB CD"), "bad_charset_cset39");
    assert!(ok("(8010)1234#-/AZ").get("8010").is_some());
    assert!(
        ok("(00)123456789012345675(8030)AB-_cd1==")
            .get("8030")
            .is_some()
    );
    assert_eq!(
        code("(00)123456789012345675(8030)AB=C"),
        "bad_charset_cset64"
    );
    assert_eq!(code("(01)09506000134352(422)999"), "invalid_code");
    assert!(ok("(01)09506000134352(422)276").get("422").is_some());
    assert!(ok("(01)09506000134352(7030)999ABC").get("7030").is_some());
    assert!(
        ok("(415)4012345000009(8020)X(3911)978123")
            .get("3911")
            .is_some()
    );
    assert_eq!(
        code("(415)4012345000009(8020)X(3911)001123"),
        "invalid_code"
    );
    assert!(
        ok("(415)4012345000009(8020)X(8007)GB82WEST12345698765432")
            .get("8007")
            .is_some()
    );
    assert_eq!(
        code("(415)4012345000009(8020)X(8007)GB83WEST12345698765432"),
        "invalid_value"
    );
    assert_eq!(code("(00)123456789012345675(4307)XX"), "invalid_code");
    assert!(
        ok("(00)123456789012345675(4330)012345-")
            .get("4330")
            .is_some()
    );
    assert_eq!(code("(00)123456789012345675(4330)012345+"), "invalid_value");
    assert_eq!(
        code("(00)123456789012345675(4309)18000000013600000000"),
        "invalid_value"
    );
    assert_eq!(code("(00)123456789012345675(4300)AB%2"), "invalid_value");
    assert_eq!(
        code("(00)123456789012345675(8026)123456789012310200(37)1"),
        "piece_of_total"
    );
    assert_eq!(
        code("(01)09506000134352(8001)00001000100019"),
        "invalid_value"
    );
    assert_eq!(
        code("(01)09506000134352(8001)12341234512325"),
        "invalid_value"
    );
    assert_eq!(code("(8017)123456789012345675(7241)11"), "invalid_code");
    assert_eq!(
        code("(8018)123456789012345675(7259)X(7258)2/1"),
        "invalid_value"
    );
    assert_eq!(code("(8018)123456789012345675(7252)3"), "invalid_code");
    assert_eq!(
        code("(01)09506000134352(21)X(8014)12345912345967"),
        "invalid_value"
    );
    assert_eq!(code("(7023)12A"), "gcp_too_short");
}

#[test]
fn associations() {
    // Invalid pairs.
    assert_eq!(
        err_ai("(01)09506000134352(02)09506000134352(37)1(00)123456789012345675"),
        ("mutually_exclusive".into(), Some("01".into()))
    );
    assert_eq!(
        code("(03)12345678901231(01)09506000134352"),
        "mutually_exclusive"
    );
    assert_eq!(
        code("(8017)123456789012345675(8018)123456789012345675"),
        "mutually_exclusive"
    );
    // Requisites: alternatives, '+' groups, two tokens.
    assert_eq!(
        err_ai("(01)09506000134352(250)X"),
        ("missing_requisite".into(), Some("250".into()))
    );
    assert!(ok("(01)09506000134352(21)S(250)X").get("250").is_some());
    assert_eq!(code("(00)123456789012345675(37)5"), "missing_requisite");
    assert_eq!(
        code("(01)09506000134352(8040)123456789012345"),
        "missing_requisite"
    );
    // Requisites can be switched off, like in the engine.
    let lax = ParseOptions {
        check_requisites: false,
        ..ParseOptions::default()
    };
    assert!(parse_str("(21)ABC", &lax).is_ok());
    // Repeats: same value fine, different values not, in every form.
    assert!(ok("(01)09506000134352(21)A(21)A").len() == 3);
    assert_eq!(
        code("(01)09506000134352(21)A(21)B"),
        "repeated_ai_different_values"
    );
    // Digital signature needs the serial part of 255 / 8003.
    assert_eq!(code("(255)1234567890128(8030)ABC"), "digsig_serial");
    assert!(ok("(255)12345678901281(8030)ABC").get("8030").is_some());
    assert_eq!(code("(8003)01234567890128(8030)ABC"), "digsig_serial");
}

#[test]
fn element_string_framing() {
    // Unknown AI mid-way, with the position.
    let e = parse(
        b"0109506000134352\x1d9912\x1d89AB",
        &ParseOptions::default(),
    )
    .unwrap_err();
    assert_eq!((e.code(), e.position()), ("unknown_ai", Some(22)));
    // A fixed-length but not predefined AI (8006) needs a GS when followed by another AI.
    assert_eq!(code("800609506000134352010221X"), "too_long");
    // Leading FNC1 as GS: error by default, accepted on request.
    assert_eq!(code("\u{1d}0109506000134352"), "unknown_ai");
    let lead = ParseOptions {
        allow_leading_fnc1: true,
        ..ParseOptions::default()
    };
    assert!(parse(b"]d2\x1d0109506000134352", &lead).is_ok());
    // Separator substitute.
    let sub = ParseOptions {
        separator_substitute: Some(b'~'),
        ..ParseOptions::default()
    };
    let d = parse(b"]d2010950600013435210ABC~21XYZ", &sub).unwrap();
    assert_eq!((d.get("10"), d.get("21")), (Some("ABC"), Some("XYZ")));
    assert!(d.to_element_string().contains('\u{1d}'));
    let caret = ParseOptions {
        separator_substitute: Some(b'^'),
        ..ParseOptions::default()
    };
    assert!(parse(b"010950600013435210ABC^21XYZ", &caret).is_ok());
    // Symbology identifiers.
    for (s, sym) in [
        ("]C1", "]C1"),
        ("]Q3", "]Q3"),
        ("]e0", "]e0"),
        ("]J1", "]J1"),
        ("]d2", "]d2"),
    ] {
        let d = ok(&format!("{s}0109506000134352"));
        assert_eq!(d.symbology().map(|x| x.to_string()).as_deref(), Some(sym));
    }
    // Plain data in a symbology that can also carry GS1 data: not GS1.
    for plain in [
        "]d1ABC",
        "]Q1hello",
        "]J0PLAIN",
        "]d1",
        "]Q1HtTpS://id.gs1.org/01/09506000134352",
    ] {
        assert_eq!(code(plain), "not_gs1", "{plain}");
    }
    // ... unless it is a Digital Link URI.
    assert_eq!(
        ok("]Q1https://id.gs1.org/01/09506000134352").get("01"),
        Some("09506000134352")
    );
    let comp = ok("]E09501101530003|]e01729010110ABC");
    assert_eq!(
        (comp.get("01"), comp.get("10")),
        (Some("09501101530003"), Some("ABC"))
    );
    assert_eq!(code("]E4023456"), "too_short");
    // Bare digits are AI data, as for the GS1 engine: a GTIN is not guessed...
    assert_eq!(code("09506000134352"), "unknown_ai");
    // ... and 14 digits that are also a valid GTIN read as a company-internal (95).
    assert_eq!(ok("95060001343528").get("95"), Some("060001343528"));
    // Keyed-in keys on request: the option tries them first.
    let keyed = ParseOptions {
        keyed_in_keys: true,
        ..ParseOptions::default()
    };
    let d = parse(b"09506000134352", &keyed).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (d.get("01"), d.form()),
        (Some("09506000134352"), InputForm::PlainKey)
    );
    assert_eq!(
        parse(b"95060001343528", &keyed)
            .ok()
            .and_then(|d| d.gtin())
            .map(|g| g.to_string()),
        Some("95060001343528".to_owned())
    );
    // The explicit form says why typed digits are not a key.
    for (typed, want) in [
        ("0950600013435", "bad_check_digit"),
        ("0950600013435A", "bad_charset_numeric"),
        ("095060001", "too_short"),
        ("0950600013435200", "too_long"),
        ("", "too_short"),
    ] {
        assert_eq!(
            parse_keyed(typed.as_bytes()).map_err(|e| e.code()).err(),
            Some(want),
            "{typed}"
        );
    }
}

#[test]
fn digital_link_forms() {
    let d =
        ok("https://example.com/01/09506000134352/10/AB%2BC?17=290101&3103=000123&linkType=all");
    assert_eq!(d.get("10"), Some("AB+C"));
    assert_eq!(d.form(), InputForm::DigitalLink);
    assert_eq!(
        code("https://example.com/01/09506000134352?21=X"),
        "dl_not_data_attribute"
    );
    assert_eq!(
        code("https://example.com/01/09506000134352?22=X"),
        "dl_not_data_attribute"
    );
    assert_eq!(
        code("https://example.com/414/9520123456788?254=X"),
        "dl_not_data_attribute"
    );
    assert_eq!(
        code("https://example.com/01/09506000134352/10/A/10/A"),
        "dl_bad_key_qualifier_seq"
    );
    assert_eq!(
        code("https://example.com/01/09506000134352/10/A?10=A"),
        "dl_duplicate_ai"
    );
    assert_eq!(
        code("https://example.com/01/09506000134352?17=2901"),
        "too_short"
    );
    assert_eq!(
        code("https://example.com/01/09506000134352?99=%00"),
        "dl_null"
    );
    assert_eq!(
        code("https://example.com/01/0950600013435A"),
        "bad_charset_numeric"
    );
    // Generation (GS1 engine examples).
    let d = ok("(01)12312312312333(10)ABC+123(99)XYZ+QWERTY");
    assert_eq!(
        d.to_digital_link("https://example.com/").unwrap(),
        "https://example.com/01/12312312312333/10/ABC%2B123?99=XYZ%2BQWERTY"
    );
    let d = ok("(01)09506000134352(3103)000123(17)290101(21)S1(10)L1(99)X");
    assert_eq!(
        d.to_digital_link("id.gs1.org").unwrap(),
        "https://id.gs1.org/01/09506000134352/10/L1/21/S1?3103=000123&17=290101&99=X"
    );
    let d = ok("(01)09506000134352(235)T(10)L");
    assert_eq!(
        d.to_digital_link("https://id.gs1.org").unwrap_err().code(),
        "conversion"
    );
    assert_eq!(
        ok("(400)PO1")
            .to_digital_link("https://id.gs1.org")
            .unwrap_err()
            .code(),
        "conversion"
    );
    let d = ok("(00)106141411234567897(02)09506000134352(37)12(10)LOT");
    assert_eq!(
        d.to_digital_link("https://id.gs1.org").unwrap(),
        "https://id.gs1.org/00/106141411234567897?02=09506000134352&37=12&10=LOT"
    );
}

#[test]
fn conversions_and_keys() {
    let d = ok("010950600013435221AB(C\u{1d}1729010110L1");
    assert_eq!(
        d.to_bracketed(),
        "(01)09506000134352(21)AB\\(C(17)290101(10)L1"
    );
    assert_eq!(
        d.to_element_string(),
        "010950600013435221AB(C\u{1d}1729010110L1"
    );
    assert_eq!(d.to_string(), d.to_bracketed());
    // EPC URNs (EPCIS primer examples).
    let d = ok("(01)04012345111118(21)SN0001A(10)L2024A");
    assert_eq!(
        d.to_sgtin_urn(7).unwrap(),
        "urn:epc:id:sgtin:4012345.011111.SN0001A"
    );
    assert_eq!(
        d.to_lgtin_urn(7).unwrap(),
        "urn:epc:class:lgtin:4012345.011111.L2024A"
    );
    assert_eq!(
        ok("(00)040987650000000010").to_sscc_urn(7).unwrap(),
        "urn:epc:id:sscc:4098765.0000000001"
    );
    assert_eq!(
        ok("(414)4098765000010(254)DOCK-01").to_sgln_urn(7).unwrap(),
        "urn:epc:id:sgln:4098765.00001.DOCK-01"
    );
    assert_eq!(
        ok("(414)4098765000010").to_sgln_urn(7).unwrap(),
        "urn:epc:id:sgln:4098765.00001.0"
    );
    assert_eq!(
        ok("(01)00300010123455(21)11").to_sgtin_urn(6).unwrap(),
        "urn:epc:id:sgtin:030001.0012345.11"
    );
    assert_eq!(
        ok("(01)09506000134352(21)A/B").to_sgtin_urn(7).unwrap(),
        "urn:epc:id:sgtin:9506000.013435.A%2FB"
    );
    let (back, l) = parse_epc_urn("urn:epc:id:sgtin:9506000.013435.A%2FB").unwrap();
    assert_eq!((back.get("21"), l), (Some("A/B"), 7));
    assert_eq!(
        ok("(01)09506000134352(21)A")
            .to_sgtin_urn(13)
            .unwrap_err()
            .code(),
        "conversion"
    );
    assert!(parse_epc_urn("urn:epc:id:sgtin:9506000.01343.A").is_err());
    let (gln, _) = parse_epc_urn("urn:epc:id:sgln:4098765.00001.0").unwrap();
    assert_eq!(
        (gln.get("414"), gln.get("254")),
        (Some("4098765000010"), None)
    );
    assert_eq!(
        gln.gln().map(|g| g.to_string()).as_deref(),
        Some("4098765000010")
    );
    // Typed accessors.
    let d = ok("(00)106141411234567897(410)9520123456788");
    assert_eq!(
        d.sscc().map(|s| s.to_string()).as_deref(),
        Some("106141411234567897")
    );
    assert_eq!(
        d.gln_of("410").map(|g| g.to_string()).as_deref(),
        Some("9520123456788")
    );
    assert!(d.product_identifier().is_none());
    assert_eq!(
        "95012345678903".parse::<Gtin>().map(|g| g.indicator()),
        Ok(9)
    );
}

#[test]
fn missing_separator_warnings() {
    let d = ok("010950600013435210ABC21XYZ");
    let w = d.warnings();
    assert_eq!(w.len(), 1);
    assert_eq!(
        (w[0].kind(), w[0].code(), w[0].ai(), w[0].offset()),
        (
            WarningKind::SuspectMissingSeparator,
            "suspect_missing_separator",
            "10",
            3
        )
    );
    // Primer example 2: DSCSA pack with the GS after the lot lost.
    let d = ok("01003123456789061726123110A1B2C321100000000001");
    assert_eq!(d.get("10"), Some("A1B2C321100000000001"));
    assert!(
        d.warnings()
            .iter()
            .any(|w| w.code() == "suspect_missing_separator")
    );
    // Expiry swallowed by a serial.
    let d = ok("010950600013435221SER1729010110L1");
    assert!(
        d.warnings().iter().any(|w| w.ai() == "21"),
        "{:?}",
        d.warnings()
    );
    // No warning for normal codes, or for AIs already present (a lot inside the serial).
    assert!(
        ok("01003123456789061726123110A1B2C3\u{1d}21100000000001")
            .warnings()
            .is_empty()
    );
    assert!(
        ok("01095060001343521729010110L1\u{1d}211234510987")
            .warnings()
            .is_empty()
    );
    // Bracketed and DL forms have explicit delimiters: no separator warning.
    assert!(ok("(01)09506000134352(10)ABC21XYZ").warnings().is_empty());
    // Day 00 in an expiry is flagged (GSCN 21-040), still valid.
    let d = ok("(01)09506000134352(17)290100");
    assert_eq!(
        d.warnings().first().map(|w| w.code()),
        Some("expiry_day_zero")
    );
    let quiet = ParseOptions {
        warnings: false,
        ..ParseOptions::default()
    };
    assert!(
        parse_str("010950600013435210ABC21XYZ", &quiet)
            .unwrap()
            .warnings()
            .is_empty()
    );
}

#[test]
fn every_error_kind_has_a_distinct_stable_code() {
    let mut codes: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
    assert!(codes.iter().all(|c| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
    }));
    let n = codes.len();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), n);
}

#[test]
fn messages_are_put_together_on_demand() {
    // Quoted input is kept inline, cut at 20 bytes per value with an ellipsis.
    let long_a = "A".repeat(30);
    let long_b = "B".repeat(30);
    let e = parse_str(
        &format!("(01)09506000134352(99){long_a}(99){long_b}"),
        &ParseOptions::default(),
    )
    .expect_err("repeated AI");
    assert_eq!(e.code(), "repeated_ai_different_values");
    assert_eq!(
        e.message(),
        format!(
            "AI (99): appears twice with different values (\"{}…\" and \"{}…\")",
            "A".repeat(20),
            "B".repeat(20)
        )
    );
    // Fixed words come back borrowed, and equal to Display.
    let e = parse_str("]d2", &ParseOptions::default()).expect_err("empty");
    assert!(matches!(e.message(), std::borrow::Cow::Borrowed(_)));
    assert_eq!(e.message(), e.to_string());
    // The unknown query key is the error's AI.
    let e = parse_str(
        "https://example.com/01/09506000134352?999=1",
        &ParseOptions::default(),
    )
    .expect_err("unknown AI");
    assert_eq!((e.code(), e.ai()), ("dl_unknown_ai", Some("999")));
    assert_eq!(
        e.to_string(),
        "query parameter 999 is not a GS1 Application Identifier"
    );
    // An unknown AI in an element string quotes what is there, separators shown.
    let e = parse_str(
        "]d20109506000134352\u{1d}\u{1d}10A",
        &ParseOptions::default(),
    )
    .expect_err("double separator");
    assert_eq!(
        e.to_string(),
        "no AI where one should start (\"<GS>10A...\"): two separators in a row, or a separator at the start"
    );
}
