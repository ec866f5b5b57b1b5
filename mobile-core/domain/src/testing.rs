//! Fixtures for tests, benchmarks and load tools of this crate and the crates above it
//! (enabled by the `testing` feature; never part of a product build): a small
//! deterministic random generator and realistic pack scans and barcodes, so that every
//! benchmark and test draws its data the same way.

// Fixtures panic on a bad constant: that is a bug in the fixture, found by the first test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use automerge::ActorId;

use crate::doc::{Header, TaskKind, TaskStatus};
use crate::model::{Action, Feedback, Identifiers, Scan, ScanId};

/// A picking task header at `site-1` for order SO-42.
pub fn header() -> Header {
    Header {
        kind: TaskKind::Picking,
        site: "site-1".into(),
        refs: BTreeMap::from([("order".to_string(), "SO-42".to_string())]),
        status: TaskStatus::Open,
    }
}

/// Scan number `n` of a device: a valid pack DataMatrix with serial `SER<n>`.
pub fn scan(device: &str, user: &str, n: u64) -> Scan {
    let serial = format!("SER{n:010}");
    let raw = format!("0109506000134352{}{serial}\u{1d}17261231{}LOT1", "21", "10");
    Scan {
        id: ScanId::from_device_counter(device, n).unwrap(),
        raw: raw.into_bytes(),
        ids: Identifiers {
            gtin: Some("09506000134352".parse().unwrap()),
            serial: Some(serial),
            lot: Some("LOT1".into()),
            expiry: Some("261231".into()),
            sscc: None,
        },
        action: Action::Pick,
        user: user.into(),
        device: device.into(),
        location: None,
        device_time_ms: 1_764_000_000_000 + n,
        feedback: Feedback::Ok,
        parent: None,
    }
}

/// The actor the server writes with in these fixtures.
pub fn server_actor() -> ActorId {
    ActorId::from(b"server-actor-0001".as_slice())
}

/// A small deterministic random generator (xorshift64): tests and benchmarks need
/// variety and runs that repeat from a seed, not cryptography.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed` (0, which xorshift never leaves, is replaced).
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A number in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi.saturating_sub(lo).saturating_add(1)).max(1)
    }

    /// An index into a slice of `len` items.
    pub fn index(&mut self, len: usize) -> usize {
        usize::try_from(self.below(len as u64)).unwrap_or(0)
    }

    /// One of `items` (which must not be empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// A pack serial as FMD and DSCSA packs carry them: 12 to 20 letters and digits.
    pub fn serial(&mut self) -> String {
        let len = 12 + self.index(9);
        (0..len).map(|_| char::from(*self.pick(ALNUM))).collect()
    }
}

/// GTINs of the realistic scans (valid check digits).
pub const GTINS: [&str; 5] = [
    "09506000134352",
    "04150123456782",
    "00312345678906",
    "05012345678900",
    "07612345000015",
];

/// Lots of the realistic scans.
pub const LOTS: [&str; 3] = ["A1B2C3", "LOT2026X", "7788"];

/// Characters of generated serials.
pub const ALNUM: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789";

/// Scan number `n` of a realistic receiving session at `DOCK-3`: one of [`GTINS`], a
/// random serial, one of [`LOTS`], scanned about every 1.5 s from `t0` (ms since the
/// epoch).
pub fn realistic_scan(rng: &mut Rng, id: ScanId, n: u64, t0: u64) -> Scan {
    let gtin = *rng.pick(&GTINS);
    let lot = *rng.pick(&LOTS);
    let serial = rng.serial();
    Scan {
        id,
        raw: format!("01{gtin}21{serial}\u{1d}17271231\u{1d}10{lot}").into_bytes(),
        ids: Identifiers {
            gtin: Some(gtin.parse().unwrap()),
            serial: Some(serial),
            lot: Some(lot.into()),
            expiry: Some("271231".into()),
            sscc: None,
        },
        action: Action::Receive,
        user: "u-0042".into(),
        device: "dev-7f3a".into(),
        location: Some("DOCK-3".into()),
        device_time_ms: t0 + n * 1500 + rng.below(900),
        feedback: Feedback::Ok,
        parent: None,
    }
}

/// What a scanner reads from a pack's DataMatrix of `gtin`: symbology identifier, GTIN,
/// expiry, one of [`LOTS`] and a random serial, with the group separators a real read
/// has.
pub fn pack_barcode(rng: &mut Rng, gtin: &str) -> String {
    let lot = *rng.pick(&LOTS);
    let serial = rng.serial();
    format!("]d201{gtin}17281231\u{1d}10{lot}\u{1d}21{serial}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_repeats_from_its_seed_and_stays_in_range() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let first: Vec<u64> = (0..100).map(|_| a.next_u64()).collect();
        assert_eq!(first, (0..100).map(|_| b.next_u64()).collect::<Vec<_>>());
        for _ in 0..1000 {
            assert!(a.below(9) < 9);
            assert!((3..=5).contains(&a.between(3, 5)));
            assert!((12..=20).contains(&a.serial().len()));
        }
        assert_ne!(
            Rng::new(0).next_u64(),
            0,
            "a zero seed does not stick at zero"
        );
    }

    #[test]
    fn realistic_barcodes_parse_to_their_scan() {
        let mut rng = Rng::new(1);
        for gtin in GTINS {
            let raw = pack_barcode(&mut rng, gtin);
            let parsed =
                crate::gs1::parse(raw.as_bytes(), &crate::gs1::ParseOptions::default()).unwrap();
            let pi = parsed.product_identifier().unwrap();
            assert_eq!(pi.gtin.as_str(), gtin);
        }
        let s = realistic_scan(&mut rng, ScanId::parse("d.1").unwrap(), 1, 0);
        assert!(GTINS.contains(&s.ids.gtin.unwrap().as_str()));
    }
}
