//! PHP's float-to-text rules (`php_gcvt`), shared by the three encoders.
//!
//! PHP >= 7.1 uses `serialize_precision = -1` (shortest round-trip digits) for
//! `json_encode` and `serialize`, but a plain string cast (what SimpleXML's
//! `addChild` does) uses `precision = 14`. Both switch to exponent notation on
//! the same `php_gcvt` thresholds, so one routine covers all of them.

/// How many significant digits PHP keeps.
#[derive(Clone, Copy)]
pub(crate) enum Digits {
    /// `serialize_precision = -1`: shortest repr that round-trips.
    Shortest,
    /// `precision = 14`: the string-cast default.
    Fourteen,
}

/// `php_gcvt(value, ndigit, '.', exp_char)`; `None` for NaN/infinity so each
/// caller can apply its own PHP rule for them.
pub(crate) fn gcvt(value: f64, digits: Digits, exp_char: char) -> Option<String> {
    if !value.is_finite() {
        return None;
    }
    let (sci, ndigit) = match digits {
        Digits::Shortest => (format!("{:e}", value.abs()), 17),
        Digits::Fourteen => (format!("{:.13e}", value.abs()), 14),
    };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut ds: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    while ds.len() > 1 && ds.ends_with('0') {
        ds.pop();
    }
    let decpt = exp + 1;
    let mut out = String::new();
    if value.is_sign_negative() {
        out.push('-');
    }
    if ds == "0" {
        out.push('0');
        return Some(out);
    }
    let bytes = ds.as_bytes();
    if if decpt < 0 { decpt < -3 } else { decpt > ndigit } {
        out.push(char::from(bytes[0]));
        out.push('.');
        if bytes.len() > 1 {
            out.push_str(&ds[1..]);
        } else {
            out.push('0');
        }
        out.push(exp_char);
        let e = decpt - 1;
        out.push(if e < 0 { '-' } else { '+' });
        out.push_str(&e.unsigned_abs().to_string());
    } else if decpt < 0 {
        out.push_str("0.");
        for _ in decpt..0 {
            out.push('0');
        }
        out.push_str(&ds);
    } else {
        let decpt = decpt.unsigned_abs() as usize;
        if decpt == 0 {
            out.push('0');
        } else if bytes.len() <= decpt {
            out.push_str(&ds);
            out.extend(std::iter::repeat_n('0', decpt - bytes.len()));
        } else {
            out.push_str(&ds[..decpt]);
        }
        if bytes.len() > decpt {
            out.push('.');
            out.push_str(&ds[decpt..]);
        }
    }
    Some(out)
}

/// PHP's text for non-finite floats (`INF`, `-INF`, `NAN`).
pub(crate) fn non_finite(value: f64) -> &'static str {
    if value.is_nan() {
        "NAN"
    } else if value.is_sign_negative() {
        "-INF"
    } else {
        "INF"
    }
}

/// PHP's `(float) $string`: the longest numeric prefix after leading
/// whitespace (`"12abc"` → 12, `"abc"` → 0), which is how playSMS reads
/// `data_amount`.
pub fn float_cast(raw: &str) -> f64 {
    let s = raw.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let b = s.as_bytes();
    let mut end = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        end = 1;
    }
    let int_start = end;
    while b.get(end).is_some_and(u8::is_ascii_digit) {
        end += 1;
    }
    let mut digits = end - int_start;
    if b.get(end) == Some(&b'.') {
        let frac_start = end + 1;
        let mut frac_end = frac_start;
        while b.get(frac_end).is_some_and(u8::is_ascii_digit) {
            frac_end += 1;
        }
        digits += frac_end - frac_start;
        if digits > 0 {
            end = frac_end;
        }
    }
    if digits == 0 {
        return 0.0;
    }
    if matches!(b.get(end), Some(b'e' | b'E')) {
        let mut exp_end = end + 1;
        if matches!(b.get(exp_end), Some(b'+' | b'-')) {
            exp_end += 1;
        }
        let exp_digits_start = exp_end;
        while b.get(exp_end).is_some_and(u8::is_ascii_digit) {
            exp_end += 1;
        }
        if exp_end > exp_digits_start {
            end = exp_end;
        }
    }
    s[..end].parse().unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn float_casts_like_php() {
        use super::float_cast;
        assert_eq!(float_cast("100"), 100.0);
        assert_eq!(float_cast("50.25"), 50.25);
        assert_eq!(float_cast("-2"), -2.0);
        assert_eq!(float_cast("abc"), 0.0);
        assert_eq!(float_cast(" 12abc"), 12.0);
        assert_eq!(float_cast("1e3x"), 1000.0);
        assert_eq!(float_cast(".5"), 0.5);
        assert_eq!(float_cast("-"), 0.0);
    }

    use super::*;

    fn s(v: f64) -> String {
        gcvt(v, Digits::Shortest, 'e').unwrap_or_default()
    }
    fn p14(v: f64) -> String {
        gcvt(v, Digits::Fourteen, 'E').unwrap_or_default()
    }

    #[test]
    fn shortest_matches_json_encode() {
        assert_eq!(s(100.0), "100");
        assert_eq!(s(50.25), "50.25");
        assert_eq!(s(87.5), "87.5");
        assert_eq!(s(0.0), "0");
        assert_eq!(s(-0.0), "-0");
        assert_eq!(s(0.5), "0.5");
        assert_eq!(s(-1.5), "-1.5");
        assert_eq!(s(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(s(0.0001), "0.0001");
        assert_eq!(s(0.00001), "1.0e-5");
        assert_eq!(s(1.5e-7), "1.5e-7");
        assert_eq!(s(1e16), "10000000000000000");
        assert_eq!(s(1e17), "1.0e+17");
        assert_eq!(s(1.25e25), "1.25e+25");
        assert_eq!(s(123456.789), "123456.789");
        assert_eq!(gcvt(f64::NAN, Digits::Shortest, 'e'), None);
    }

    #[test]
    fn precision_14_matches_string_cast() {
        assert_eq!(p14(50.25), "50.25");
        assert_eq!(p14(7.0), "7");
        assert_eq!(p14(0.1 + 0.2), "0.3");
        assert_eq!(p14(1e13), "10000000000000");
        assert_eq!(p14(1e14), "1.0E+14");
        assert_eq!(p14(1.0 / 3.0), "0.33333333333333");
        assert_eq!(p14(-2.5e-5), "-2.5E-5");
    }

    #[test]
    fn non_finite_names() {
        assert_eq!(non_finite(f64::INFINITY), "INF");
        assert_eq!(non_finite(f64::NEG_INFINITY), "-INF");
        assert_eq!(non_finite(f64::NAN), "NAN");
    }
}
