//! Fuzz target: `swt_domain::gs1::parse` must never panic, whatever the bytes, and whatever
//! it accepts must convert and re-parse to the same AIs.
//! Run from `mobile-core/`: `cargo fuzz run gs1_parse -s none -- -max_total_time=60`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use swt_domain::gs1::{ParseOptions, parse, parse_str};

fuzz_target!(|data: &[u8]| {
    let std_opts = ParseOptions::default();
    let sub = ParseOptions {
        separator_substitute: Some(b'~'),
        allow_leading_fnc1: true,
        ..ParseOptions::default()
    };
    for opts in [&std_opts, &sub] {
        let parsed = parse(data, opts);
        if let Err(e) = &parsed {
            // Messages are put together on demand, from facts and quoted input bytes.
            assert!(!e.to_string().is_empty());
        }
        if let Ok(d) = parsed {
            let _ = d.warnings(); // worked out on demand
            if d.is_gs1() {
                let pairs: Vec<(String, String)> =
                    d.iter().map(|x| (x.ai.to_owned(), x.value.to_owned())).collect();
                let again = parse_str(&d.to_bracketed(), &std_opts)
                    .expect("bracketed form of valid data re-parses");
                let back: Vec<(String, String)> =
                    again.iter().map(|x| (x.ai.to_owned(), x.value.to_owned())).collect();
                assert_eq!(pairs, back);
                let _ = d.to_element_string();
                let _ = d.to_digital_link("https://id.gs1.org");
                let _ = d.product_identifier_at(2026);
                for l in 6..=12 {
                    let _ = d.to_sgtin_urn(l);
                    let _ = d.to_sscc_urn(l);
                }
            }
        }
    }
    if let Err(e) = swt_domain::gs1::parse_keyed(data) {
        assert!(!e.to_string().is_empty());
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = swt_domain::gs1::parse_epc_urn(s);
        let _ = s.parse::<swt_domain::gs1::Gtin>();
    }
});
