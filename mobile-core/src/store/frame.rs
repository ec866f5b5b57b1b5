//! Length + CRC32 framing for append-only logs and atomically written files.
//!
//! A frame is `magic u32 LE | len u32 LE | crc32(len bytes ‖ payload) u32 LE | payload`.
//! The CRC covers the length so a flipped length bit is caught too.

/// Frame magic: "SWF1".
pub const MAGIC: u32 = u32::from_le_bytes(*b"SWF1");
/// Bytes before the payload.
pub const HEADER_LEN: usize = 12;
/// Largest payload accepted (a whole saved document must fit).
pub const MAX_PAYLOAD: usize = 256 << 20;

static TABLE: [u32; 256] = make_table();

const fn make_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

/// CRC-32 (IEEE 802.3, as zlib and `crc32fast`), continued from `crc` (start with 0).
/// Hand-rolled to keep the core's dependency list short; frames are small.
pub fn crc32_update(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    for &b in data {
        c = TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// Encodes one frame.
pub fn encode(payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32_update(crc32_update(0, &len), payload);
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// How reading a framed file ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    /// Every byte belongs to a good frame.
    Clean,
    /// The last frame is incomplete or fails its CRC and nothing follows it: a write torn
    /// by a crash. Its bytes were never acknowledged; truncate at `good_len`.
    Torn {
        /// Length of the good prefix.
        good_len: u64,
    },
    /// A bad frame is followed by more data: the file was damaged after it was written.
    Corrupt {
        /// Offset of the first bad byte.
        at: u64,
        /// Good frames found after the damage (resynchronised on the magic, CRC checked).
        recovered_after: usize,
    },
}

fn frame_at(buf: &[u8], pos: usize) -> Option<(usize, &[u8])> {
    let h = buf.get(pos..pos + HEADER_LEN)?;
    let magic = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    if magic != MAGIC {
        return None;
    }
    let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
    let crc = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if len > MAX_PAYLOAD {
        return None;
    }
    let payload = buf.get(pos + HEADER_LEN..pos + HEADER_LEN + len)?;
    if crc32_update(crc32_update(0, &h[4..8]), payload) != crc {
        return None;
    }
    Some((HEADER_LEN + len, payload))
}

/// Splits a framed file into payloads and says how it ended. Never panics.
pub fn decode_all(buf: &[u8]) -> (Vec<&[u8]>, Tail) {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        match frame_at(buf, pos) {
            Some((n, p)) => {
                out.push(p);
                pos += n;
            }
            None => {
                // Look for any good frame further on; if there is one, this is damage in
                // the middle, not a torn append.
                let bad = pos;
                let mut recovered = 0;
                let mut scan = pos + 1;
                while scan + HEADER_LEN <= buf.len() {
                    if let Some((n, p)) = frame_at(buf, scan) {
                        out.push(p);
                        recovered += 1;
                        scan += n;
                    } else {
                        scan += 1;
                    }
                }
                let tail = if recovered == 0 {
                    Tail::Torn {
                        good_len: bad as u64,
                    }
                } else {
                    Tail::Corrupt {
                        at: bad as u64,
                        recovered_after: recovered,
                    }
                };
                return (out, tail);
            }
        }
    }
    (out, Tail::Clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc32_update(0, b"123456789"), 0xCBF4_3926);
        assert_eq!(
            crc32_update(crc32_update(0, b"1234"), b"56789"),
            0xCBF4_3926
        );
    }

    #[test]
    fn frames_round_trip_and_torn_tails_are_found() {
        let mut buf = encode(b"one");
        buf.extend(encode(b""));
        buf.extend(encode(&[7u8; 300]));
        let (p, t) = decode_all(&buf);
        assert_eq!(t, Tail::Clean);
        assert_eq!(p.len(), 3);
        let good = encode(b"one").len() + encode(b"").len();
        for cut in good + 1..buf.len() {
            let (p, t) = decode_all(&buf[..cut]);
            assert_eq!(p.len(), 2);
            assert_eq!(
                t,
                Tail::Torn {
                    good_len: good as u64
                },
                "cut {cut}"
            );
        }
    }

    #[test]
    fn damage_in_the_middle_is_corruption_with_recovery() {
        let mut buf = encode(b"first");
        let second_at = buf.len();
        buf.extend(encode(b"second"));
        buf.extend(encode(b"third"));
        buf[second_at + HEADER_LEN + 1] ^= 0x40;
        let (p, t) = decode_all(&buf);
        assert_eq!(p, vec![&b"first"[..], b"third"]);
        assert_eq!(
            t,
            Tail::Corrupt {
                at: second_at as u64,
                recovered_after: 1
            }
        );
    }

    #[test]
    fn garbage_never_panics() {
        for n in 0..64 {
            let g: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let _ = decode_all(&g);
        }
        let mut lying = MAGIC.to_le_bytes().to_vec();
        lying.extend(u32::MAX.to_le_bytes());
        lying.extend([0; 4]);
        assert_eq!(decode_all(&lying).1, Tail::Torn { good_len: 0 });
    }
}
