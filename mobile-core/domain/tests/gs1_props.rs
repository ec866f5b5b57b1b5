//! Property tests of the GS1 engine: every conversion round-trips exactly, and no input
//! (random bytes, mutated codes, 100 kB inputs) makes the parser panic.

// Integration tests: an unwrap that fails is a failed test (clippy.toml allows it only
// inside #[test] functions, not in the helpers beside them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use swt_domain::gs1::{
    Gs1Data, Gtin, ParseOptions, mod10_check_digit, parse, parse_epc_urn, parse_keyed, parse_str,
};

const CSET82: &str =
    "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

fn cset82(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        proptest::sample::select(CSET82.as_bytes().to_vec()),
        1..=max,
    )
    .prop_map(|v| String::from_utf8(v).unwrap())
}

fn with_check(body: String) -> String {
    let cd = mod10_check_digit(body.as_bytes()) as char;
    body + &cd.to_string()
}

fn gtin() -> impl Strategy<Value = String> {
    "[0-9]{13}".prop_map(with_check)
}

fn yymmdd() -> impl Strategy<Value = String> {
    (0u8..100, 1u8..=12, 0u8..=28).prop_map(|(y, m, d)| format!("{y:02}{m:02}{d:02}"))
}

/// A valid pack: GTIN plus any of serial, lot, expiry, NHRN, in a random order.
fn pack() -> impl Strategy<Value = Vec<(String, String)>> {
    (
        gtin(),
        proptest::option::of(cset82(20)),
        proptest::option::of(cset82(20)),
        proptest::option::of(yymmdd()),
        proptest::option::of(cset82(20)),
        any::<proptest::sample::Index>(),
    )
        .prop_map(|(g, serial, lot, exp, nhrn, rot)| {
            let mut v = vec![("01".to_owned(), g)];
            if let Some(s) = serial {
                v.push(("21".into(), s));
            }
            if let Some(l) = lot {
                v.push(("10".into(), l));
            }
            if let Some(e) = exp {
                v.push(("17".into(), e));
            }
            if let Some(n) = nhrn {
                v.push(("714".into(), n));
            }
            let k = rot.index(v.len());
            v.rotate_left(k);
            v
        })
}

fn data(pairs: &[(String, String)]) -> Gs1Data {
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(a, v)| (a.as_str(), v.as_str()))
        .collect();
    Gs1Data::from_ais(&refs).expect("generated data is valid")
}

fn pairs_of(d: &Gs1Data) -> Vec<(String, String)> {
    d.iter()
        .map(|x| (x.ai.to_owned(), x.value.to_owned()))
        .collect()
}

fn sorted(mut v: Vec<(String, String)>) -> Vec<(String, String)> {
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn element_string_round_trips(p in pack()) {
        let d = data(&p);
        let es = d.to_element_string();
        let back = parse_str(&es, &ParseOptions::default()).unwrap();
        prop_assert_eq!(pairs_of(&back), p.clone());
        prop_assert_eq!(back.to_element_string(), es.clone());
        // The same behind a symbology identifier.
        let scanned = parse_str(&format!("]d2{es}"), &ParseOptions::default()).unwrap();
        prop_assert_eq!(pairs_of(&scanned), p);
    }

    #[test]
    fn bracketed_round_trips(p in pack()) {
        let d = data(&p);
        let br = d.to_bracketed();
        let back = parse_str(&br, &ParseOptions::default()).unwrap();
        prop_assert_eq!(pairs_of(&back), p);
        prop_assert_eq!(back.to_bracketed(), br);
    }

    #[test]
    fn digital_link_round_trips(p in pack(), domain in "[a-z]{1,10}\\.(com|org|example)") {
        let d = data(&p);
        let uri = d.to_digital_link(&format!("https://{domain}")).unwrap();
        let back = parse_str(&uri, &ParseOptions::default()).unwrap();
        prop_assert_eq!(sorted(pairs_of(&back)), sorted(p));
        prop_assert_eq!(back.to_digital_link(&format!("https://{domain}")).unwrap(), uri);
    }

    #[test]
    fn epc_urns_round_trip(g in gtin(), serial in cset82(20), lot in cset82(20), gcp_len in 6usize..=12) {
        let d = data(&[("01".into(), g.clone()), ("21".into(), serial.clone())]);
        let urn = d.to_sgtin_urn(gcp_len).unwrap();
        let (back, l) = parse_epc_urn(&urn).unwrap();
        prop_assert_eq!(l, gcp_len);
        prop_assert_eq!(pairs_of(&back), pairs_of(&d));
        prop_assert_eq!(back.to_sgtin_urn(gcp_len).unwrap(), urn);
        let d = data(&[("01".into(), g), ("10".into(), lot)]);
        let urn = d.to_lgtin_urn(gcp_len).unwrap();
        prop_assert_eq!(pairs_of(&parse_epc_urn(&urn).unwrap().0), pairs_of(&d));
    }

    #[test]
    fn sscc_and_sgln_urns_round_trip(body in "[0-9]{17}", gln in "[0-9]{12}", ext in cset82(20), gcp_len in 6usize..=12) {
        let sscc = data(&[("00".into(), with_check(body))]);
        let urn = sscc.to_sscc_urn(gcp_len).unwrap();
        prop_assert_eq!(pairs_of(&parse_epc_urn(&urn).unwrap().0), pairs_of(&sscc));
        prop_assume!(ext != "0"); // "0" means "no extension" in an SGLN
        let loc = data(&[("414".into(), with_check(gln)), ("254".into(), ext)]);
        let urn = loc.to_sgln_urn(gcp_len).unwrap();
        prop_assert_eq!(pairs_of(&parse_epc_urn(&urn).unwrap().0), pairs_of(&loc));
    }

    #[test]
    fn gtin_forms_normalise_and_display(body in "[0-9]{7,13}") {
        prop_assume!([7usize, 11, 12, 13].contains(&body.len()));
        let g = with_check(body);
        let parsed: Gtin = g.parse().unwrap();
        prop_assert_eq!(parsed.as_str().len(), 14);
        prop_assert!(parsed.as_str().ends_with(&g));
        prop_assert_eq!(parsed.to_string().parse::<Gtin>().unwrap(), parsed);
        let json = serde_json::to_string(&parsed).unwrap();
        prop_assert_eq!(serde_json::from_str::<Gtin>(&json).unwrap(), parsed);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let sub = ParseOptions { separator_substitute: Some(b'~'), allow_leading_fnc1: true, ..ParseOptions::default() };
        let keyed = ParseOptions { keyed_in_keys: true, ..ParseOptions::default() };
        for opts in [&ParseOptions::default(), &sub, &keyed] {
            match parse(&bytes, opts) {
                // Messages and warnings are put together on demand: that must not panic
                // either, and a message is never empty.
                Ok(d) => {
                    for w in d.warnings() {
                        prop_assert!(!w.message().is_empty());
                    }
                }
                Err(e) => {
                    prop_assert!(!e.message().is_empty());
                    prop_assert_eq!(e.message(), e.to_string());
                    let _ = e.ai();
                }
            }
        }
        if let Err(e) = parse_keyed(&bytes) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn mutated_codes_never_panic(p in pack(), cut in any::<proptest::sample::Index>(), junk in proptest::collection::vec(any::<u8>(), 0..8)) {
        let d = data(&p);
        for form in [d.to_element_string(), d.to_bracketed(), d.to_digital_link("https://id.gs1.org").unwrap()] {
            let mut b = form.into_bytes();
            let at = cut.index(b.len() + 1);
            b.splice(at..at, junk.iter().copied());
            if let Ok(x) = parse(&b, &ParseOptions::default()) {
                // Whatever is accepted must convert and re-parse to the same AIs.
                let again = parse_str(&x.to_bracketed(), &ParseOptions::default());
                if x.is_gs1() {
                    prop_assert_eq!(pairs_of(&again.unwrap()), pairs_of(&x));
                }
            }
        }
    }
}

#[test]
fn large_inputs_are_rejected_quickly_without_panic() {
    let opts = ParseOptions::default();
    let mut inputs: Vec<Vec<u8>> = vec![
        vec![b'1'; 100_000],
        vec![0x1d; 100_000],
        vec![b'('; 100_000],
        vec![0xff; 100_000],
        b"]d2"
            .iter()
            .copied()
            .chain(std::iter::repeat_n(b'9', 100_000))
            .collect(),
        b"(01)09506000134352(10)"
            .iter()
            .copied()
            .chain(std::iter::repeat_n(b'A', 100_000))
            .collect(),
        b"https://a/"
            .iter()
            .copied()
            .chain(b"01/09506000134352/".iter().copied().cycle().take(100_000))
            .collect(),
        b"https://a/01/09506000134352?"
            .iter()
            .copied()
            .chain(b"99=A&".iter().copied().cycle().take(100_000))
            .collect(),
    ];
    // Many valid elements: 0109506000134352 repeated (same value) is valid and long.
    inputs.push(
        b"0109506000134352"
            .iter()
            .copied()
            .cycle()
            .take(16 * 6000)
            .collect(),
    );
    for i in &inputs {
        let t = std::time::Instant::now();
        let _ = parse(i, &opts);
        eprintln!(
            "{:>8} bytes starting {:?}: {:?}",
            i.len(),
            String::from_utf8_lossy(&i[..12]),
            t.elapsed()
        );
    }
    let repeated = parse(inputs.last().unwrap(), &opts).unwrap();
    assert_eq!(repeated.len(), 6000);
    // Speed, quadratic blow-ups included, is the parse benchmark's to show, not this test's.
}
