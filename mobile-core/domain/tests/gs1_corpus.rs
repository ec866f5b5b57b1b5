//! The mixed GS1 corpus of the parse benchmark (`benches/data/gs1-mix.tsv`): generated here,
//! deterministically, so the committed file can be checked and rebuilt, and every line's
//! class is checked against the verdict swt gives it.
//!
//! `SWT_REGEN_GS1_CORPUS=1 cargo test -p swt-domain --test gs1_corpus` rewrites the file
//! after a change to the generator; without it, the test fails when the two drift apart.
//!
//! Format: one input per line, `<class>\t<input bytes as scanned>` (GS as byte 0x1D; no
//! input holds a tab or a line end). Classes starting `valid_` must parse, `invalid_` and
//! `plain_text` must fail, `not_gs1` must fail as `not_gs1`; `bare_digits` (8 to 18 digits
//! without a symbology identifier) are read as AI data, valid or not as that reading gives.

use swt_domain::gs1::{ParseOptions, mod10_check_digit, parse};

const GS: char = '\u{1d}';
const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/data/gs1-mix.tsv");

/// SplitMix64: small, deterministic on every platform, good enough to vary test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }

    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }

    fn alnum(&mut self, n: usize) -> String {
        const A: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789";
        (0..n).map(|_| char::from(A[self.below(A.len())])).collect()
    }

    /// A lot as printed on packs: letters, digits and now and then a '-' or '/'.
    fn lot(&mut self) -> String {
        let n = 4 + self.below(7);
        let mut s = self.alnum(n);
        if self.below(5) == 0 {
            s.insert(2, if self.below(2) == 0 { '-' } else { '/' });
        }
        s
    }

    /// A lot for a Digital Link path, where a '/' must be percent-encoded.
    fn dl_lot(&mut self) -> String {
        self.lot().replace('/', "%2F")
    }

    /// A serial: all digits (US DSCSA style) or alphanumeric (EU FMD style), 8–20 long.
    fn serial(&mut self) -> String {
        let n = 8 + self.below(13);
        if self.below(2) == 0 {
            self.digits(n)
        } else {
            self.alnum(n)
        }
    }

    /// A valid YYMMDD expiry; one in twenty uses day 00 (end of month).
    fn expiry(&mut self) -> String {
        let yy = 25 + self.below(8);
        let mm = 1 + self.below(12);
        let dd = if self.below(20) == 0 {
            0
        } else {
            1 + self.below(28)
        };
        format!("{yy:02}{mm:02}{dd:02}")
    }

    /// `n` digits whose last is the mod-10 check digit.
    fn key(&mut self, n: usize, first: &str) -> String {
        let body = format!("{first}{}", self.digits(n - 1 - first.len()));
        let cd = char::from(mod10_check_digit(body.as_bytes()));
        format!("{body}{cd}")
    }

    fn gtin(&mut self) -> String {
        // US NDC-based (003…), EU (04…, 05…, 08…) and case-level (1…) GTINs.
        let first = self.pick(&["003", "004", "005", "008", "03", "1", "2"]);
        self.key(14, first)
    }

    fn sscc(&mut self) -> String {
        let first = self.pick(&["0", "1", "3"]);
        self.key(18, first)
    }

    fn gln(&mut self) -> String {
        let first = self.pick(&["40", "50", "76", "9"]);
        self.key(13, first)
    }
}

/// The same key with a wrong check digit.
fn break_check(key: &str) -> String {
    let (body, cd) = key.split_at(key.len() - 1);
    let d = cd.as_bytes()[0] - b'0';
    format!("{body}{}", (d + 1 + (body.len() as u8 % 8)) % 10)
}

/// A pharma pack's element string (01, 17, 10, 21 in one of the orders seen on packs).
fn pharma(r: &mut Rng, gtin: &str, exp: &str) -> String {
    let (lot, serial) = (r.lot(), r.serial());
    let mut s = match r.below(4) {
        0 => format!("01{gtin}17{exp}10{lot}{GS}21{serial}"),
        1 => format!("01{gtin}21{serial}{GS}17{exp}10{lot}"),
        2 => format!("01{gtin}17{exp}21{serial}{GS}10{lot}"),
        _ => format!("01{gtin}10{lot}{GS}17{exp}21{serial}"),
    };
    if r.below(8) == 0 {
        // A national reimbursement number (Germany's PZN in 710) after the four.
        s = format!("{s}{GS}710{}", r.digits(8));
    }
    s
}

fn valid_element(r: &mut Rng) -> String {
    match r.below(7) {
        0 | 1 => {
            let (g, e) = (r.gtin(), r.expiry());
            pharma(r, &g, &e)
        }
        2 => format!("00{}", r.sscc()),
        3 => format!(
            "00{}02{}37{}{GS}10{}",
            r.sscc(),
            r.gtin(),
            1 + r.below(200),
            r.lot()
        ),
        4 => format!("01{}3103{}", r.gtin(), r.digits(6)),
        5 => {
            let n = 1 + r.below(6);
            format!("414{}254{}", r.gln(), r.alnum(n))
        }
        _ => format!("01{}11{}10{}", r.gtin(), r.expiry(), r.lot()),
    }
}

fn valid_scanner(r: &mut Rng) -> String {
    match r.below(8) {
        0 => format!("]C100{}", r.sscc()),
        1 => format!(
            "]C100{}02{}37{}{GS}10{}",
            r.sscc(),
            r.gtin(),
            1 + r.below(99),
            r.lot()
        ),
        2 => format!("]e001{}3103{}", r.gtin(), r.digits(6)),
        3 => {
            let (g, e) = (r.gtin(), r.expiry());
            format!("]Q3{}", pharma(r, &g, &e))
        }
        4 => {
            let (g, e) = (r.gtin(), r.expiry());
            format!("]J1{}", pharma(r, &g, &e))
        }
        5 => format!("]E0{}", r.key(13, "4")),
        6 => format!("]E4{}", r.key(8, "9")),
        _ => format!("]C101{}15{}10{}", r.gtin(), r.expiry(), r.lot()),
    }
}

fn valid_bracketed(r: &mut Rng) -> String {
    match r.below(5) {
        0 | 1 => format!(
            "(01){}(17){}(10){}(21){}",
            r.gtin(),
            r.expiry(),
            r.lot(),
            r.serial()
        ),
        2 => format!("(00){}", r.sscc()),
        3 => format!("(01){}(3103){}(15){}", r.gtin(), r.digits(6), r.expiry()),
        _ => format!("(414){}(254){}", r.gln(), r.alnum(3)),
    }
}

fn valid_dl(r: &mut Rng) -> String {
    let host = r.pick(&[
        "https://id.gs1.org",
        "https://example.com",
        "https://brand.example/dl",
        "HTTPS://ID.GS1.ORG",
        "http://qr.example.org",
    ]);
    let uri = match r.below(6) {
        0 | 1 => format!(
            "{host}/01/{}/10/{}/21/{}?17={}",
            r.gtin(),
            r.dl_lot(),
            r.serial(),
            r.expiry()
        ),
        2 => format!("{host}/01/{}", r.gtin()),
        3 => format!("{host}/01/{}/21/{}", r.gtin(), r.serial()),
        4 => format!("{host}/00/{}", r.sscc()),
        _ => format!(
            "{host}/01/{}/10/AB%2F{}?17={}&linkType=gs1:pip",
            r.gtin(),
            r.digits(3),
            r.expiry()
        ),
    };
    match r.below(6) {
        0 => format!("]Q1{uri}"),
        1 => format!("]d1{uri}"),
        _ => uri,
    }
}

fn invalid_check_digit(r: &mut Rng) -> String {
    let bad = break_check(&r.gtin());
    let (e, l, s) = (r.expiry(), r.dl_lot(), r.serial());
    match r.below(6) {
        0 | 1 => format!("]d201{bad}17{e}10{l}{GS}21{s}").replace("%2F", "/"),
        2 => format!("01{bad}17{e}10{l}{GS}21{s}").replace("%2F", "/"),
        3 => format!("(01){bad}(17){e}(10){l}(21){s}").replace("%2F", "/"),
        4 => format!("https://id.gs1.org/01/{bad}/10/{l}/21/{s}?17={e}"),
        _ => format!("]C100{}", break_check(&r.sscc())),
    }
}

fn invalid_date(r: &mut Rng) -> String {
    let g = r.gtin();
    let date = r.pick(&["261301", "260001", "250230", "270431", "280532", "290229"]);
    let (l, s) = (r.dl_lot(), r.serial());
    match r.below(4) {
        0 | 1 => format!("]d201{g}17{date}10{l}{GS}21{s}").replace("%2F", "/"),
        2 => format!("(01){g}(17){date}(10){l}(21){s}").replace("%2F", "/"),
        _ => format!("https://example.com/01/{g}/10/{l}/21/{s}?17={date}"),
    }
}

fn invalid_unknown_ai(r: &mut Rng) -> String {
    let g = r.gtin();
    let ai = r.pick(&["04", "05", "06", "19", "26", "27", "28", "29", "32", "38"]);
    match r.below(5) {
        0 | 1 => format!("]d201{g}{ai}{}", r.digits(6)),
        2 => format!("01{g}{ai}{}", r.alnum(5)),
        3 => format!("(01){g}({ai}){}", r.digits(4)),
        _ => format!("https://example.com/01/{g}?999={}", r.digits(3)),
    }
}

fn invalid_other(r: &mut Rng) -> String {
    let g = r.gtin();
    match r.below(12) {
        // A lot longer than 20: a lost separator merged it with what followed.
        0 => format!("]d201{g}10{}21{}", r.alnum(16), r.alnum(8)),
        // A space and a non-ASCII byte are outside character set 82.
        1 => format!("]d201{g}10AB CD{GS}21{}", r.serial()),
        2 => format!("01{g}21SN\u{e4}{}", r.digits(4)),
        // A serial without its GTIN.
        3 => format!("]d221{}", r.serial()),
        // A cut-off GTIN.
        4 => format!("]d201{}", r.digits(9)),
        5 => "]d2".to_owned(),
        6 => format!("https://example.com/01/{g}?21={}", r.serial()),
        7 => format!("https://example.com/gtin/{g}/lot/{}", r.lot()),
        8 => format!("(01){g}(10"),
        9 => format!("01{g}10AB^C"),
        10 => format!("{GS}01{g}"),
        _ => format!("]X0{}", r.alnum(10)),
    }
}

fn not_gs1(r: &mut Rng) -> String {
    let g = r.gtin();
    match r.below(6) {
        0 => format!("]d1WH-{}-{:02}", r.alnum(3), r.below(40)),
        1 => format!("]Q1Hello from {}", r.alnum(6)),
        2 => format!("]Q1HTtps://id.gs1.org/01/{g}"),
        3 => format!("HtTpS://id.gs1.org/01/{g}/21/{}", r.serial()),
        4 => format!("Https://example.com/01/{g}"),
        _ => format!("]J0{}", r.alnum(12)),
    }
}

fn plain_text(r: &mut Rng) -> String {
    match r.below(4) {
        0 => format!("LOC-{}-{:02}", r.alnum(2), r.below(50)),
        1 => format!("HELLO {}", r.alnum(5)),
        2 => format!("A{}", r.digits(7)),
        _ => format!("Order #{}", r.digits(6)),
    }
}

fn bare_digits(r: &mut Rng) -> String {
    match r.below(5) {
        0 => r.gtin(),
        1 => r.key(13, "40"),
        2 => r.sscc(),
        3 => r.key(8, "9"),
        // 14 digits that read as AI data: (17) expiry and a (10) lot.
        _ => format!("17{}10{}", r.expiry(), r.digits(4)),
    }
}

/// The classes and how many lines each gets: about three in four reads are valid, most of
/// them pharma DataMatrix, as at a pharma warehouse's receiving dock.
/// Makes one input of a class.
type Make = fn(&mut Rng) -> String;

const CLASSES: &[(&str, usize, Make)] = &[
    ("valid_pharma_dm", 1200, |r| {
        let (g, e) = (r.gtin(), r.expiry());
        format!("]d2{}", pharma(r, &g, &e))
    }),
    ("valid_element", 400, valid_element),
    ("valid_scanner", 400, valid_scanner),
    ("valid_bracketed", 300, valid_bracketed),
    ("valid_dl", 400, valid_dl),
    ("invalid_check_digit", 250, invalid_check_digit),
    ("invalid_date", 200, invalid_date),
    ("invalid_unknown_ai", 200, invalid_unknown_ai),
    ("invalid_other", 250, invalid_other),
    ("not_gs1", 200, not_gs1),
    ("plain_text", 100, plain_text),
    ("bare_digits", 100, bare_digits),
];

/// The corpus, lines shuffled so that a pass over the file meets the classes mixed.
fn generate() -> String {
    let mut r = Rng(0x5357_5447_5331); // "SWTGS1"
    let mut lines: Vec<String> = Vec::new();
    for &(class, n, make) in CLASSES {
        for _ in 0..n {
            lines.push(format!("{class}\t{}\n", make(&mut r)));
        }
    }
    // Fisher–Yates with the same generator.
    for i in (1..lines.len()).rev() {
        let j = r.below(i + 1);
        lines.swap(i, j);
    }
    lines.concat()
}

#[test]
fn committed_corpus_is_what_the_generator_writes() {
    let want = generate();
    if std::env::var_os("SWT_REGEN_GS1_CORPUS").is_some() {
        std::fs::write(PATH, &want).expect("write the corpus");
    }
    let have = std::fs::read_to_string(PATH).unwrap_or_default();
    assert!(
        have == want,
        "{PATH} differs from the generator: \
         SWT_REGEN_GS1_CORPUS=1 cargo test -p swt-domain --test gs1_corpus"
    );
}

#[test]
fn every_line_gets_the_verdict_of_its_class() {
    let opts = ParseOptions::default();
    let mut wrong = Vec::new();
    for line in generate().lines() {
        let Some((class, input)) = line.split_once('\t') else {
            continue;
        };
        let got = parse(input.as_bytes(), &opts);
        let fine = match (class, &got) {
            ("bare_digits", _) => true,
            ("not_gs1", Err(e)) => e.code() == "not_gs1",
            (c, Ok(_)) => c.starts_with("valid_"),
            (c, Err(e)) => !c.starts_with("valid_") && e.code() != "not_gs1",
        };
        if !fine {
            wrong.push(format!(
                "{class} {input:?}: {}",
                match got {
                    Ok(d) => format!("valid {d}"),
                    Err(e) => format!("{} {e}", e.code()),
                }
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
