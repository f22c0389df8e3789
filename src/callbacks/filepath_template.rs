//! ModelCheckpoint's file-name templates: Python's `str.format` over `epoch` (1-based, an int)
//! and the epoch's logs (floats), as Keras's `filepath.format(epoch=epoch + 1, **logs)`.
//!
//! Supported: `{name}` and `{name:spec}` with Python's format-spec mini-language
//! `[[fill]align][sign][#][0][width][,|_][.precision][type]`, types `d` (ints only, as Python),
//! `f F e E g G %` and none; `{{` and `}}` for braces. A float without a spec prints as Python's
//! `repr(float)` does (shortest round-trip digits of the f64 value, `1e-05`, `3.0`).

use super::Logs;
use crate::error::{Error, Result};

/// A value to format: the epoch is an int, log values are floats (f64 of the f32, as Keras's
/// `float(...)` of a float32 gives).
#[derive(Clone, Copy)]
enum Value {
    Int(i64),
    Float(f64),
}

fn bad(template: &str, reason: impl Into<String>) -> Error {
    Error::invalid("ModelCheckpoint filepath", format!("{template:?}"), reason.into())
}

/// Fills `template` for `epoch` (0-based; written 1-based) and `logs`.
pub(crate) fn fill(template: &str, epoch: usize, logs: &Logs) -> Result<String> {
    let mut out = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '}' => return Err(bad(template, "a single '}' (write '}}' for a brace)")),
            '{' => {
                let mut field = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some('{') => return Err(bad(template, "nested '{' in a field")),
                        Some(ch) => field.push(ch),
                        None => return Err(bad(template, "a '{' without its '}' (write '{{' for a brace)")),
                    }
                }
                let (name, spec) = field.split_once(':').unwrap_or((field.as_str(), ""));
                if name.contains('!') {
                    return Err(bad(template, format!("conversion {name:?} is not supported")));
                }
                let value = if name == "epoch" {
                    Value::Int(epoch as i64 + 1)
                } else {
                    match logs.get(name) {
                        Some(v) => Value::Float(v as f64),
                        None => {
                            let mut keys: Vec<&str> = vec!["epoch"];
                            keys.extend(logs.keys());
                            return Err(bad(
                                template,
                                format!(
                                    "a field {{{name}}} that this epoch's logs do not have (they have: {})",
                                    keys.join(", ")
                                ),
                            ));
                        }
                    }
                };
                out.push_str(&format_value(value, spec).map_err(|e| bad(template, format!("field {{{field}}}: {e}")))?);
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Python's `format(value, spec)` for ints and floats.
fn format_value(value: Value, spec: &str) -> std::result::Result<String, String> {
    let chars: Vec<char> = spec.chars().collect();
    let mut i = 0;
    let mut fill = ' ';
    let mut align: Option<char> = None;
    let is_align = |c: char| matches!(c, '<' | '>' | '^' | '=');
    if chars.len() >= 2 && is_align(chars[1]) {
        fill = chars[0];
        align = Some(chars[1]);
        i = 2;
    } else if !chars.is_empty() && is_align(chars[0]) {
        align = Some(chars[0]);
        i = 1;
    }
    let mut sign = '-';
    if i < chars.len() && matches!(chars[i], '+' | '-' | ' ') {
        sign = chars[i];
        i += 1;
    }
    let mut alternate = false;
    if i < chars.len() && chars[i] == '#' {
        alternate = true;
        i += 1;
    }
    if i < chars.len() && chars[i] == '0' {
        if align.is_none() {
            fill = '0';
            align = Some('=');
        }
        i += 1;
    }
    let mut width = 0usize;
    while i < chars.len() && chars[i].is_ascii_digit() {
        width = width * 10 + chars[i].to_digit(10).unwrap_or(0) as usize;
        i += 1;
    }
    let mut grouping = None;
    if i < chars.len() && matches!(chars[i], ',' | '_') {
        grouping = Some(chars[i]);
        i += 1;
    }
    let mut precision = None;
    if i < chars.len() && chars[i] == '.' {
        i += 1;
        let start = i;
        let mut p = 0usize;
        while i < chars.len() && chars[i].is_ascii_digit() {
            p = p * 10 + chars[i].to_digit(10).unwrap_or(0) as usize;
            i += 1;
        }
        if i == start {
            return Err("format specifier missing precision".into());
        }
        precision = Some(p);
    }
    let ty = chars.get(i).copied();
    if i + usize::from(ty.is_some()) != chars.len() {
        return Err(format!("invalid format specifier {spec:?}"));
    }
    let (negative, body) = match (value, ty) {
        (Value::Int(n), None | Some('d')) => {
            if precision.is_some() {
                return Err("precision not allowed in integer format specifier".into());
            }
            (n < 0, n.unsigned_abs().to_string())
        }
        (Value::Float(_), Some('d')) => return Err("unknown format code 'd' for a float (use .0f)".into()),
        (v, t) => {
            let x = match v {
                Value::Int(n) => n as f64,
                Value::Float(x) => x,
            };
            (
                x.is_sign_negative() && !x.is_nan(),
                float_body(x.abs(), t, precision, alternate, matches!(v, Value::Int(_)))?,
            )
        }
    };
    let body = match grouping {
        Some(sep) => group(&body, sep),
        None => body,
    };
    let sign_str = match (negative, sign) {
        (true, _) => "-",
        (false, '+') => "+",
        (false, ' ') => " ",
        _ => "",
    };
    let len = sign_str.chars().count() + body.chars().count();
    let pad = width.saturating_sub(len);
    let fills = |n: usize| std::iter::repeat_n(fill, n).collect::<String>();
    Ok(match align.unwrap_or('>') {
        '<' => format!("{sign_str}{body}{}", fills(pad)),
        '^' => format!("{}{sign_str}{body}{}", fills(pad / 2), fills(pad - pad / 2)),
        '=' => format!("{sign_str}{}{body}", fills(pad)),
        _ => format!("{}{sign_str}{body}", fills(pad)),
    })
}

/// Inserts `sep` every three digits of the integer part.
fn group(body: &str, sep: char) -> String {
    let end = body.find(|c: char| !c.is_ascii_digit()).unwrap_or(body.len());
    let (int, rest) = body.split_at(end);
    let mut out = String::new();
    for (k, c) in int.chars().enumerate() {
        if k > 0 && (int.len() - k) % 3 == 0 {
            out.push(sep);
        }
        out.push(c);
    }
    out + rest
}

/// Python's exponent notation: `e+05`, `e-12` (at least two digits).
fn python_exp(mantissa_exp: &str, upper: bool) -> String {
    let (m, e) = mantissa_exp.split_once('e').unwrap_or((mantissa_exp, "0"));
    let e: i32 = e.parse().unwrap_or(0);
    let sign = if e < 0 { '-' } else { '+' };
    format!("{m}{}{sign}{:02}", if upper { 'E' } else { 'e' }, e.abs())
}

/// The digits of a non-negative float `x` under type `t` and `precision`.
fn float_body(
    x: f64,
    t: Option<char>,
    precision: Option<usize>,
    alternate: bool,
    from_int: bool,
) -> std::result::Result<String, String> {
    if x.is_nan() {
        return Ok(if t.is_some_and(|c| c.is_ascii_uppercase()) { "NAN" } else { "nan" }.into());
    }
    if x.is_infinite() {
        return Ok(if t.is_some_and(|c| c.is_ascii_uppercase()) { "INF" } else { "inf" }.into());
    }
    Ok(match t {
        Some('f') | Some('F') => {
            let s = format!("{x:.*}", precision.unwrap_or(6));
            if alternate && !s.contains('.') {
                s + "."
            } else {
                s
            }
        }
        Some('e') | Some('E') => python_exp(&format!("{x:.*e}", precision.unwrap_or(6)), t == Some('E')),
        Some('%') => format!("{:.*}%", precision.unwrap_or(6), x * 100.0),
        Some('g') | Some('G') => general(x, precision.unwrap_or(6).max(1), alternate, t == Some('G')),
        None if from_int => format!("{}", x as i64),
        None => match precision {
            Some(p) => {
                // Python: like 'g', but a fixed-point result keeps at least one decimal.
                let s = general(x, p.max(1), alternate, false);
                if s.contains(['.', 'e', 'n', 'i']) {
                    s
                } else {
                    s + ".0"
                }
            }
            None => repr(x),
        },
        Some(c) => return Err(format!("unknown format code {c:?}")),
    })
}

/// Python's 'g': `p` significant digits, fixed point when the exponent is in [-4, p), trailing
/// zeros removed (kept with '#').
fn general(x: f64, p: usize, alternate: bool, upper: bool) -> String {
    if x == 0.0 {
        return if alternate { format!("{:.*}", p - 1, 0.0) } else { "0".into() };
    }
    let sci = format!("{x:.*e}", p - 1);
    let exp: i32 = sci.split_once('e').and_then(|(_, e)| e.parse().ok()).unwrap_or(0);
    let strip = |s: String| -> String {
        if alternate || !s.contains('.') {
            s
        } else {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }
    };
    if (-4..p as i32).contains(&exp) {
        strip(format!("{x:.*}", (p as i32 - 1 - exp).max(0) as usize))
    } else {
        let (m, _) = sci.split_once('e').unwrap_or((&sci, ""));
        python_exp(&format!("{}e{exp}", strip(m.to_string())), upper)
    }
}

/// Python's `repr(float)`: the shortest digits that read back to `x`, in exponent notation
/// below 1e-4 or from 1e16 on, and `.0` on whole numbers.
fn repr(x: f64) -> String {
    if x != 0.0 && !(1e-4..1e16).contains(&x) {
        python_exp(&format!("{x:e}"), false)
    } else {
        let s = format!("{x}");
        if s.contains('.') {
            s
        } else {
            s + ".0"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs() -> Logs {
        let mut l = Logs::new();
        l.insert("loss", 0.5);
        l.insert("val_loss", 0.123_456_79);
        l.insert("tiny", 1e-5);
        l
    }

    #[test]
    fn formats_like_python() {
        // Expected strings from Python 3: "{...}".format(epoch=3, loss=0.5, val_loss=float(np.float32(0.12345679)), tiny=float(np.float32(1e-5))).
        let cases = [
            ("w-{epoch:02d}.json", "w-03.json"),
            ("{epoch}-{val_loss:.2f}", "3-0.12"),
            ("{epoch:03}", "003"),
            ("{loss}", "0.5"),
            ("{val_loss}", "0.12345679104328156"),
            ("{tiny}", "9.999999747378752e-06"),
            ("{tiny:.3e}", "1.000e-05"),
            ("{val_loss:.4g}", "0.1235"),
            ("{tiny:g}", "1e-05"),
            ("{val_loss:.1%}", "12.3%"),
            ("{epoch:>4}|{epoch:<4}|{epoch:^5}", "   3|3   |  3  "),
            ("{loss:+.1f}", "+0.5"),
            ("{{epoch}}", "{epoch}"),
            ("{epoch:.2f}", "3.00"),
            ("{loss:08.3f}", "0000.500"),
        ];
        for (t, want) in cases {
            assert_eq!(fill(t, 2, &logs()).unwrap(), want, "{t}");
        }
        assert_eq!(format_value(Value::Int(1234567), ",").unwrap(), "1,234,567");
        assert_eq!(repr(3.0), "3.0");
        assert_eq!(repr(1e16), "1e+16");
    }

    #[test]
    fn bad_templates_are_errors() {
        for t in ["{nope}", "{epoch", "x}", "{loss:d}", "{epoch:.2d}", "{epoch:q}", "{epoch!r}"] {
            assert!(matches!(fill(t, 0, &logs()), Err(Error::InvalidValue { .. })), "{t}");
        }
    }
}
