//! Encoding [`Value`]s exactly as `kustomize build` prints them.
//!
//! kustomize turns every resource into JSON and hands it to `sigs.k8s.io/yaml.JSONToYAML`, which
//! decodes the JSON with go-yaml v2 and marshals the generic result with go-yaml v2. This module
//! reproduces that pipeline byte for byte:
//!
//! * mapping keys are sorted with v2's natural order (`keyList.Less`);
//! * block style everywhere with an indent of 2, sequences under a mapping key not indented, empty
//!   collections as `{}` / `[]`;
//! * a string is plain unless v2's YAML 1.1 resolver would read it back as something else (then it
//!   is double-quoted), strings with a line feed ask for a literal block, and the emitter's scalar
//!   analysis falls back from plain to single- to double-quoted exactly like libyaml does;
//! * plain and quoted scalars fold at column 80 the way libyaml's writers do;
//! * numbers print the way they come out of Go's `encoding/json` and back through v2's resolver.
//!
//! The emitter below is a direct model of the libyaml state machine restricted to the events this
//! pipeline produces (block collections, empty flow collections, scalars without tags).

use std::borrow::Cow;

use super::value::{Map, Value};

/// libyaml's preferred line width.
const BEST_WIDTH: usize = 80;
/// libyaml's indentation step.
const BEST_INDENT: usize = 2;
/// Longest key (in bytes) libyaml writes as a simple `key:` rather than `? key`.
const MAX_SIMPLE_KEY_LEN: usize = 128;

/// Formats a float the way `kustomize build` prints it: Go's `encoding/json` formatting (`'f'`
/// between 1e-6 and 1e21, `'e'` otherwise), read back by go-yaml v2 (integral values that fit a
/// 64-bit integer become integers) and printed with `strconv.FormatFloat(f, 'g', -1, 64)`.
/// JSON cannot carry infinities or NaN; they print as v2 prints them (`.inf`, `-.inf`, `.nan`).
pub fn format_float(f: f64) -> String {
    let mut out = String::new();
    push_float(&mut out, f);
    out
}

/// One document as YAML text ending in a newline (an empty mapping prints as `{}`).
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::with_capacity(256);
    write_document(&mut out, v, &mut Vec::new());
    out
}

/// Documents joined by `---\n`, as `kustomize build` prints a resource list.
pub fn to_yaml_stream(docs: &[Value]) -> String {
    let mut out = String::with_capacity(docs.len() * 512);
    let mut order = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        write_document(&mut out, doc, &mut order);
    }
    out
}

/// Writes one document; `order` is scratch space for sorting keys, reused across documents.
fn write_document(out: &mut String, v: &Value, order: &mut Vec<usize>) {
    let mut e = Emitter {
        out,
        indent: -1,
        column: 0,
        whitespace: true,
        indention: true,
        order: std::mem::take(order),
    };
    e.node(v, false);
    // DOCUMENT-END (implicit): finish the last line.
    e.write_indent();
    *order = e.order;
}

// ---------------------------------------------------------------------------------------------
// Floats
// ---------------------------------------------------------------------------------------------

/// The shortest round-tripping decimal digits of a finite, non-zero `|f|` and the position of the
/// decimal point (`|f| = 0.d1d2d3… × 10^dp`), as Go's `strconv` computes them: the shortest
/// digits closest to the exact value, ties broken towards an even last digit.
fn shortest_digits(abs: f64) -> (String, i32) {
    let (digits, dp) = split_sci(&format!("{abs:e}"));
    // Rust breaks an exact tie between two shortest candidates upwards, Go to even. A tie needs
    // the exact binary value to have exactly one more significant digit (a final 5) than the
    // shortest form; a value m·2^q with m odd and q < 0 has exactly dp - q of them.
    let bits = abs.to_bits();
    let (mut m, mut q) = match (bits >> 52) as i32 {
        0 => (bits & ((1 << 52) - 1), -1074),
        e => ((bits & ((1 << 52) - 1)) | (1 << 52), e - 1075),
    };
    if m != 0 {
        let tz = m.trailing_zeros();
        m >>= tz;
        q += tz as i32;
    }
    let nd = digits.len();
    if m == 0 || q >= 0 || dp - q != nd as i32 + 1 {
        return (digits, dp);
    }
    let (exact, exact_dp) = split_sci(&format!("{abs:.nd$e}"));
    if exact.len() != nd + 1 || !exact.ends_with('5') || exact_dp != dp {
        return (digits, dp);
    }
    // The exact value is halfway between `down` and `down + 1` (in units of the last digit):
    // take the one with an even last digit, as long as it still reads back as `abs`.
    let down = &exact[..nd];
    let (candidate, candidate_dp) = if down.ends_with(['1', '3', '5', '7', '9']) {
        increment_digits(down, dp)
    } else {
        (trim_zeros(down.to_string()), dp)
    };
    if format!("0.{candidate}e{candidate_dp}")
        .parse::<f64>()
        .is_ok_and(|v| v == abs)
    {
        (candidate, candidate_dp)
    } else {
        (digits, dp)
    }
}

/// Adds one unit in the last place to a digit string (`0.digits × 10^dp`), carrying as needed.
fn increment_digits(digits: &str, dp: i32) -> (String, i32) {
    let mut bytes = digits.as_bytes().to_vec();
    for b in bytes.iter_mut().rev() {
        if *b == b'9' {
            *b = b'0';
        } else {
            *b += 1;
            return (trim_zeros(String::from_utf8_lossy(&bytes).into_owned()), dp);
        }
    }
    // All nines: 0.99…9 + ulp = 0.1 × 10^(dp + 1).
    ("1".to_string(), dp + 1)
}

/// Splits Rust's `{:e}` output (`d.ddde±x`) into significant digits without trailing zeros and
/// the decimal point position.
fn split_sci(sci: &str) -> (String, i32) {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    (trim_zeros(digits), exp + 1)
}

fn trim_zeros(mut digits: String) -> String {
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    digits
}

fn push_float(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str(".nan");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { ".inf" } else { "-.inf" });
        return;
    }
    if f == 0.0 {
        // JSON "0" or "-0"; v2 reads both as the integer 0.
        out.push('0');
        return;
    }
    let neg = f < 0.0;
    let abs = f.abs();
    let (digits, dp) = shortest_digits(abs);
    let nd = digits.len() as i32;
    if (1e-6..1e21).contains(&abs) && dp >= nd {
        // encoding/json wrote an integer literal; v2 resolves it with ParseInt, then ParseUint.
        let mut text = String::with_capacity(dp as usize + 1);
        if neg {
            text.push('-');
        }
        text.push_str(&digits);
        for _ in nd..dp {
            text.push('0');
        }
        if let Ok(i) = text.parse::<i64>() {
            out.push_str(&i.to_string());
            return;
        }
        if !neg && text.parse::<u64>().is_ok() {
            out.push_str(&text);
            return;
        }
    }
    // A float: strconv.FormatFloat(f, 'g', -1, 64).
    if neg {
        out.push('-');
    }
    let exp = dp - 1;
    let d = digits.as_bytes();
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(digits.len().min(1));
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push('0');
        }
        out.push_str(&e.to_string());
    } else {
        // fmtF with max(nd - dp, 0) fraction digits.
        if dp > 0 {
            let m = nd.min(dp) as usize;
            out.push_str(&digits[..m]);
            for _ in nd..dp {
                out.push('0');
            }
        } else {
            out.push('0');
        }
        let frac = (nd - dp).max(0);
        if frac > 0 {
            out.push('.');
            for i in 0..frac {
                let j = dp + i;
                let digit = usize::try_from(j).ok().and_then(|j| d.get(j));
                out.push(digit.map_or('0', |&b| char::from(b)));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The JSON round trip
// ---------------------------------------------------------------------------------------------

/// What a string becomes after Go's `encoding/json` and go-yaml v2's decoder. JSON escapes every
/// character v2 treats as white space or a line break except U+0085 (NEL), which stays raw; v2's
/// scanner then folds it like a line break inside a double-quoted scalar: spaces around a run of
/// NELs disappear, a single NEL becomes a space and `n > 1` NELs become `n - 1` line feeds.
fn fold_nel(s: &str) -> Cow<'_, str> {
    if !has_nel(s) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    loop {
        while let Some(&c) = chars.peek() {
            if c == ' ' || c == '\u{85}' {
                break;
            }
            out.push(c);
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut spaces = 0;
        let mut breaks = 0;
        while let Some(&c) = chars.peek() {
            match c {
                ' ' if breaks == 0 => spaces += 1,
                ' ' => {}
                '\u{85}' => breaks += 1,
                _ => break,
            }
            chars.next();
        }
        match breaks {
            0 => out.extend(std::iter::repeat_n(' ', spaces)),
            1 => out.push(' '),
            n => out.extend(std::iter::repeat_n('\n', n - 1)),
        }
    }
    Cow::Owned(out)
}

/// Whether `s` contains U+0085 (encoded C2 85).
fn has_nel(s: &str) -> bool {
    let b = s.as_bytes();
    b.contains(&0xC2) && s.contains('\u{85}')
}

// ---------------------------------------------------------------------------------------------
// Key order (go-yaml v2 sorter.go, string keys only: JSON object keys are always strings)
// ---------------------------------------------------------------------------------------------

/// Go's `unicode.IsLetter` (category L). Exact for ASCII; for other characters Rust's Alphabetic
/// property minus numeric letters is the closest cheap approximation.
fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphabetic()
    } else {
        c.is_alphabetic() && !c.is_numeric()
    }
}

/// Go's `unicode.IsDigit` (category Nd), ASCII digits only (other decimal digits are vanishingly
/// rare in keys and sort by code point instead).
fn is_digit(c: char) -> bool {
    c.is_ascii_digit()
}

/// Reports whether key `a` sorts before key `b` in go-yaml v2 (`keyList.Less` on strings).
pub(super) fn key_less(a: &str, b: &str) -> bool {
    let mut ai = a.char_indices();
    let mut bi = b.chars();
    loop {
        let Some((pos, ca)) = ai.next() else {
            return bi.next().is_some();
        };
        let Some(cb) = bi.next() else {
            return false;
        };
        if ca == cb {
            continue;
        }
        let al = is_letter(ca);
        let bl = is_letter(cb);
        if al && bl {
            return ca < cb;
        }
        if al || bl {
            return bl;
        }
        let mut an: i64 = 0;
        let mut bn: i64 = 0;
        if ca == '0' || cb == '0' {
            for c in a[..pos].chars().rev() {
                if !is_digit(c) {
                    break;
                }
                if c != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        // The prefixes are equal, so `pos` is also the byte position in `b`.
        let (an, alen) = digit_run(&a[pos..], an);
        let (bn, blen) = digit_run(&b[pos..], bn);
        if an != bn {
            return an < bn;
        }
        if alen != blen {
            return alen < blen;
        }
        return ca < cb;
    }
}

/// Accumulates the leading digit run of `s` onto `n` (wrapping like Go's int64) and its length.
fn digit_run(s: &str, mut n: i64) -> (i64, usize) {
    let mut len = 0;
    for c in s.chars() {
        if !is_digit(c) {
            break;
        }
        n = n.wrapping_mul(10).wrapping_add(i64::from(c as u8 - b'0'));
        len += 1;
    }
    (n, len)
}

/// Sorts `v` by `less`. A merge sort of our own: stable, never panics even if `less` is not a
/// strict order (Go's `keyList.Less` is not, for some key sets), and costs one comparison per
/// element on already-sorted input.
fn sort_by_less<T: Copy>(v: &mut [T], less: impl Fn(T, T) -> bool) {
    let n = v.len();
    if n < 2 || v.windows(2).all(|w| !less(w[1], w[0])) {
        return;
    }
    // Insertion-sort runs of RUN elements, then merge bottom-up.
    const RUN: usize = 16;
    for run in v.chunks_mut(RUN) {
        for i in 1..run.len() {
            let mut j = i;
            while j > 0 && less(run[j], run[j - 1]) {
                run.swap(j, j - 1);
                j -= 1;
            }
        }
    }
    let mut width = RUN;
    let mut buf: Vec<T> = Vec::with_capacity(n);
    while width < n {
        buf.clear();
        let mut lo = 0;
        while lo < n {
            let mid = (lo + width).min(n);
            let hi = (lo + 2 * width).min(n);
            let (mut i, mut j) = (lo, mid);
            while i < mid && j < hi {
                if less(v[j], v[i]) {
                    buf.push(v[j]);
                    j += 1;
                } else {
                    buf.push(v[i]);
                    i += 1;
                }
            }
            buf.extend_from_slice(&v[i..mid]);
            buf.extend_from_slice(&v[j..hi]);
            lo = hi;
        }
        v.copy_from_slice(&buf);
        width *= 2;
    }
}

/// The key of entry `i` of `m` (as the JSON round trip delivers it when `folded` is given).
fn key_at<'a>(m: &'a Map, folded: &'a [Cow<'a, str>], i: usize) -> &'a str {
    match folded.get(i) {
        Some(k) => k,
        None => m.get_index(i).map_or("", |(k, _)| k.as_str()),
    }
}

// ---------------------------------------------------------------------------------------------
// go-yaml v2 resolve(): would this text, written plain, read back as something other than a
// string? (encoder.stringv quotes such strings.)
// ---------------------------------------------------------------------------------------------

/// Whether v2's `resolve("", s)` yields `!!str` and `s` is not a YAML 1.1 base-60 float, i.e.
/// whether `encoder.stringv` lets the emitter write `s` plain.
fn can_use_plain(s: &str) -> bool {
    let b = s.as_bytes();
    let Some(&first) = b.first() else {
        return false; // "" is null
    };
    match first {
        b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O' | b'~' => {
            !in_resolve_map(s)
        }
        b'.' => !in_resolve_map(s) && !go_parse_float_ok(s),
        b'+' | b'-' | b'0'..=b'9' => {
            !in_resolve_map(s) && !resolves_numeric(s) && !is_base60_float(s)
        }
        _ => true,
    }
}

/// The fixed words of v2's resolve table (only reached for the hinted first characters).
fn in_resolve_map(s: &str) -> bool {
    matches!(
        s,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "true"
            | "True"
            | "TRUE"
            | "on"
            | "On"
            | "ON"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "false"
            | "False"
            | "FALSE"
            | "off"
            | "Off"
            | "OFF"
            | "~"
            | "null"
            | "Null"
            | "NULL"
            | ".nan"
            | ".NaN"
            | ".NAN"
            | ".inf"
            | ".Inf"
            | ".INF"
            | "+.inf"
            | "+.Inf"
            | "+.INF"
            | "-.inf"
            | "-.Inf"
            | "-.INF"
    )
}

/// The `'D'`/`'S'` branch of v2's resolve: timestamp, int, uint, float or `0b` binary.
fn resolves_numeric(s: &str) -> bool {
    if is_timestamp(s) {
        return true;
    }
    let plain: std::borrow::Cow<'_, str> = if s.contains('_') {
        std::borrow::Cow::Owned(s.replace('_', ""))
    } else {
        std::borrow::Cow::Borrowed(s)
    };
    let plain = plain.as_ref();
    if go_parse_int(plain, 0) || go_parse_uint(plain, 0) {
        return true;
    }
    if is_yaml_style_float(plain) && parse_finite(plain) {
        return true;
    }
    if let Some(rest) = plain.strip_prefix("0b") {
        return go_parse_int(rest, 2) || go_parse_uint(rest, 2);
    }
    if let Some(rest) = plain.strip_prefix("-0b") {
        let mut neg = String::with_capacity(rest.len() + 1);
        neg.push('-');
        neg.push_str(rest);
        return go_parse_int(&neg, 2);
    }
    false
}

/// Go's `strconv.ParseUint(s, base, 64)` succeeds (base 0 = Go literal syntax with prefixes
/// and underscores).
fn go_parse_uint(s: &str, base: u32) -> bool {
    let b = s.as_bytes();
    if b.is_empty() {
        return false;
    }
    let base0 = base == 0;
    let mut digits = b;
    let mut base = base;
    if base0 {
        base = 10;
        if b[0] == b'0' {
            let prefix = if b.len() >= 3 {
                b[1].to_ascii_lowercase()
            } else {
                0
            };
            match prefix {
                b'b' => {
                    base = 2;
                    digits = &b[2..];
                }
                b'o' => {
                    base = 8;
                    digits = &b[2..];
                }
                b'x' => {
                    base = 16;
                    digits = &b[2..];
                }
                _ => {
                    base = 8;
                    digits = &b[1..];
                }
            }
        }
    }
    let mut n: u64 = 0;
    let mut underscores = false;
    for &c in digits {
        let d = match c {
            b'_' if base0 => {
                underscores = true;
                continue;
            }
            b'0'..=b'9' => u32::from(c - b'0'),
            b'a'..=b'z' | b'A'..=b'Z' => u32::from(c.to_ascii_lowercase() - b'a') + 10,
            _ => return false,
        };
        if d >= base {
            return false;
        }
        let Some(next) = n
            .checked_mul(u64::from(base))
            .and_then(|m| m.checked_add(u64::from(d)))
        else {
            return false;
        };
        n = next;
    }
    !underscores || underscore_ok(s)
}

/// Go's `strconv.ParseInt(s, base, 64)` succeeds.
fn go_parse_int(s: &str, base: u32) -> bool {
    let b = s.as_bytes();
    if b.is_empty() {
        return false;
    }
    let (neg, rest) = match b[0] {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if !go_parse_uint(rest, base) {
        return false;
    }
    // Range check against int64 (the digits are valid, so re-parse for the value).
    match go_uint_value(rest, base) {
        Some(u) => {
            if neg {
                u <= 1u64 << 63
            } else {
                u < 1u64 << 63
            }
        }
        None => false,
    }
}

/// The value of a string already accepted by [`go_parse_uint`].
fn go_uint_value(s: &str, base: u32) -> Option<u64> {
    let b = s.as_bytes();
    let (base, digits) = if base == 0 {
        if b.first() == Some(&b'0') {
            match (b.len() >= 3).then(|| b[1].to_ascii_lowercase()) {
                Some(b'b') => (2, &b[2..]),
                Some(b'o') => (8, &b[2..]),
                Some(b'x') => (16, &b[2..]),
                _ => (8, &b[1..]),
            }
        } else {
            (10, b)
        }
    } else {
        (base, b)
    };
    let mut n: u64 = 0;
    for &c in digits {
        let d = match c {
            b'_' => continue,
            b'0'..=b'9' => u32::from(c - b'0'),
            _ => u32::from(c.to_ascii_lowercase().wrapping_sub(b'a')) + 10,
        };
        n = n.checked_mul(u64::from(base))?.checked_add(u64::from(d))?;
    }
    Some(n)
}

/// Go's `underscoreOK`: underscores only between digits (or after a base prefix).
fn underscore_ok(s: &str) -> bool {
    let mut b = s.as_bytes();
    if let Some(&c) = b.first()
        && (c == b'-' || c == b'+')
    {
        b = &b[1..];
    }
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = b[1].eq_ignore_ascii_case(&b'x');
    }
    while i < b.len() {
        let c = b[i];
        i += 1;
        if c.is_ascii_digit() || (hex && matches!(c.to_ascii_lowercase(), b'a'..=b'f')) {
            saw = b'0';
            continue;
        }
        if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
            continue;
        }
        if saw == b'_' {
            return false;
        }
        saw = b'!';
    }
    saw != b'_'
}

/// v2's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i = 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Parses a decimal float that is known to be syntactically valid; true unless it overflows
/// (Go's ParseFloat reports a range error then, and v2 keeps the text a string).
fn parse_finite(s: &str) -> bool {
    let t = s.strip_prefix('+').unwrap_or(s);
    t.parse::<f64>().is_ok_and(f64::is_finite)
}

/// Go's `strconv.ParseFloat(s, 64)` succeeds for a string starting with `.` (the only case v2
/// feeds it unmodified): `.digits[e[±]digits]` with Go's underscore rules, not overflowing.
fn go_parse_float_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 1; // the leading '.'
    let mut saw_digits = false;
    let mut underscores = false;
    while i < b.len() {
        match b[i] {
            b'_' => underscores = true,
            b'0'..=b'9' => saw_digits = true,
            _ => break,
        }
        i += 1;
    }
    if !saw_digits {
        return false;
    }
    if i < b.len() && (b[i] | 0x20) == b'e' {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !b.get(i).is_some_and(u8::is_ascii_digit) {
            return false;
        }
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            underscores |= b[i] == b'_';
            i += 1;
        }
    }
    if i != b.len() {
        return false;
    }
    if underscores && !underscore_ok(s) {
        return false;
    }
    let mut text = String::with_capacity(s.len() + 1);
    text.push('0');
    text.extend(s.chars().filter(|&c| c != '_'));
    text.parse::<f64>().is_ok_and(f64::is_finite)
}

/// v2's `isBase60Float`: `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`.
fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    if !b.contains(&b':') {
        return false;
    }
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i = 1;
    }
    if !b.get(i).is_some_and(u8::is_ascii_digit) {
        return false;
    }
    i += 1;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    // One or more ":[0-5]?[0-9]" groups; the regexp backtracks, so a group is one or two digits
    // where a two-digit group must start with 0-5.
    let mut groups = 0;
    while b.get(i) == Some(&b':') {
        let d1 = b.get(i + 1).copied();
        let d2 = b.get(i + 2).copied();
        match (d1, d2) {
            (Some(b'0'..=b'5'), Some(b'0'..=b'9')) => i += 3,
            (Some(b'0'..=b'9'), _) => i += 2,
            _ => return false,
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

/// v2's `parseTimestamp`: does Go's `time.Parse` accept `s` with one of the layouts
/// `2006-1-2T15:4:5.999999999Z07:00`, `2006-1-2t15:4:5.999999999Z07:00`,
/// `2006-1-2 15:4:5.999999999` or `2006-1-2`?
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits != 4 || b.len() == 4 || b[4] != b'-' {
        return false;
    }
    let year = b[..4]
        .iter()
        .fold(0u32, |acc, &c| acc * 10 + u32::from(c - b'0'));
    let mut rest = &b[5..];
    let Some(month) = getnum(&mut rest) else {
        return false;
    };
    if !(1..=12).contains(&month) {
        return false;
    }
    if rest.first() != Some(&b'-') {
        return false;
    }
    rest = &rest[1..];
    let Some(day) = getnum(&mut rest) else {
        return false;
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let day_ok = (1..=days_in).contains(&day);
    if rest.is_empty() {
        return day_ok; // 2006-1-2
    }
    let sep = rest[0];
    match sep {
        b'T' | b't' => {
            let mut r = &rest[1..];
            if !clock(&mut r) {
                return false;
            }
            // Z07:00
            if r.first() == Some(&b'Z') {
                r = &r[1..];
            } else {
                if r.len() < 6 || r[3] != b':' {
                    return false;
                }
                let (Some(hr), Some(mm)) = (getnum_fixed(&r[1..3]), getnum_fixed(&r[4..6])) else {
                    return false;
                };
                if hr > 24 || mm > 60 || !matches!(r[0], b'+' | b'-') {
                    return false;
                }
                r = &r[6..];
            }
            r.is_empty() && day_ok
        }
        b' ' => {
            let mut r = rest;
            while r.first() == Some(&b' ') {
                r = &r[1..];
            }
            clock(&mut r) && r.is_empty() && day_ok
        }
        _ => false,
    }
}

/// `15:4:5.999999999` of a Go layout: hour, minute, second and an optional fraction.
fn clock(r: &mut &[u8]) -> bool {
    let Some(hour) = getnum(r) else {
        return false;
    };
    if hour >= 24 || r.first() != Some(&b':') {
        return false;
    }
    *r = &r[1..];
    let Some(min) = getnum(r) else {
        return false;
    };
    if min >= 60 || r.first() != Some(&b':') {
        return false;
    }
    *r = &r[1..];
    let Some(sec) = getnum(r) else {
        return false;
    };
    if sec >= 60 {
        return false;
    }
    if r.len() >= 2 && matches!(r[0], b'.' | b',') && r[1].is_ascii_digit() {
        let n = 1 + r[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        *r = &r[n..];
    }
    true
}

/// Go's `getnum(s, false)`: one or two digits.
fn getnum(r: &mut &[u8]) -> Option<u32> {
    let first = *r.first().filter(|c| c.is_ascii_digit())?;
    match r.get(1).filter(|c| c.is_ascii_digit()) {
        Some(&second) => {
            *r = &r[2..];
            Some(u32::from(first - b'0') * 10 + u32::from(second - b'0'))
        }
        None => {
            *r = &r[1..];
            Some(u32::from(first - b'0'))
        }
    }
}

/// Go's `getnum(s, true)` on a two-byte slice.
fn getnum_fixed(s: &[u8]) -> Option<u32> {
    match s {
        [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
            Some(u32::from(a - b'0') * 10 + u32::from(b - b'0'))
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Scalar analysis (yaml_emitter_analyze_scalar) and style selection
// ---------------------------------------------------------------------------------------------

/// libyaml's printable set (`is_printable`), by code point.
fn is_printable(c: char) -> bool {
    matches!(c as u32, 0x0A | 0x20..=0x7E | 0xA0..=0xD7FF | 0xE000..=0xFFFD) && c != '\u{FEFF}'
}

/// libyaml's `is_break`: CR, LF, NEL, LS, PS.
fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

/// What the emitter's scalar analysis found.
#[derive(Clone, Copy)]
struct Analysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
    /// Number of characters.
    chars: usize,
    /// The text contains a line feed (`encoder.stringv` then asks for a literal block).
    has_lf: bool,
    /// The text contains a break other than `\n`.
    other_breaks: bool,
    /// The text contains U+0085, which the JSON round trip folds (see [`fold_nel`]).
    nel: bool,
}

/// `yaml_emitter_analyze_scalar`, over bytes: ASCII is classified directly, other characters are
/// decoded (they are never indicators or spaces, only possibly breaks or non-printable).
fn analyze(value: &str) -> Analysis {
    let b = value.as_bytes();
    let len = b.len();
    if len == 0 {
        return Analysis {
            multiline: false,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
            chars: 0,
            has_lf: false,
            other_breaks: false,
            nel: false,
        };
    }
    let first = b[0];
    let starts_with_document_marker = value.starts_with("---") || value.starts_with("...");
    if b.iter().all(|&c| c.wrapping_sub(0x21) < 0x5E) {
        // Fast path, printable ASCII without spaces: no breaks, no special characters, and
        // the only indicators are a leading one, a lone `?`/`:`/`-`, or a trailing `:`.
        let block_indicators = starts_with_document_marker
            || matches!(
                first,
                b'#' | b','
                    | b'['
                    | b']'
                    | b'{'
                    | b'}'
                    | b'&'
                    | b'*'
                    | b'!'
                    | b'|'
                    | b'>'
                    | b'\''
                    | b'"'
                    | b'%'
                    | b'@'
                    | b'`'
            )
            || (len == 1 && matches!(first, b'?' | b':' | b'-'))
            || b[len - 1] == b':';
        return Analysis {
            multiline: false,
            block_plain_allowed: !block_indicators,
            single_quoted_allowed: true,
            block_allowed: true,
            chars: len,
            has_lf: false,
            other_breaks: false,
            nel: false,
        };
    }
    let mut block_indicators = starts_with_document_marker;
    let mut line_breaks = false;
    let mut special_characters = false;
    let mut leading_space = false;
    let mut leading_break = false;
    let mut trailing_space = false;
    let mut trailing_break = false;
    let mut break_space = false;
    let mut space_break = false;
    let mut previous_space = false;
    let mut previous_break = false;
    let mut has_lf = false;
    let mut other_breaks = false;
    let mut nel = false;
    let mut chars = 0;

    let mut preceded_by_whitespace = true;
    let mut i = 0;
    while i < len {
        let c = b[i];
        chars += 1;
        let (w, is_space, is_brk) = if c < 0x80 {
            let followed_by_whitespace = i + 1 >= len || matches!(b[i + 1], b' ' | b'\t');
            if i == 0 {
                match c {
                    b'#' | b',' | b'[' | b']' | b'{' | b'}' | b'&' | b'*' | b'!' | b'|' | b'>'
                    | b'\'' | b'"' | b'%' | b'@' | b'`' => block_indicators = true,
                    b'?' | b':' | b'-' if followed_by_whitespace => block_indicators = true,
                    _ => {}
                }
            } else {
                match c {
                    b':' if followed_by_whitespace => block_indicators = true,
                    b'#' if preceded_by_whitespace => block_indicators = true,
                    _ => {}
                }
            }
            if !matches!(c, b'\n' | b' '..=b'~') {
                special_characters = true;
            }
            preceded_by_whitespace = matches!(c, b' ' | b'\t' | b'\0' | b'\n' | b'\r');
            match c {
                b'\n' => has_lf = true,
                b'\r' => other_breaks = true,
                _ => {}
            }
            (1, c == b' ', matches!(c, b'\n' | b'\r'))
        } else {
            let Some(ch) = value.get(i..).and_then(|rest| rest.chars().next()) else {
                break;
            };
            if !is_printable(ch) {
                special_characters = true;
            }
            let brk = is_break(ch);
            if brk {
                other_breaks = true;
                nel |= ch == '\u{85}';
            }
            preceded_by_whitespace = brk;
            (ch.len_utf8(), false, brk)
        };
        if is_space {
            if i == 0 {
                leading_space = true;
            }
            if i + w == len {
                trailing_space = true;
            }
            if previous_break {
                break_space = true;
            }
            previous_space = true;
            previous_break = false;
        } else if is_brk {
            line_breaks = true;
            if i == 0 {
                leading_break = true;
            }
            if i + w == len {
                trailing_break = true;
            }
            if previous_space {
                space_break = true;
            }
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        i += w;
    }

    let mut block_plain_allowed = true;
    let mut single_quoted_allowed = true;
    let mut block_allowed = true;
    if leading_space || leading_break || trailing_space || trailing_break {
        block_plain_allowed = false;
    }
    if trailing_space {
        block_allowed = false;
    }
    if break_space {
        block_plain_allowed = false;
        single_quoted_allowed = false;
    }
    if space_break || special_characters {
        block_plain_allowed = false;
        single_quoted_allowed = false;
        block_allowed = false;
    }
    if line_breaks || block_indicators {
        block_plain_allowed = false;
    }
    Analysis {
        multiline: line_breaks,
        block_plain_allowed,
        single_quoted_allowed,
        block_allowed,
        chars,
        has_lf,
        other_breaks,
        nel,
    }
}

/// `encoder.stringv` followed by `yaml_emitter_select_scalar_style` (block context, no tag).
fn select_style(s: &str, a: &Analysis, simple_key: bool) -> Style {
    let mut style = if a.has_lf {
        Style::Literal
    } else if can_use_plain(s) {
        Style::Plain
    } else {
        Style::Double
    };
    if simple_key && a.multiline {
        style = Style::Double;
    }
    if style == Style::Plain && (!a.block_plain_allowed || (s.is_empty() && simple_key)) {
        style = Style::Single;
    }
    if style == Style::Single && !a.single_quoted_allowed {
        style = Style::Double;
    }
    if style == Style::Literal && (!a.block_allowed || simple_key) {
        style = Style::Double;
    }
    style
}

// ---------------------------------------------------------------------------------------------
// The emitter
// ---------------------------------------------------------------------------------------------

/// The parts of libyaml's emitter state that influence the output of this pipeline.
struct Emitter<'a> {
    out: &'a mut String,
    /// Current indentation; -1 before the root collection.
    indent: isize,
    /// Column (in characters) of the next character.
    column: usize,
    /// The last character written was whitespace (or nothing on the line yet).
    whitespace: bool,
    /// Only indentation has been written on the current line.
    indention: bool,
    /// Sorted entry indices of the mappings being written (a stack, one slice per level).
    order: Vec<usize>,
}

impl Emitter<'_> {
    #[inline]
    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    #[inline]
    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    #[inline]
    fn write_break(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            self.out.push(c);
            self.column = 0;
        }
    }

    fn write_indent(&mut self) {
        let indent = self.indent.max(0) as usize;
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn write_indicator(
        &mut self,
        indicator: &str,
        need_whitespace: bool,
        is_whitespace: bool,
        is_indention: bool,
    ) {
        if need_whitespace && !self.whitespace {
            self.put(' ');
        }
        self.out.push_str(indicator);
        self.column += indicator.len();
        self.whitespace = is_whitespace;
        self.indention = self.indention && is_indention;
    }

    /// Emits one node. `mapping` tells whether it is a mapping value (libyaml's mapping
    /// context), which makes a block sequence indentless.
    fn node(&mut self, v: &Value, mapping: bool) {
        match v {
            Value::Null => self.plain_token("null"),
            Value::Bool(true) => self.plain_token("true"),
            Value::Bool(false) => self.plain_token("false"),
            Value::Int(i) => {
                self.space_before_plain();
                let start = self.out.len();
                push_int(self.out, *i);
                self.column += self.out.len() - start;
                self.after_plain();
            }
            Value::Float(f) => {
                self.space_before_plain();
                let start = self.out.len();
                push_float(self.out, *f);
                self.column += self.out.len() - start;
                self.after_plain();
            }
            Value::String(s) => {
                let a = analyze(s);
                if a.nel {
                    let s = fold_nel(s);
                    let a = analyze(&s);
                    self.scalar(&s, &a, false);
                } else {
                    self.scalar(s, &a, false);
                }
            }
            Value::Seq(items) => self.sequence(items, mapping),
            Value::Map(m) => self.mapping(m),
        }
    }

    #[inline]
    fn space_before_plain(&mut self) {
        if !self.whitespace {
            self.put(' ');
        }
    }

    #[inline]
    fn after_plain(&mut self) {
        self.whitespace = false;
        self.indention = false;
    }

    /// A plain scalar without spaces or breaks (null, booleans, numbers).
    fn plain_token(&mut self, s: &str) {
        self.space_before_plain();
        self.out.push_str(s);
        self.column += s.len();
        self.after_plain();
    }

    fn mapping(&mut self, m: &Map) {
        if m.is_empty() {
            self.write_indicator("{", true, true, false);
            self.write_indicator("}", false, false, false);
            return;
        }
        let saved = self.indent;
        self.indent = if self.indent < 0 {
            0
        } else {
            self.indent + BEST_INDENT as isize
        };
        // Sort entry indices on a stack shared by all nesting levels.
        let base = self.order.len();
        self.order.extend(0..m.len());
        let folded: Vec<Cow<'_, str>> = if m.keys().any(|k| has_nel(k)) {
            m.keys().map(|k| fold_nel(k)).collect()
        } else {
            Vec::new()
        };
        sort_by_less(&mut self.order[base..], |a, b| {
            key_less(key_at(m, &folded, a), key_at(m, &folded, b))
        });
        for j in base..base + m.len() {
            let Some(&index) = self.order.get(j) else {
                break;
            };
            let Some((_, value)) = m.get_index(index) else {
                continue;
            };
            let key = key_at(m, &folded, index);
            self.write_indent();
            let a = analyze(key);
            if !a.multiline && key.len() <= MAX_SIMPLE_KEY_LEN {
                self.scalar(key, &a, true);
                self.write_indicator(":", false, false, false);
            } else {
                self.write_indicator("?", true, false, true);
                self.scalar(key, &a, false);
                self.write_indent();
                self.write_indicator(":", true, false, true);
            }
            self.node(value, true);
        }
        self.order.truncate(base);
        self.indent = saved;
    }

    fn sequence(&mut self, items: &[Value], mapping: bool) {
        if items.is_empty() {
            self.write_indicator("[", true, true, false);
            self.write_indicator("]", false, false, false);
            return;
        }
        let saved = self.indent;
        let indentless = mapping && !self.indention;
        if self.indent < 0 {
            self.indent = 0;
        } else if !indentless {
            self.indent += BEST_INDENT as isize;
        }
        for item in items {
            self.write_indent();
            self.write_indicator("-", true, false, true);
            self.node(item, false);
        }
        self.indent = saved;
    }

    /// A string scalar; `simple_key` when it is written as a simple mapping key.
    fn scalar(&mut self, s: &str, a: &Analysis, simple_key: bool) {
        let style = select_style(s, a, simple_key);
        let saved = self.indent;
        self.indent = if self.indent < 0 {
            BEST_INDENT as isize
        } else {
            self.indent + BEST_INDENT as isize
        };
        match style {
            Style::Plain => self.write_plain(s, a, !simple_key),
            Style::Single => self.write_single_quoted(s, !simple_key),
            Style::Double => self.write_double_quoted(s, !simple_key),
            Style::Literal => self.write_literal(s, a),
        }
        self.indent = saved;
    }

    fn write_plain(&mut self, s: &str, a: &Analysis, allow_breaks: bool) {
        self.space_before_plain();
        // No space can be past the best width: no folding, and plain scalars have no breaks.
        if !allow_breaks || self.column + a.chars <= BEST_WIDTH + 1 {
            self.out.push_str(s);
            self.column += a.chars;
            self.after_plain();
            return;
        }
        let b = s.as_bytes();
        let mut spaces = false;
        let mut breaks = false;
        for (i, c) in s.char_indices() {
            if c == ' ' {
                if !spaces && self.column > BEST_WIDTH && b.get(i + 1) != Some(&b' ') {
                    self.write_indent();
                } else {
                    self.put(' ');
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.put(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        self.after_plain();
    }

    fn write_single_quoted(&mut self, s: &str, allow_breaks: bool) {
        self.write_indicator("'", true, false, false);
        let b = s.as_bytes();
        let len = b.len();
        let mut spaces = false;
        let mut breaks = false;
        for (i, c) in s.char_indices() {
            if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i + 1 < len
                    && b[i + 1] != b' '
                {
                    self.write_indent();
                } else {
                    self.put(' ');
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        self.write_indicator("'", false, false, false);
        self.after_plain();
    }

    fn write_double_quoted(&mut self, s: &str, allow_breaks: bool) {
        self.write_indicator("\"", true, false, false);
        let b = s.as_bytes();
        let len = b.len();
        // libyaml's is_bom() looks at the start of the value, not at the current character.
        let bom = s.starts_with('\u{FEFF}');
        let mut spaces = false;
        for (i, c) in s.char_indices() {
            if bom || !is_printable(c) || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                match c {
                    '\0' => self.put('0'),
                    '\u{07}' => self.put('a'),
                    '\u{08}' => self.put('b'),
                    '\t' => self.put('t'),
                    '\n' => self.put('n'),
                    '\u{0B}' => self.put('v'),
                    '\u{0C}' => self.put('f'),
                    '\r' => self.put('r'),
                    '\u{1B}' => self.put('e'),
                    '"' => self.put('"'),
                    '\\' => self.put('\\'),
                    '\u{85}' => self.put('N'),
                    '\u{A0}' => self.put('_'),
                    '\u{2028}' => self.put('L'),
                    '\u{2029}' => self.put('P'),
                    _ => {
                        let v = c as u32;
                        let (letter, width) = if v <= 0xFF {
                            ('x', 2)
                        } else if v <= 0xFFFF {
                            ('u', 4)
                        } else {
                            ('U', 8)
                        };
                        self.put(letter);
                        for k in (0..width).rev() {
                            let digit = (v >> (k * 4)) & 0xF;
                            let ch =
                                char::from_digit(digit, 16).map_or('0', |d| d.to_ascii_uppercase());
                            self.put(ch);
                        }
                    }
                }
                spaces = false;
            } else if c == ' ' {
                if allow_breaks && !spaces && self.column > BEST_WIDTH && i > 0 && i + 1 < len {
                    self.write_indent();
                    if b[i + 1] == b' ' {
                        self.put('\\');
                    }
                } else {
                    self.put(' ');
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
        }
        self.write_indicator("\"", false, false, false);
        self.after_plain();
    }

    fn write_literal(&mut self, s: &str, a: &Analysis) {
        self.write_indicator("|", true, false, false);
        // Block scalar hints: indentation indicator, then chomping.
        let mut rev = s.chars().rev();
        if s.starts_with(' ') || s.chars().next().is_some_and(is_break) {
            self.write_indicator("2", false, false, false);
        }
        let last = rev.next();
        let chomp = match last {
            Some(c) if !is_break(c) => Some("-"),
            Some(_) => match rev.next() {
                None => Some("+"),
                Some(prev) if is_break(prev) => Some("+"),
                Some(_) => None,
            },
            None => Some("-"),
        };
        if let Some(chomp) = chomp {
            self.write_indicator(chomp, false, false, false);
        }
        self.put_break();
        self.indention = true;
        self.whitespace = true;
        if !a.other_breaks {
            // Fast path: lines separated by '\n' only.
            let mut rest = s;
            while !rest.is_empty() {
                if let Some(stripped) = rest.strip_prefix('\n') {
                    self.put_break();
                    self.indention = true;
                    rest = stripped;
                    continue;
                }
                let end = rest.find('\n').unwrap_or(rest.len());
                let line = &rest[..end];
                self.write_indent();
                self.out.push_str(line);
                self.column += if line.is_ascii() {
                    line.len()
                } else {
                    line.chars().count()
                };
                self.indention = false;
                rest = &rest[end..];
            }
            return;
        }
        let mut breaks = true;
        for c in s.chars() {
            if is_break(c) {
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
    }
}

fn push_int(out: &mut String, i: i64) {
    use std::fmt::Write as _;
    let _ = write!(out, "{i}");
}

#[cfg(test)]
mod tests {
    //! Every expected text in this module was recorded from `kubectl kustomize` (kustomize v5.5.0)
    //! run on resources holding the same values, unless a comment says otherwise.

    use serde_json::json;

    use super::*;

    /// `{"data": {key: value}}`, the shape the string cases were recorded in.
    fn data_doc(key: &str, value: Value) -> Value {
        let mut data = Map::new();
        data.insert(key.to_string(), value);
        let mut doc = Map::new();
        doc.insert("data".to_string(), Value::Map(data));
        Value::Map(doc)
    }

    /// `(key, value, how kustomize prints the entry under a top-level `data:` key)`.
    const STRING_CASES: &[(&str, &str, &str)] = &[
        ("k000", "", "  k000: \"\"\n"),
        ("k001", " ", "  k001: ' '\n"),
        ("k002", "a ", "  k002: 'a '\n"),
        ("k003", " a", "  k003: ' a'\n"),
        ("k004", "a  b", "  k004: a  b\n"),
        ("k005", "- a", "  k005: '- a'\n"),
        ("k006", "-a", "  k006: -a\n"),
        ("k007", "-", "  k007: '-'\n"),
        ("k008", "--", "  k008: --\n"),
        ("k009", "---", "  k009: '---'\n"),
        ("k010", "--- a", "  k010: '--- a'\n"),
        ("k011", "...", "  k011: '...'\n"),
        ("k012", "#x", "  k012: '#x'\n"),
        ("k013", "a#b", "  k013: a#b\n"),
        ("k014", "a #b", "  k014: 'a #b'\n"),
        ("k015", "a: b", "  k015: 'a: b'\n"),
        ("k016", "a:b", "  k016: a:b\n"),
        ("k017", "a:", "  k017: 'a:'\n"),
        ("k018", ": test", "  k018: ': test'\n"),
        ("k019", ":x", "  k019: :x\n"),
        ("k020", "?", "  k020: '?'\n"),
        ("k021", "? a", "  k021: '? a'\n"),
        ("k022", "?a", "  k022: ?a\n"),
        ("k023", "@x", "  k023: '@x'\n"),
        ("k024", "`x", "  k024: '`x'\n"),
        ("k025", "%x", "  k025: '%x'\n"),
        ("k026", "*x", "  k026: '*x'\n"),
        ("k027", "&x", "  k027: '&x'\n"),
        ("k028", "!x", "  k028: '!x'\n"),
        ("k029", "|", "  k029: '|'\n"),
        ("k030", ">", "  k030: '>'\n"),
        ("k031", "'", "  k031: ''''\n"),
        ("k032", "''", "  k032: ''''''\n"),
        ("k033", "\"", "  k033: '\"'\n"),
        ("k034", "\\", "  k034: \\\n"),
        ("k035", "a'b", "  k035: a'b\n"),
        ("k036", "a\"b", "  k036: a\"b\n"),
        ("k037", "y", "  k037: \"y\"\n"),
        ("k038", "Y", "  k038: \"Y\"\n"),
        ("k039", "yes", "  k039: \"yes\"\n"),
        ("k040", "No", "  k040: \"No\"\n"),
        ("k041", "on", "  k041: \"on\"\n"),
        ("k042", "OFF", "  k042: \"OFF\"\n"),
        ("k043", "true", "  k043: \"true\"\n"),
        ("k044", "True", "  k044: \"True\"\n"),
        ("k045", "TRUE", "  k045: \"TRUE\"\n"),
        ("k046", "tRue", "  k046: tRue\n"),
        ("k047", "null", "  k047: \"null\"\n"),
        ("k048", "Null", "  k048: \"Null\"\n"),
        ("k049", "~", "  k049: \"~\"\n"),
        ("k050", "<<", "  k050: <<\n"),
        ("k051", "0x1F", "  k051: \"0x1F\"\n"),
        ("k052", "0X1f", "  k052: \"0X1f\"\n"),
        ("k053", "0o17", "  k053: \"0o17\"\n"),
        ("k054", "0O17", "  k054: \"0O17\"\n"),
        ("k055", "0b101", "  k055: \"0b101\"\n"),
        ("k056", "0B101", "  k056: \"0B101\"\n"),
        ("k057", "0777", "  k057: \"0777\"\n"),
        ("k058", "08", "  k058: \"08\"\n"),
        ("k059", "09.5", "  k059: \"09.5\"\n"),
        ("k060", "1_000", "  k060: \"1_000\"\n"),
        ("k061", "1__0", "  k061: \"1__0\"\n"),
        ("k062", "_1", "  k062: _1\n"),
        ("k063", "1_", "  k063: \"1_\"\n"),
        ("k064", "+1", "  k064: \"+1\"\n"),
        ("k065", "-1", "  k065: \"-1\"\n"),
        ("k066", "+", "  k066: +\n"),
        ("k067", "1e3", "  k067: \"1e3\"\n"),
        ("k068", "1E3", "  k068: \"1E3\"\n"),
        ("k069", "1e", "  k069: 1e\n"),
        ("k070", "1.", "  k070: \"1.\"\n"),
        ("k071", ".5", "  k071: \".5\"\n"),
        ("k072", "._5", "  k072: ._5\n"),
        ("k073", ".5_5", "  k073: \".5_5\"\n"),
        ("k074", "+.5", "  k074: \"+.5\"\n"),
        ("k075", "-.5", "  k075: \"-.5\"\n"),
        ("k076", "1e400", "  k076: 1e400\n"),
        ("k077", "-1e400", "  k077: -1e400\n"),
        ("k078", ".1e400", "  k078: .1e400\n"),
        ("k079", ".inf", "  k079: \".inf\"\n"),
        ("k080", ".Inf", "  k080: \".Inf\"\n"),
        ("k081", "-.inf", "  k081: \"-.inf\"\n"),
        ("k082", "+.INF", "  k082: \"+.INF\"\n"),
        ("k083", ".nan", "  k083: \".nan\"\n"),
        ("k084", ".NaN", "  k084: \".NaN\"\n"),
        ("k085", "1:20", "  k085: \"1:20\"\n"),
        ("k086", "1:20:30.5", "  k086: \"1:20:30.5\"\n"),
        ("k087", "-1:20", "  k087: \"-1:20\"\n"),
        ("k088", "1:60", "  k088: 1:60\n"),
        ("k089", "1:2:", "  k089: '1:2:'\n"),
        ("k090", "190:20:30", "  k090: \"190:20:30\"\n"),
        ("k091", "2021-01-01", "  k091: \"2021-01-01\"\n"),
        ("k092", "2021-1-1", "  k092: \"2021-1-1\"\n"),
        ("k093", "2021-02-30", "  k093: 2021-02-30\n"),
        ("k094", "2020-02-29", "  k094: \"2020-02-29\"\n"),
        ("k095", "2021-02-29", "  k095: 2021-02-29\n"),
        (
            "k096",
            "2021-01-01T10:00:00Z",
            "  k096: \"2021-01-01T10:00:00Z\"\n",
        ),
        (
            "k097",
            "2021-01-01T10:00:00",
            "  k097: 2021-01-01T10:00:00\n",
        ),
        (
            "k098",
            "2021-01-01t10:00:00+05:00",
            "  k098: \"2021-01-01t10:00:00+05:00\"\n",
        ),
        (
            "k099",
            "2021-01-01 10:00:00",
            "  k099: \"2021-01-01 10:00:00\"\n",
        ),
        (
            "k100",
            "2021-01-01  10:00:00.123",
            "  k100: \"2021-01-01  10:00:00.123\"\n",
        ),
        (
            "k101",
            "2021-01-01T10:00:00.5-08:00",
            "  k101: \"2021-01-01T10:00:00.5-08:00\"\n",
        ),
        (
            "k102",
            "2021-01-01T24:00:00Z",
            "  k102: 2021-01-01T24:00:00Z\n",
        ),
        ("k103", "12021-01-01", "  k103: 12021-01-01\n"),
        ("k104", "0b-101", "  k104: \"0b-101\"\n"),
        ("k105", "0b+1", "  k105: \"0b+1\"\n"),
        ("k106", "-0b101", "  k106: \"-0b101\"\n"),
        ("k107", "-0b-1", "  k107: -0b-1\n"),
        ("k108", "0x", "  k108: 0x\n"),
        ("k109", "0o", "  k109: 0o\n"),
        ("k110", "0b", "  k110: 0b\n"),
        ("k111", "0_7", "  k111: \"0_7\"\n"),
        ("k112", "0x_1", "  k112: \"0x_1\"\n"),
        ("k113", "0x1_F", "  k113: \"0x1_F\"\n"),
        ("k114", "1_2.5", "  k114: \"1_2.5\"\n"),
        ("k115", "1.2_5", "  k115: \"1.2_5\"\n"),
        ("k116", "1e1_0", "  k116: \"1e1_0\"\n"),
        ("k117", "\t", "  k117: \"\\t\"\n"),
        ("k118", "a\tb", "  k118: \"a\\tb\"\n"),
        ("k119", "\r", "  k119: \"\\r\"\n"),
        ("k120", "a\rb", "  k120: \"a\\rb\"\n"),
        ("k121", "\u{85}", "  k121: ' '\n"),
        ("k122", "a\u{85}b", "  k122: a b\n"),
        ("k123", "a \u{85} b", "  k123: a b\n"),
        ("k124", "a\u{85}\u{85}b", "  k124: |-\n    a\n    b\n"),
        ("k125", "\u{2028}", "  k125: '\u{2028}'\n"),
        ("k126", "a\u{2028}b", "  k126: 'a\u{2028}    b'\n"),
        ("k127", "\u{A0}", "  k127: \u{A0}\n"),
        ("k128", "a\u{A0}", "  k128: a\u{A0}\n"),
        ("k129", "\u{E9}", "  k129: \u{E9}\n"),
        ("k130", "\u{4E2D}\u{6587}", "  k130: \u{4E2D}\u{6587}\n"),
        ("k131", "\u{1F600}", "  k131: \"\\U0001F600\"\n"),
        ("k132", "a\u{1F600}b", "  k132: \"a\\U0001F600b\"\n"),
        ("k133", "\u{FEFF}", "  k133: \"\\uFEFF\"\n"),
        (
            "k134",
            "\u{FEFF}ab c",
            "  k134: \"\\uFEFF\\x61\\x62\\x20\\x63\"\n",
        ),
        ("k135", "a\u{FEFF}", "  k135: \"a\\uFEFF\"\n"),
        ("k137", "\u{0}", "  k137: \"\\0\"\n"),
        ("k138", "\u{1B}", "  k138: \"\\e\"\n"),
        ("k139", "\u{7}\u{8}\u{B}\u{C}", "  k139: \"\\a\\b\\v\\f\"\n"),
        ("k140", "\n", "  k140: |2+\n\n"),
        ("k141", "\n\n", "  k141: |2+\n\n\n"),
        ("k142", "a\n", "  k142: |\n    a\n"),
        ("k143", "a\nb", "  k143: |-\n    a\n    b\n"),
        ("k144", "a\nb\n", "  k144: |\n    a\n    b\n"),
        ("k145", "a\nb\n\n", "  k145: |+\n    a\n    b\n\n"),
        ("k146", "\na", "  k146: |2-\n\n    a\n"),
        ("k147", " a\nb", "  k147: |2-\n     a\n    b\n"),
        ("k148", "a \nb", "  k148: \"a \\nb\"\n"),
        ("k149", "a\n b", "  k149: |-\n    a\n     b\n"),
        ("k150", "a\n\n", "  k150: |+\n    a\n\n"),
        ("k151", "a\n\n\n", "  k151: |+\n    a\n\n\n"),
        ("k152", "\n\na", "  k152: |2-\n\n\n    a\n"),
        ("k153", "a\n ", "  k153: \"a\\n \"\n"),
        ("k154", "a\r\nb", "  k154: \"a\\r\\nb\"\n"),
        ("k155", "a\tb\nc", "  k155: \"a\\tb\\nc\"\n"),
        (
            "k156",
            "\u{E9}\n\u{FC}",
            "  k156: |-\n    \u{E9}\n    \u{FC}\n",
        ),
        (
            "k157",
            "line1\n  indented\nline3\n",
            "  k157: |\n    line1\n      indented\n    line3\n",
        ),
        (
            "k158",
            "# comment\nx: y\n",
            "  k158: |\n    # comment\n    x: y\n",
        ),
        (
            "k159",
            "a\u{2028}b\nc",
            "  k159: |-\n    a\u{2028}    b\n    c\n",
        ),
        (
            "k161",
            "word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word ",
            "  k161: 'word word word word word word word word word word word word word word word\n    word word word word word word word word word word word word word word word '\n",
        ),
        (
            "k162",
            "word  word  word  word  word  word  word  word  word  word  word  word  word  word  word  word  word  word  word  word  ",
            "  k162: 'word  word  word  word  word  word  word  word  word  word  word  word  word  word  word  word  word  word  word  word  '\n",
        ),
        (
            "k163",
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "  k163: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
        ),
        (
            "k164",
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx y",
            "  k164: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n    y\n",
        ),
        (
            "k165",
            "a xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx b c",
            "  k165: a xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n    b c\n",
        ),
        (
            "k166",
            "'a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b ",
            "  k166: '''a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b\n    a b a b a b a b a b a b a b a b a b a b a b a b '\n",
        ),
        (
            "k167",
            "\"a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b ",
            "  k167: '\"a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b a b\n    a b a b a b a b a b a b a b a b a b a b a b a b '\n",
        ),
        (
            "k168",
            "a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  \t",
            "  k168: \"a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  a\n    \\ a  a  a  a  a  a  a  a  a  a  a  a  a  a  a  \\t\"\n",
        ),
        (
            "k169",
            " lead abc def abc def abc def abc def abc def abc def abc def abc def abc def abc def abc def abc def abc def abc def abc def ",
            "  k169: ' lead abc def abc def abc def abc def abc def abc def abc def abc def abc\n    def abc def abc def abc def abc def abc def abc def '\n",
        ),
        (
            "k170",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa b",
            "  k170: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n    b\n",
        ),
        (
            "k171",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa b",
            "  k171: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n    b\n",
        ),
        (
            "k172",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa b c",
            "  k172: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n    b c\n",
        ),
        (
            "k173",
            "tab\tword word word word word word word word word word word word word word word word word word word word word word word word word ",
            "  k173: \"tab\\tword word word word word word word word word word word word word word\n    word word word word word word word word word word word \"\n",
        ),
        (
            "k174",
            "word word word word word word word word word word word word word word word word word word word word word word word word word    end",
            "  k174: word word word word word word word word word word word word word word word\n    word word word word word word word word word word    end\n",
        ),
        (
            "k175",
            "word word word word word word word word word word word word word word word word word word word word word word word word word  two spaces more more more more more more more more more more more more more more more more more more more more ",
            "  k175: 'word word word word word word word word word word word word word word word\n    word word word word word word word word word word  two spaces more more more more\n    more more more more more more more more more more more more more more more more '\n",
        ),
        (
            "k176",
            "long line with trailing spaces long line with trailing spaces long line with trailing spaces long line with trailing spaces    ",
            "  k176: 'long line with trailing spaces long line with trailing spaces long line with\n    trailing spaces long line with trailing spaces    '\n",
        ),
        (
            "k177",
            "\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9} \u{E9}",
            "  k177: \u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\n    \u{E9}\n",
        ),
        (
            "k178",
            "k: v v v v v v v v v v v v v v v v v v v v v v v v v v v v v v v v v v v v v v v v v v v v v v v v v v ",
            "  k178: 'k: v v v v v v v v v v v v v v v v v v v v v v v v v v v v v v v v v v v\n    v v v v v v v v v v v v v v v '\n",
        ),
    ];

    /// Keys of a `data:` mapping, in input order.
    const SORT_KEYS: &[&str] = &[
        "b",
        "a",
        "B",
        "A",
        "a1",
        "a10",
        "a2",
        "a01",
        "a001",
        "a0",
        "a00",
        "1",
        "2",
        "01",
        "_x",
        "-x",
        ".x",
        "x_",
        "x-",
        "x.",
        "aa",
        "aB",
        "Ab",
        "\u{E9}",
        "z9",
        "z09",
        "z009",
        "1a",
        "1b",
        "a01b",
        "x10y",
        "x9y",
        "x9",
        "x09",
        "x0",
        "x00",
        "x000",
        "y 1",
        "y1",
        "true",
        "yes",
        "no",
        "on",
        "null",
        "1.5",
        "a:b",
        "a: b",
        "-",
        "- x",
        "#",
        "? x",
        "@",
        "",
        " ",
        "x\ny",
        "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk",
        "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk",
        "t\tab",
        "2021-01-01",
        "~",
    ];
    /// How kustomize prints that mapping (values are all `v`).
    const SORTED_DATA: &str = concat!(
        "  \"\": v\n",
        "  ' ': v\n",
        "  '#': v\n",
        "  '-': v\n",
        "  '- x': v\n",
        "  -x: v\n",
        "  .x: v\n",
        "  '? x': v\n",
        "  '@': v\n",
        "  _x: v\n",
        "  \"~\": v\n",
        "  \"1\": v\n",
        "  \"1.5\": v\n",
        "  1a: v\n",
        "  1b: v\n",
        "  \"01\": v\n",
        "  \"2\": v\n",
        "  \"2021-01-01\": v\n",
        "  A: v\n",
        "  Ab: v\n",
        "  B: v\n",
        "  a: v\n",
        "  'a: b': v\n",
        "  a:b: v\n",
        "  a0: v\n",
        "  a00: v\n",
        "  a1: v\n",
        "  a01: v\n",
        "  a01b: v\n",
        "  a001: v\n",
        "  a2: v\n",
        "  a10: v\n",
        "  aB: v\n",
        "  aa: v\n",
        "  b: v\n",
        "  kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk: v\n",
        "  ? kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\n",
        "  : v\n",
        "  \"no\": v\n",
        "  \"null\": v\n",
        "  \"on\": v\n",
        "  \"t\\tab\": v\n",
        "  \"true\": v\n",
        "  ? |-\n",
        "    x\n",
        "    y\n",
        "  : v\n",
        "  x-: v\n",
        "  x.: v\n",
        "  x_: v\n",
        "  x0: v\n",
        "  x00: v\n",
        "  x000: v\n",
        "  x9: v\n",
        "  x9y: v\n",
        "  x09: v\n",
        "  x10y: v\n",
        "  y 1: v\n",
        "  y1: v\n",
        "  \"yes\": v\n",
        "  z9: v\n",
        "  z09: v\n",
        "  z009: v\n",
        "  \u{E9}: v\n",
    );

    const NESTED_SPEC: &str = concat!(
        "spec:\n",
        "  a:\n",
        "  - - 1\n",
        "    - - 2\n",
        "      - []\n",
        "  - {}\n",
        "  - []\n",
        "  - x:\n",
        "    - a\n",
        "    - \"y\": z\n",
        "  - - {}\n",
        "  - - []\n",
        "  b:\n",
        "    c:\n",
        "    - - a\n",
        "      - b\n",
        "    - - c\n",
        "    d:\n",
        "    - e:\n",
        "      - f\n",
        "      - g\n",
        "  e:\n",
        "  - |-\n",
        "    multi\n",
        "    line\n",
        "  - - |-\n",
        "      m\n",
        "      l\n",
        "  - k: |\n",
        "      m\n",
        "      l\n",
        "  f:\n",
        "    ? |-\n",
        "      k3\n",
        "      x\n",
        "    : a: b\n",
        "    ? longkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\n",
        "    : a: b\n",
        "    ? |-\n",
        "      multi\n",
        "      key\n",
        "    : - a\n",
        "      - b\n",
        "    ? |-\n",
        "      other\n",
        "      key\n",
        "    : v\n",
        "  g:\n",
        "  - null\n",
        "  - true\n",
        "  - false\n",
        "  - 1\n",
        "  - -5\n",
        "  - 0.5\n",
        "  - 1e+21\n",
        "  - 1.234567895e+08\n",
        "  - 1e-07\n",
        "  - 1\n",
        "  - 1e+20\n",
        "  - 1000000\n",
        "  - 0.0001\n",
        "  - 1e-05\n",
        "  - 0\n",
    );

    #[test]
    fn strings_are_quoted_folded_and_blocked_like_kustomize() {
        let mut failures = Vec::new();
        for &(key, value, expected) in STRING_CASES {
            let got = to_yaml(&data_doc(key, Value::String(value.to_string())));
            let want = format!("data:\n{expected}");
            if got != want {
                failures.push(format!("{value:?}\n  want {want:?}\n  got  {got:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn keys_sort_in_go_yaml_v2_natural_order() {
        let mut data = Map::new();
        for key in SORT_KEYS {
            data.insert((*key).to_string(), Value::from("v"));
        }
        let mut doc = Map::new();
        doc.insert("data".to_string(), Value::Map(data));
        assert_eq!(to_yaml(&Value::Map(doc)), format!("data:\n{SORTED_DATA}"));
    }

    #[test]
    fn key_order_examples() {
        // Digit runs compare numerically, non-letters sort before letters, a shorter equal
        // prefix sorts first (consequences of the order recorded in SORTED_DATA).
        assert!(key_less("a2", "a10"));
        assert!(key_less("a1", "a01"));
        assert!(key_less("a01", "a001"));
        assert!(key_less("_x", "A"));
        assert!(key_less("B", "a"));
        assert!(key_less("x9y", "x09"));
        assert!(!key_less("a10", "a2"));
        assert!(!key_less("a", "a"));
    }

    #[test]
    fn nested_collections_and_complex_keys() {
        let long_key = format!("long{}", "k".repeat(130));
        let mut f = serde_json::Map::new();
        f.insert("multi\nkey".into(), json!(["a", "b"]));
        f.insert(long_key, json!({"a": "b"}));
        f.insert("other\nkey".into(), json!("v"));
        f.insert("k3\nx".into(), json!({"a": "b"}));
        let spec = json!({
            "a": [[1, [2, []]], {}, [], {"x": ["a", {"y": "z"}]}, [{}], [[]]],
            "b": {"c": [["a", "b"], ["c"]], "d": [{"e": ["f", "g"]}]},
            "e": ["multi\nline", ["m\nl"], {"k": "m\nl\n"}],
            "f": f,
            "g": [null, true, false, 1, -5, 0.5, 1e21, 123456789.5, 1e-7, 1.0,
                  1e20, 1e6, 0.0001, 0.00001, -0.0],
        });
        let doc = Value::from_json(&json!({ "spec": spec }));
        assert_eq!(to_yaml(&doc), NESTED_SPEC);
    }

    #[test]
    fn floats_print_after_the_json_round_trip() {
        let cases = [
            (0.5, "0.5"),
            (1e21, "1e+21"),
            (123456789.5, "1.234567895e+08"),
            (1e-7, "1e-07"),
            (1.0, "1"),
            (1e20, "1e+20"),
            (1e6, "1000000"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-0.0, "0"),
            (1e19, "10000000000000000000"),
            (9.3e18, "9300000000000000000"),
            (2e19, "2e+19"),
            // Exact ties between two shortest forms: Go rounds to even.
            (-981_446_413_237_567.0 - 0.25, "-9.814464132375672e+14"),
            (-1_054_958_628_518_721.0 - 0.25, "-1.0549586285187212e+15"),
            (216_486_192_242_783.0 + 0.625, "2.1648619224278362e+14"),
        ];
        for (f, expected) in cases {
            assert_eq!(format_float(f), expected, "{f:e}");
            assert_eq!(
                to_yaml(&data_doc("v", Value::Float(f))),
                format!("data:\n  v: {expected}\n")
            );
        }
        assert_eq!(increment_digits("12", 0), ("13".to_string(), 0));
        assert_eq!(increment_digits("199", 3), ("2".to_string(), 3));
        assert_eq!(increment_digits("999", 3), ("1".to_string(), 4));
        // Not representable in JSON; these follow go-yaml v2's encoder.floatv.
        assert_eq!(format_float(f64::NAN), ".nan");
        assert_eq!(format_float(f64::INFINITY), ".inf");
        assert_eq!(format_float(f64::NEG_INFINITY), "-.inf");
    }

    #[test]
    fn documents_and_streams() {
        // Checked against go-yaml v2 (the sigs.k8s.io/yaml fork's source) Marshal output.
        assert_eq!(to_yaml(&Value::Map(Map::new())), "{}\n");
        let a = data_doc("a", Value::Int(1));
        let b = data_doc("b", Value::Seq(vec![Value::Null, Value::Bool(true)]));
        assert_eq!(
            to_yaml_stream(&[a, b]),
            "data:\n  a: 1\n---\ndata:\n  b:\n  - null\n  - true\n"
        );
        assert_eq!(to_yaml_stream(&[]), "");
    }

    #[test]
    fn resolver_helpers() {
        // Plain-safe or not, as the STRING_CASES outputs show.
        for s in [
            "<<",
            "tRue",
            "_1",
            "1e",
            "._5",
            "1e400",
            "1:60",
            "2021-02-30",
            "0x",
            "-0b-1",
        ] {
            assert!(can_use_plain(s), "{s}");
        }
        for s in [
            "",
            "y",
            "~",
            "0x1F",
            "0777",
            "1_000",
            "+.5",
            ".5_5",
            "1:20",
            "2020-02-29",
        ] {
            assert!(!can_use_plain(s), "{s}");
        }
        assert!(is_timestamp("2021-01-01t10:00:00+05:00"));
        assert!(!is_timestamp("2021-01-01T10:00:00"));
        assert!(is_base60_float("190:20:30"));
        assert!(!is_base60_float("1:2:"));
    }
}
