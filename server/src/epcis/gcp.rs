//! GS1 Company Prefix lengths: what an EPC URN needs and a GTIN, SSCC or GLN does not say
//! (EPCIS primer §4). Looked up in configured overrides first (prefixes a partner's URNs
//! showed us, or ones the table gets wrong), then in GS1's GCP length table.

use std::collections::BTreeMap;
use std::sync::LazyLock;

/// GS1's "GCP Length Prefix Format List" as `<prefix> <length>` lines, sorted, no prefix
/// a prefix of another (provenance and licence in `data/SOURCES.md`).
const TABLE: &str = include_str!("data/gcp-lengths.txt");

/// The table's entries, split once on first use (a URN export is the only reader).
static ENTRIES: LazyLock<Vec<(&'static str, u8)>> = LazyLock::new(|| {
    TABLE
        .lines()
        .filter_map(|l| {
            let (p, n) = l.split_once(' ')?;
            Some((p, n.parse().ok()?))
        })
        .collect()
});

/// GCP lengths: overrides by prefix, then GS1's table.
#[derive(Debug, Clone, Default)]
pub struct GcpLengths {
    overrides: BTreeMap<String, u8>,
}

impl GcpLengths {
    /// GS1's table plus `overrides` (prefix of a key's digits → GCP length; the longest
    /// matching prefix wins).
    pub fn new(overrides: BTreeMap<String, u8>) -> Self {
        Self { overrides }
    }

    /// The GCP length of a key whose company prefix starts at its first digit (a GTIN
    /// without its indicator digit, an SSCC without its extension digit, a GLN).
    pub fn of(&self, digits: &str) -> Option<usize> {
        let own = (1..=digits.len())
            .rev()
            .find_map(|i| self.overrides.get(digits.get(..i)?));
        let n = match own {
            Some(n) => *n,
            None => {
                // The set of prefixes is prefix-free, so the one a key starts with is the
                // greatest entry not after the key.
                let i = ENTRIES.partition_point(|(p, _)| *p <= digits);
                let (p, n) = ENTRIES.get(i.checked_sub(1)?)?;
                if !digits.starts_with(p) {
                    return None;
                }
                *n
            }
        };
        let n = usize::from(n);
        (6..=12).contains(&n).then_some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_come_from_the_gs1_table() {
        let t = GcpLengths::default();
        // The primer's examples (TDS §6–7, GS1 US): 4012345 is 7 digits, 030001 six, the
        // German PZN and French CIP ranges 12.
        assert_eq!(t.of("401234511111"), Some(7));
        assert_eq!(t.of("030001012345"), Some(6));
        assert_eq!(t.of("415001234567"), Some(12));
        assert_eq!(t.of("340012345678"), Some(12));
        assert_eq!(t.of("061414100001"), Some(7));
        // Not in the table (no company prefixes issued there in this snapshot).
        assert_eq!(t.of("409876500001"), None);
        assert_eq!(t.of(""), None);
    }

    #[test]
    fn overrides_win_and_the_longest_one_counts() {
        let t = GcpLengths::new(BTreeMap::from([
            ("4098".to_owned(), 7),
            ("40987651".to_owned(), 9),
            ("4012345".to_owned(), 9),
            ("999".to_owned(), 13),
        ]));
        assert_eq!(t.of("409876500001"), Some(7));
        assert_eq!(t.of("409876510001"), Some(9));
        assert_eq!(t.of("401234511111"), Some(9));
        // A length no URN can have is no length.
        assert_eq!(t.of("999000000000"), None);
    }
}
