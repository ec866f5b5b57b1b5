//! Check digits and check character pairs (GenSpecs §7.9).

/// The mod-10 check digit (ASCII) for `digits` (the data without its check digit).
///
/// Weights 3, 1, 3, ... start from the rightmost digit, so leading zeros change nothing.
/// `digits` must be ASCII digits; other bytes give a meaningless (but non-panicking) result.
#[inline]
pub fn mod10_check_digit(digits: &[u8]) -> u8 {
    // Weight 3 falls on every other digit counting from the right: sum the digits at even
    // and at odd positions from the left, then weigh by the parity of the length.
    let val = |d: u8| {
        let v = d.wrapping_sub(b'0');
        // Digits skip the division; other bytes keep the historical `% 10` result.
        u32::from(if v < 10 { v } else { v % 10 })
    };
    let (mut even, mut odd) = (0u32, 0u32);
    let mut pairs = digits.chunks_exact(2);
    for pair in &mut pairs {
        if let [a, b] = *pair {
            even += val(a);
            odd += val(b);
        }
    }
    if let [a] = *pairs.remainder() {
        even += val(a);
    }
    let sum = if digits.len() % 2 == 1 {
        even * 3 + odd
    } else {
        even + odd * 3
    };
    b'0' + ((10 - sum % 10) % 10) as u8
}

/// [`mod10_check_digit`] for data already known to be ASCII digits (a component of
/// character set N that passed its check): no per-byte guard, about a third of the work
/// on the hot path of every GTIN and SSCC. Other bytes give a meaningless digit.
#[inline]
pub(crate) fn mod10_check_digit_of_digits(digits: &[u8]) -> u8 {
    // As in `mod10_check_digit`: sums at even and odd positions from the left, weighed by
    // the parity of the length, with no per-byte branch (the loop vectorises).
    let (mut even, mut odd) = (0u32, 0u32);
    let mut pairs = digits.chunks_exact(2);
    for pair in &mut pairs {
        if let [a, b] = *pair {
            even += u32::from(a.wrapping_sub(b'0'));
            odd += u32::from(b.wrapping_sub(b'0'));
        }
    }
    if let [a] = *pairs.remainder() {
        even += u32::from(a.wrapping_sub(b'0'));
    }
    let sum = if digits.len() % 2 == 1 {
        even * 3 + odd
    } else {
        even + odd * 3
    };
    b'0' + ((10 - sum % 10) % 10) as u8
}

/// Whether the last digit of `key` is its correct mod-10 check digit.
#[inline]
pub fn mod10_is_valid(key: &[u8]) -> bool {
    match key.split_last() {
        Some((&cd, body)) if !body.is_empty() && key.iter().all(u8::is_ascii_digit) => {
            mod10_check_digit(body) == cd
        }
        _ => false,
    }
}

/// Character set 82 in weight order, used by the check character pair.
const CSET82_ORDER: &[u8] =
    b"!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";
/// Character set 32, the alphabet of the check character pair.
const CSET32: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";

/// Weights of the check character pair: primes, applied from the rightmost data character.
const PRIMES: [u32; 97] = [
    2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
    101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167, 173, 179, 181, 191, 193,
    197, 199, 211, 223, 227, 229, 233, 239, 241, 251, 257, 263, 269, 271, 277, 281, 283, 293, 307,
    311, 313, 317, 331, 337, 347, 349, 353, 359, 367, 373, 379, 383, 389, 397, 401, 409, 419, 421,
    431, 433, 439, 443, 449, 457, 461, 463, 467, 479, 487, 491, 499, 503, 509,
];

/// The two check characters (GenSpecs §7.9.5) for `data` (set 82 characters), or `None`
/// when `data` has a character outside set 82 or is longer than 97 characters.
pub fn check_character_pair(data: &[u8]) -> Option<[u8; 2]> {
    if data.len() > PRIMES.len() {
        return None;
    }
    let mut sum = 0u32;
    for (&c, &w) in data.iter().rev().zip(PRIMES.iter()) {
        let v = CSET82_ORDER.iter().position(|&x| x == c)? as u32;
        sum += v * w;
    }
    sum %= 1021;
    let hi = *CSET32.get((sum >> 5) as usize)?;
    let lo = *CSET32.get((sum & 31) as usize)?;
    Some([hi, lo])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primer_examples() {
        assert_eq!(mod10_check_digit(b"0950600013435"), b'2');
        assert_eq!(mod10_check_digit(b"00614141123456789"), b'0');
        assert_eq!(mod10_check_digit(b"10614141123456789"), b'7');
        assert_eq!(mod10_check_digit(b"952012345678"), b'8');
        assert_eq!(mod10_check_digit(b"401234500000"), b'9');
        assert_eq!(mod10_check_digit(b"0234567"), b'3');
        assert_eq!(mod10_check_digit(b"41600033610"), b'8');
        assert_eq!(mod10_check_digit(b"211234567890"), b'0');
        assert!(mod10_is_valid(b"09506000134352"));
        assert!(!mod10_is_valid(b"09506000134353"));
        assert!(!mod10_is_valid(b"0950600013435A"));
        assert!(!mod10_is_valid(b""));
    }

    #[test]
    fn digits_only_variant_agrees() {
        // Every length a GS1 key body has, and then some, over varied digits.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for len in 0..=40 {
            for _ in 0..50 {
                let body: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        b'0' + (x % 10) as u8
                    })
                    .collect();
                assert_eq!(
                    mod10_check_digit_of_digits(&body),
                    mod10_check_digit(&body),
                    "{}",
                    String::from_utf8_lossy(&body)
                );
            }
        }
    }

    #[test]
    fn check_pair_examples() {
        for ok in [
            "1987654Ad4X4bL5ttr2310c2K",
            "12345678901234567890123NT",
            "12345_!\"%&'()*+,-./LC",
            "00000!HV",
            "22",
        ] {
            let b = ok.as_bytes();
            let (data, pair) = b.split_at(b.len() - 2);
            assert_eq!(
                check_character_pair(data).as_ref().map(|p| &p[..]),
                Some(pair),
                "{ok}"
            );
        }
        assert_ne!(
            check_character_pair(b"1987654Ad4X4bL5ttr2310c"),
            Some(*b"XK")
        );
    }
}
