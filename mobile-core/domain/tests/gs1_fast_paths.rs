//! Guards for the shortcuts of the fast parse path: the '^' check that only runs when an
//! element string fails to split, and the character-set checks skipped when the splitter
//! already saw that every byte is in the set. Each byte value is tried in each position
//! kind against an oracle written from GenSpecs §7.11, in every input form.

use swt_domain::gs1::{ParseOptions, parse};

const CSET82: &[u8] =
    b"!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

fn code(input: &[u8], opts: &ParseOptions) -> Result<(), String> {
    parse(input, opts)
        .map(|_| ())
        .map_err(|e| e.code().to_owned())
}

#[test]
fn caret_anywhere_is_reported_as_caret() {
    let valid = b"]d201095060001343521729010110ABC123\x1d21SN001";
    let opts = ParseOptions::default();
    assert_eq!(code(valid, &opts), Ok(()));
    for i in 3..valid.len() {
        let mut v = valid.to_vec();
        v[i] = b'^';
        assert_eq!(code(&v, &opts), Err("caret_in_data".into()), "position {i}");
        let e = parse(&v, &opts).err().and_then(|e| e.position());
        assert_eq!(e, Some(i), "position {i}");
    }
    let lead = ParseOptions {
        allow_leading_fnc1: true,
        ..ParseOptions::default()
    };
    assert_eq!(
        code(b"\x1d0109506000134352^", &lead),
        Err("caret_in_data".into())
    );
}

#[test]
fn every_byte_in_a_lot_follows_character_set_82() {
    let opts = ParseOptions::default();
    for b in 0..=255u8 {
        let mut es = b"]d20109506000134352100AB".to_vec();
        es[22] = b;
        let mut br = b"(01)09506000134352(10)AB".to_vec();
        br[22] = b;
        let want = if CSET82.contains(&b) {
            Ok(())
        } else if b == b'^' {
            Err("caret_in_data".to_owned())
        } else {
            Err("bad_charset_cset82".to_owned())
        };
        if b != 0x1d {
            assert_eq!(code(&es, &opts), want, "element string, byte {b:#04x}");
        }
        if b != b'(' && b != b'^' {
            assert_eq!(
                code(&br, &opts).map_err(|_| ()),
                want.clone().map_err(|_| ()),
                "bracketed, byte {b:#04x}"
            );
        }
    }
}

#[test]
fn every_byte_in_a_gtin_or_date_must_be_a_digit() {
    let opts = ParseOptions::default();
    for b in (0..=255u8).filter(|&b| b != 0x1d && b != b'^') {
        let mut gtin = b"]d20109506000134352".to_vec();
        gtin[10] = b;
        let mut date = b"]d2010950600013435217290101".to_vec();
        date[23] = b;
        let mut dl = b"https://id.gs1.org/01/09506000134352?17=290101".to_vec();
        dl[45] = b;
        if b.is_ascii_digit() {
            continue;
        }
        assert_eq!(
            code(&gtin, &opts),
            Err("bad_charset_numeric".into()),
            "GTIN, byte {b:#04x}"
        );
        assert_eq!(
            code(&date, &opts),
            Err("bad_charset_numeric".into()),
            "date, byte {b:#04x}"
        );
        // In a URI most bytes are already illegal URI characters; those that are legal
        // must still fail the numeric check.
        let r = code(&dl, &opts);
        assert!(r.is_err(), "DL date, byte {b:#04x}");
    }
}
