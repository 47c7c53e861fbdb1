//! LogQL tokens: what the parser reads. Positions are kept as line and column (1-based, in
//! characters) so errors read like Loki's `parse error at line 1, col 5: ...`.

use super::ParseError;

/// One token.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    /// `=`
    Eq,
    /// `!=`
    Neq,
    /// `=~`
    Re,
    /// `!~`
    Nre,
    /// `|=`
    PipeExact,
    /// `|~`
    PipeMatch,
    /// `|`
    Pipe,
    Gt,
    Gte,
    Lt,
    Lte,
    /// `==`
    EqEq,
    /// An arithmetic operator (`+ - * / % ^`): only recognised to refuse binary operations.
    Arith(char),
    Ident(String),
    Str(String),
    /// A number, duration (`5m`, `1h30m`) or byte size (`10KB`), as written.
    Num(String),
    Eof,
}

impl Tok {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("IDENTIFIER {s:?}"),
            Tok::Str(s) => format!("STRING {s:?}"),
            Tok::Num(s) => format!("NUMBER {s:?}"),
            Tok::Eof => "end of input".to_string(),
            Tok::Arith(c) => format!("{c:?}"),
            other => format!("{:?}", symbol(other)),
        }
    }
}

fn symbol(t: &Tok) -> &'static str {
    match t {
        Tok::LBrace => "{",
        Tok::RBrace => "}",
        Tok::LParen => "(",
        Tok::RParen => ")",
        Tok::LBracket => "[",
        Tok::RBracket => "]",
        Tok::Comma => ",",
        Tok::Eq => "=",
        Tok::Neq => "!=",
        Tok::Re => "=~",
        Tok::Nre => "!~",
        Tok::PipeExact => "|=",
        Tok::PipeMatch => "|~",
        Tok::Pipe => "|",
        Tok::Gt => ">",
        Tok::Gte => ">=",
        Tok::Lt => "<",
        Tok::Lte => "<=",
        Tok::EqEq => "==",
        _ => "?",
    }
}

/// A token and where it starts.
#[derive(Clone, Debug)]
pub struct Spanned {
    pub tok: Tok,
    pub line: usize,
    pub col: usize,
}

/// Splits `input` into tokens, ending with [`Tok::Eof`].
pub fn lex(input: &str) -> Result<Vec<Spanned>, ParseError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    while i < chars.len() {
        let c = chars[i];
        let (start_line, start_col) = (line, col);
        let at = |tok: Tok| Spanned {
            tok,
            line: start_line,
            col: start_col,
        };
        if c == '\n' {
            i += 1;
            line += 1;
            col = 1;
            continue;
        }
        if c.is_whitespace() {
            i += 1;
            col += 1;
            continue;
        }
        if c == '#' {
            // A comment runs to the end of the line.
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        let next = chars.get(i + 1).copied();
        let two = |t: Tok| (t, 2usize);
        let (tok, len) = match (c, next) {
            ('{', _) => (Tok::LBrace, 1),
            ('}', _) => (Tok::RBrace, 1),
            ('(', _) => (Tok::LParen, 1),
            (')', _) => (Tok::RParen, 1),
            ('[', _) => (Tok::LBracket, 1),
            (']', _) => (Tok::RBracket, 1),
            (',', _) => (Tok::Comma, 1),
            ('=', Some('~')) => two(Tok::Re),
            ('=', Some('=')) => two(Tok::EqEq),
            ('=', _) => (Tok::Eq, 1),
            ('!', Some('=')) => two(Tok::Neq),
            ('!', Some('~')) => two(Tok::Nre),
            ('|', Some('=')) => two(Tok::PipeExact),
            ('|', Some('~')) => two(Tok::PipeMatch),
            ('|', _) => (Tok::Pipe, 1),
            ('>', Some('=')) => two(Tok::Gte),
            ('>', _) => (Tok::Gt, 1),
            ('<', Some('=')) => two(Tok::Lte),
            ('<', _) => (Tok::Lt, 1),
            ('+' | '-' | '*' | '/' | '%' | '^', _) => (Tok::Arith(c), 1),
            ('"' | '`', _) => {
                let (s, consumed, lines) = string(&chars[i..])
                    .map_err(|msg| ParseError::at(start_line, start_col, msg.to_string()))?;
                out.push(at(Tok::Str(s)));
                i += consumed;
                if lines > 0 {
                    line += lines;
                    col = 1 + chars[..i].iter().rev().take_while(|c| **c != '\n').count();
                } else {
                    col += consumed;
                }
                continue;
            }
            (c, _)
                if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) =>
            {
                let len = chars[i..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == '.' || **c == 'µ')
                    .count();
                (Tok::Num(chars[i..i + len].iter().collect()), len)
            }
            (c, _) if c.is_ascii_alphabetic() || c == '_' => {
                let len = chars[i..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                    .count();
                (Tok::Ident(chars[i..i + len].iter().collect()), len)
            }
            (c, _) => {
                return Err(ParseError::at(
                    line,
                    col,
                    format!("syntax error: unexpected character {c:?}"),
                ));
            }
        };
        out.push(at(tok));
        i += len;
        col += len;
    }
    out.push(Spanned {
        tok: Tok::Eof,
        line,
        col,
    });
    Ok(out)
}

/// Reads a `"..."` (Go escapes) or `` `...` `` (raw) string at the start of `s`; returns the
/// value, the characters consumed and the newlines crossed.
fn string(s: &[char]) -> Result<(String, usize, usize), &'static str> {
    let quote = s[0];
    let mut out = String::new();
    let mut i = 1;
    let mut lines = 0;
    loop {
        let Some(&c) = s.get(i) else {
            return Err("literal not terminated");
        };
        i += 1;
        if c == quote {
            return Ok((out, i, lines));
        }
        if c == '\n' {
            if quote == '"' {
                return Err("literal not terminated");
            }
            lines += 1;
        }
        if c != '\\' || quote == '`' {
            out.push(c);
            continue;
        }
        let Some(&e) = s.get(i) else {
            return Err("literal not terminated");
        };
        i += 1;
        match e {
            '"' => out.push('"'),
            '\\' => out.push('\\'),
            '\'' => out.push('\''),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = s.get(i..i + n).ok_or("invalid escape")?.iter().collect();
                let v = u32::from_str_radix(&hex, 16).map_err(|_| "invalid escape")?;
                out.push(char::from_u32(v).ok_or("invalid escape")?);
                i += n;
            }
            _ => return Err("unknown escape sequence"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn operators_and_literals() {
        assert_eq!(
            toks(r#"{a=~"x\"y"} |= `raw\n` != "z" | json"#),
            vec![
                Tok::LBrace,
                Tok::Ident("a".into()),
                Tok::Re,
                Tok::Str("x\"y".into()),
                Tok::RBrace,
                Tok::PipeExact,
                Tok::Str("raw\\n".into()),
                Tok::Neq,
                Tok::Str("z".into()),
                Tok::Pipe,
                Tok::Ident("json".into()),
                Tok::Eof
            ]
        );
        assert_eq!(
            toks("[1h30m] >= 2.5"),
            vec![
                Tok::LBracket,
                Tok::Num("1h30m".into()),
                Tok::RBracket,
                Tok::Gte,
                Tok::Num("2.5".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn positions() {
        let t = lex("{a=\"b\"}\n  |= \"x").unwrap_err();
        assert_eq!(
            t.to_string(),
            "parse error at line 2, col 6: literal not terminated"
        );
    }
}
