//! Message encoding detection and segment counting.
//!
//! Charging and dispatch both depend on how many SMS parts a text needs.
//! GSM 03.38 texts use 7-bit septets: 160 in a single part, 153 per part once
//! concatenated (the user data header takes the rest). Characters of the
//! extension table (`€`, `[`, `{` ...) take two septets and are never split
//! across parts. Anything outside GSM 03.38 forces UCS-2: 70 UTF-16 units in a
//! single part, 67 per part, never splitting a surrogate pair. ISO-8859-1
//! (offered by the bulk HTTP API) is 8-bit: 140 and 134 bytes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

// Named `TextEncoding` in the bus schemas (`proto/`), which predate it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(rename = "TextEncoding")]
pub enum Encoding {
    Gsm7,
    Ucs2,
    Latin1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentCount {
    pub encoding: Encoding,
    /// Septets, UTF-16 units or bytes, depending on the encoding.
    pub units: usize,
    pub segments: u32,
}

const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM7_EXTENSION: &str = "\u{c}^{}\\[~]|€";

/// Septets a character costs in GSM 03.38, or `None` if it has no mapping.
pub fn gsm7_septets(c: char) -> Option<usize> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// The GSM 03.38 escape to the extension table.
pub const GSM7_ESCAPE: u8 = 0x1B;
const GSM7_EXTENSION_CODES: [u8; 10] = [0x0A, 0x14, 0x28, 0x29, 0x2F, 0x3C, 0x3D, 0x3E, 0x40, 0x65];

/// The basic table by code; 0x1B (the escape) has no character.
fn gsm7_basic_by_code() -> &'static [Option<char>; 128] {
    static TABLE: std::sync::OnceLock<[Option<char>; 128]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = [None; 128];
        for (i, c) in GSM7_BASIC.chars().enumerate() {
            let code = if i < usize::from(GSM7_ESCAPE) { i } else { i + 1 };
            if let Some(slot) = table.get_mut(code) {
                *slot = Some(c);
            }
        }
        table
    })
}

/// GSM 03.38 code of `c`: one septet, or the escape and a septet of the
/// extension table. `None` if GSM-7 cannot carry it.
pub fn gsm7_code(c: char) -> Option<(u8, Option<u8>)> {
    static CODES: std::sync::OnceLock<std::collections::HashMap<char, (u8, Option<u8>)>> = std::sync::OnceLock::new();
    let codes = CODES.get_or_init(|| {
        let mut map = std::collections::HashMap::new();
        for (code, c) in gsm7_basic_by_code().iter().enumerate() {
            if let (Some(c), Ok(code)) = (c, u8::try_from(code)) {
                map.insert(*c, (code, None));
            }
        }
        for (c, code) in GSM7_EXTENSION.chars().zip(GSM7_EXTENSION_CODES) {
            map.insert(c, (GSM7_ESCAPE, Some(code)));
        }
        map
    });
    codes.get(&c).copied()
}

/// The character of a GSM 03.38 septet, from the extension table when
/// `escaped`. `None` for codes with no character.
pub fn gsm7_char(code: u8, escaped: bool) -> Option<char> {
    if escaped {
        GSM7_EXTENSION_CODES.iter().position(|&x| x == code).and_then(|i| GSM7_EXTENSION.chars().nth(i))
    } else {
        gsm7_basic_by_code().get(usize::from(code)).copied().flatten()
    }
}

pub fn is_gsm7(text: &str) -> bool {
    text.chars().all(|c| gsm7_septets(c).is_some())
}

pub fn is_latin1(text: &str) -> bool {
    text.chars().all(|c| (c as u32) < 256)
}

/// The cheapest encoding that represents `text` without loss, unless the
/// caller demands UCS-2.
pub fn detect(text: &str, force_unicode: bool) -> Encoding {
    if force_unicode || !is_gsm7(text) { Encoding::Ucs2 } else { Encoding::Gsm7 }
}

/// Counts parts for `text` in `encoding`. A text that the encoding cannot
/// carry is counted as UCS-2, which is what dispatch will send.
pub fn count_segments(text: &str, encoding: Encoding) -> SegmentCount {
    match encoding {
        Encoding::Gsm7 if is_gsm7(text) => {
            let costs: Vec<usize> = text.chars().filter_map(gsm7_septets).collect();
            pack(&costs, 160, 153, Encoding::Gsm7)
        }
        Encoding::Latin1 if is_latin1(text) => {
            let costs = vec![1; text.chars().count()];
            pack(&costs, 140, 134, Encoding::Latin1)
        }
        _ => {
            let costs: Vec<usize> = text.chars().map(char::len_utf16).collect();
            pack(&costs, 70, 67, Encoding::Ucs2)
        }
    }
}

/// Splits `text` into the parts a handset reassembles, using the same rule as
/// [`count_segments`].
pub fn split_parts(text: &str, encoding: Encoding) -> Vec<String> {
    let count = count_segments(text, encoding);
    let (single, multi): (usize, usize) = match count.encoding {
        Encoding::Gsm7 => (160, 153),
        Encoding::Latin1 => (140, 134),
        Encoding::Ucs2 => (70, 67),
    };
    let cost = |c: char| match count.encoding {
        Encoding::Gsm7 => gsm7_septets(c).unwrap_or(1),
        Encoding::Latin1 => 1,
        Encoding::Ucs2 => c.len_utf16(),
    };
    if count.units <= single {
        return vec![text.to_owned()];
    }
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut used = 0;
    for c in text.chars() {
        let n = cost(c);
        if used + n > multi {
            parts.push(std::mem::take(&mut current));
            used = 0;
        }
        current.push(c);
        used += n;
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
}

fn pack(costs: &[usize], single: usize, multi: usize, encoding: Encoding) -> SegmentCount {
    let units: usize = costs.iter().sum();
    if units <= single {
        return SegmentCount { encoding, units, segments: 1 };
    }
    let mut segments = 1u32;
    let mut used = 0;
    for &n in costs {
        if used + n > multi {
            segments += 1;
            used = 0;
        }
        used += n;
    }
    SegmentCount { encoding, units, segments }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ascii_is_gsm7() {
        assert_eq!(detect("hello world", false), Encoding::Gsm7);
        assert_eq!(detect("hello world", true), Encoding::Ucs2);
        assert_eq!(detect("Привет мир", false), Encoding::Ucs2);
    }

    #[test]
    fn gsm7_boundaries() {
        let s160 = "a".repeat(160);
        assert_eq!(count_segments(&s160, Encoding::Gsm7).segments, 1);
        let s161 = "a".repeat(161);
        assert_eq!(count_segments(&s161, Encoding::Gsm7).segments, 2);
        assert_eq!(count_segments(&"a".repeat(306), Encoding::Gsm7).segments, 2);
        assert_eq!(count_segments(&"a".repeat(307), Encoding::Gsm7).segments, 3);
    }

    #[test]
    fn extension_characters_cost_two_septets_and_do_not_split() {
        let s = "€".repeat(80);
        let c = count_segments(&s, Encoding::Gsm7);
        assert_eq!(c.units, 160);
        assert_eq!(c.segments, 1);
        // 152 plain septets then a 2-septet char: it cannot straddle parts.
        let s = format!("{}€{}", "a".repeat(152), "a".repeat(10));
        let c = count_segments(&s, Encoding::Gsm7);
        assert_eq!(c.units, 164);
        assert_eq!(c.segments, 2);
        let parts = split_parts(&s, Encoding::Gsm7);
        assert_eq!(parts[0], "a".repeat(152));
    }

    #[test]
    fn ucs2_boundaries() {
        assert_eq!(count_segments(&"Ж".repeat(70), Encoding::Ucs2).segments, 1);
        assert_eq!(count_segments(&"Ж".repeat(71), Encoding::Ucs2).segments, 2);
        assert_eq!(count_segments(&"Ж".repeat(134), Encoding::Ucs2).segments, 2);
        assert_eq!(count_segments(&"Ж".repeat(135), Encoding::Ucs2).segments, 3);
    }

    #[test]
    fn surrogate_pairs_are_two_units_and_stay_whole() {
        let s = format!("{}😀", "a".repeat(66));
        let c = count_segments(&s, Encoding::Gsm7);
        assert_eq!(c.encoding, Encoding::Ucs2);
        assert_eq!(c.units, 68);
        assert_eq!(c.segments, 1);
        let s = format!("{}😀{}", "Ж".repeat(66), "Ж".repeat(10));
        let parts = split_parts(&s, Encoding::Ucs2);
        assert_eq!(parts[0].chars().count(), 66);
    }

    #[test]
    fn latin1_counts_bytes() {
        assert_eq!(count_segments(&"é".repeat(140), Encoding::Latin1).segments, 1);
        assert_eq!(count_segments(&"é".repeat(141), Encoding::Latin1).segments, 2);
    }

    #[test]
    fn gsm7_codes_round_trip() {
        assert_eq!(gsm7_code('@'), Some((0, None)));
        assert_eq!(gsm7_code('A'), Some((0x41, None)));
        assert_eq!(gsm7_code('Æ'), Some((0x1C, None)));
        assert_eq!(gsm7_code('à'), Some((0x7F, None)));
        assert_eq!(gsm7_code('€'), Some((GSM7_ESCAPE, Some(0x65))));
        assert_eq!(gsm7_code('Ж'), None);
        for c in GSM7_BASIC.chars().chain(GSM7_EXTENSION.chars()) {
            let (code, ext) = gsm7_code(c).unwrap();
            let back = match ext {
                Some(e) => gsm7_char(e, true),
                None => gsm7_char(code, false),
            };
            assert_eq!(back, Some(c));
        }
        assert_eq!(gsm7_char(GSM7_ESCAPE, false), None);
    }

    #[test]
    fn split_matches_count() {
        for n in [1, 159, 160, 161, 306, 307, 500] {
            let s = "x".repeat(n);
            let c = count_segments(&s, Encoding::Gsm7);
            assert_eq!(split_parts(&s, Encoding::Gsm7).len() as u32, c.segments, "n={n}");
        }
    }
}
