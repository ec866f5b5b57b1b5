//! Bracketed AI syntax, the machine form of the printed HRI: `(01)09506000134352(10)ABC`.
//! A literal `(` in data is written `\(`.

use super::element::{Bytes, Elem, ElemList};
use super::error::{Detail, ErrorKind, Gs1Error};
use super::lint::{check_total_length, classes_of};
use super::table::lookup;

fn syntax(pos: usize, what: &'static str) -> Gs1Error {
    Gs1Error::plain(ErrorKind::BracketSyntax, Some(pos), what)
}

/// Parses a bracketed string into `buf` (the unescaped values) and `out`. Checks syntax,
/// AIs and value lengths; the component checks run afterwards on every element.
pub(crate) fn parse_bracketed(
    input: &[u8],
    buf: &mut Bytes,
    out: &mut ElemList,
) -> Result<(), Gs1Error> {
    if input.first() != Some(&b'(') {
        return Err(syntax(0, "a bracketed code must start with '(' and an AI"));
    }
    let mut p = 0usize;
    while p < input.len() {
        let after = p + 1;
        let Some(close) = input
            .get(after..)
            .and_then(|t| t.iter().position(|&c| c == b')'))
        else {
            return Err(syntax(p, "'(' without its closing ')'"));
        };
        let ai = input.get(after..after + close).unwrap_or_default();
        let Some((idx, e)) = lookup(ai) else {
            return Err(Gs1Error::detail(
                ErrorKind::UnknownAi,
                Some(after),
                Detail::NotAnAi { bracketed: true },
            )
            .quoting(ai));
        };
        let vpos = after + close + 1;
        if vpos >= input.len() {
            return Err(Gs1Error::detail(
                ErrorKind::BracketSyntax,
                Some(vpos),
                Detail::NoValueAfter(e.ai),
            ));
        }
        let start = buf.len();
        let mut q = vpos;
        // Up to the next '(': without a backslash before it (nearly always), that is the whole
        // value, copied in one go; otherwise byte by byte, unescaping `\(`.
        let rest = input.get(vpos..).unwrap_or_default();
        let run = rest.iter().position(|&c| c == b'(').unwrap_or(rest.len());
        let head = rest.get(..run).unwrap_or_default();
        if !head.contains(&b'\\') {
            buf.extend_from_slice(head);
            q += run;
        }
        while let Some(&c) = input.get(q) {
            if c == b'\\' && input.get(q + 1) == Some(&b'(') {
                buf.push(b'(');
                q += 2;
                continue;
            }
            if c == b'(' {
                break;
            }
            buf.push(c);
            q += 1;
        }
        let v = buf.get(start..buf.len());
        if v.is_empty() {
            return Err(Gs1Error::at(
                ErrorKind::EmptyValue,
                e.ai,
                Some(vpos),
                "the value is empty",
            ));
        }
        check_total_length(e, idx, v, vpos)?;
        out.push(Elem {
            idx,
            start: start as u32,
            end: buf.len() as u32,
            pos: vpos as u32,
            classes: classes_of(v),
        });
        p = q;
    }
    Ok(())
}
