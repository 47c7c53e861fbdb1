//! Recursive-descent LogQL parser for the embedded Loki's subset. Valid LogQL outside the subset
//! (other functions, stages, binary operations) is refused with [`ParseError::Unsupported`],
//! never evaluated approximately.

use super::lexer::{Spanned, Tok, lex};
use super::{
    AggOp, CmpOp, EMPTY_MATCHERS_MSG, Expr, Grouping, LabelFilter, LineFilter, LogExpr, MatchOp,
    Matcher, MetricExpr, NumKind, ParseError, RangeFn, Stage, UNSUPPORTED_FUNCTIONS,
    UNSUPPORTED_STAGES, parse_bytes, parse_duration,
};

/// Parses a LogQL query.
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    let mut p = Parser {
        toks: lex(input)?,
        pos: 0,
    };
    let expr = match p.peek() {
        Tok::LBrace => Expr::Log(p.log_expr()?),
        _ => Expr::Metric(p.metric_expr()?),
    };
    p.end()?;
    Ok(expr)
}

/// Parses a bare stream selector (`match[]` of the series API).
pub fn parse_selector(input: &str) -> Result<Vec<Matcher>, ParseError> {
    let mut p = Parser {
        toks: lex(input)?,
        pos: 0,
    };
    let m = p.selector()?;
    p.end()?;
    Ok(m)
}

struct Parser {
    toks: Vec<Spanned>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        self.peek_at(0)
    }

    fn peek_at(&self, n: usize) -> &Tok {
        self.toks
            .get(self.pos + n)
            .or(self.toks.last())
            .map(|s| &s.tok)
            .unwrap_or(&Tok::Eof)
    }

    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.pos < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn here(&self) -> (usize, usize) {
        self.toks
            .get(self.pos)
            .or(self.toks.last())
            .map(|s| (s.line, s.col))
            .unwrap_or((1, 1))
    }

    fn error(&self, msg: String) -> ParseError {
        let (l, c) = self.here();
        ParseError::at(l, c, msg)
    }

    fn unexpected(&self, expecting: &str) -> ParseError {
        self.error(format!(
            "syntax error: unexpected {}, expecting {expecting}",
            self.peek().describe()
        ))
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<(), ParseError> {
        if *self.peek() == tok {
            self.next();
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    fn end(&mut self) -> Result<(), ParseError> {
        match self.peek() {
            Tok::Eof => Ok(()),
            Tok::Arith(_) | Tok::Gt | Tok::Gte | Tok::Lt | Tok::Lte | Tok::EqEq | Tok::Neq => Err(
                ParseError::Unsupported("binary operations and comparisons".into()),
            ),
            Tok::Ident(s) if matches!(s.as_str(), "and" | "or" | "unless") => Err(
                ParseError::Unsupported("binary operations and comparisons".into()),
            ),
            _ => Err(self.unexpected("end of input")),
        }
    }

    fn ident(&mut self, what: &str) -> Result<String, ParseError> {
        match self.peek() {
            Tok::Ident(s) => {
                let s = s.clone();
                self.next();
                Ok(s)
            }
            _ => Err(self.unexpected(what)),
        }
    }

    fn string(&mut self) -> Result<String, ParseError> {
        match self.peek() {
            Tok::Str(s) => {
                let s = s.clone();
                self.next();
                Ok(s)
            }
            Tok::Ident(s) if s == "ip" => Err(ParseError::Unsupported("ip() filters".into())),
            _ => Err(self.unexpected("STRING")),
        }
    }

    fn selector(&mut self) -> Result<Vec<Matcher>, ParseError> {
        self.expect(Tok::LBrace, "{")?;
        let mut matchers = Vec::new();
        loop {
            let name = self.ident("IDENTIFIER")?;
            let op = match self.next() {
                Tok::Eq => MatchOp::Eq,
                Tok::Neq => MatchOp::Neq,
                Tok::Re => MatchOp::Re,
                Tok::Nre => MatchOp::Nre,
                _ => {
                    self.pos -= 1;
                    return Err(self.unexpected("=, !=, =~ or !~"));
                }
            };
            let at = self.here();
            let value = self.string()?;
            matchers
                .push(Matcher::new(name, op, value).map_err(|m| ParseError::at(at.0, at.1, m))?);
            match self.next() {
                Tok::Comma => {}
                Tok::RBrace => break,
                _ => {
                    self.pos -= 1;
                    return Err(self.unexpected(", or }"));
                }
            }
        }
        let non_empty = matchers
            .iter()
            .any(|m| matches!(m.op, MatchOp::Eq | MatchOp::Re) && !m.matches(""));
        if !non_empty {
            return Err(ParseError::at(0, 0, EMPTY_MATCHERS_MSG.to_string()));
        }
        Ok(matchers)
    }

    fn log_expr(&mut self) -> Result<LogExpr, ParseError> {
        let matchers = self.selector()?;
        let mut log = LogExpr {
            matchers,
            stages: Vec::new(),
        };
        self.stages(&mut log)?;
        Ok(log)
    }

    fn stages(&mut self, log: &mut LogExpr) -> Result<(), ParseError> {
        loop {
            let filter = match self.peek() {
                Tok::PipeExact => Some((false, false)),
                Tok::Neq => Some((true, false)),
                Tok::PipeMatch => Some((false, true)),
                Tok::Nre => Some((true, true)),
                Tok::Pipe => None,
                _ => return Ok(()),
            };
            self.next();
            if let Some((negate, regex)) = filter {
                let at = self.here();
                let needle = self.string()?;
                let re = if regex {
                    Some(regex::Regex::new(&needle).map_err(|e| {
                        ParseError::at(at.0, at.1, format!("error parsing regexp: {e}"))
                    })?)
                } else {
                    None
                };
                if matches!(self.peek(), Tok::Ident(s) if s == "or") {
                    return Err(ParseError::Unsupported("`or` in line filters".into()));
                }
                log.stages
                    .push(Stage::LineFilter(LineFilter { negate, needle, re }));
                continue;
            }
            match self.peek().clone() {
                Tok::Ident(s) if s == "json" || s == "logfmt" => {
                    self.next();
                    match self.peek() {
                        Tok::Ident(_) => {
                            return Err(ParseError::Unsupported(format!("{s} with parameters")));
                        }
                        Tok::Arith('-') => {
                            return Err(ParseError::Unsupported(format!("{s} flags")));
                        }
                        _ => {}
                    }
                    log.stages.push(if s == "json" {
                        Stage::Json
                    } else {
                        Stage::Logfmt
                    });
                }
                Tok::Ident(s) if UNSUPPORTED_STAGES.contains(&s.as_str()) => {
                    return Err(ParseError::Unsupported(format!("the {s} stage")));
                }
                Tok::Ident(_) | Tok::LParen => {
                    let f = self.label_or()?;
                    log.stages.push(Stage::LabelFilter(f));
                }
                _ => return Err(self.unexpected("a parser or a label filter")),
            }
        }
    }

    fn label_or(&mut self) -> Result<LabelFilter, ParseError> {
        let mut left = self.label_and()?;
        while matches!(self.peek(), Tok::Ident(s) if s == "or") {
            self.next();
            let right = self.label_and()?;
            left = LabelFilter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn label_and(&mut self) -> Result<LabelFilter, ParseError> {
        let mut left = self.label_primary()?;
        loop {
            match self.peek() {
                Tok::Comma => {}
                Tok::Ident(s) if s == "and" => {}
                _ => return Ok(left),
            }
            self.next();
            let right = self.label_primary()?;
            left = LabelFilter::And(Box::new(left), Box::new(right));
        }
    }

    fn label_primary(&mut self) -> Result<LabelFilter, ParseError> {
        if *self.peek() == Tok::LParen {
            self.next();
            let f = self.label_or()?;
            self.expect(Tok::RParen, ")")?;
            return Ok(f);
        }
        let name = self.ident("IDENTIFIER")?;
        let op = self.next();
        let at = self.here();
        match (op, self.peek().clone()) {
            (op @ (Tok::Eq | Tok::Neq | Tok::Re | Tok::Nre), Tok::Str(v)) => {
                self.next();
                let op = match op {
                    Tok::Eq => MatchOp::Eq,
                    Tok::Neq => MatchOp::Neq,
                    Tok::Re => MatchOp::Re,
                    _ => MatchOp::Nre,
                };
                Ok(LabelFilter::Str(
                    Matcher::new(name, op, v).map_err(|m| ParseError::at(at.0, at.1, m))?,
                ))
            }
            (
                op @ (Tok::Eq | Tok::EqEq | Tok::Neq | Tok::Gt | Tok::Gte | Tok::Lt | Tok::Lte),
                Tok::Num(n),
            ) => {
                self.next();
                let op = match op {
                    Tok::Eq | Tok::EqEq => CmpOp::Eq,
                    Tok::Neq => CmpOp::Neq,
                    Tok::Gt => CmpOp::Gt,
                    Tok::Gte => CmpOp::Gte,
                    Tok::Lt => CmpOp::Lt,
                    _ => CmpOp::Lte,
                };
                let (value, kind) = if let Ok(v) = n.parse::<f64>() {
                    (v, NumKind::Number)
                } else if let Some(d) = parse_duration(&n) {
                    (d as f64 / 1e9, NumKind::Duration)
                } else if let Some(b) = parse_bytes(&n) {
                    (b, NumKind::Bytes)
                } else {
                    return Err(ParseError::at(
                        at.0,
                        at.1,
                        format!("syntax error: invalid number, duration or size {n:?}"),
                    ));
                };
                Ok(LabelFilter::Num {
                    name,
                    op,
                    value,
                    kind,
                })
            }
            (_, Tok::Ident(s)) if s == "ip" => Err(ParseError::Unsupported("ip() filters".into())),
            _ => {
                self.pos -= 1;
                Err(self.unexpected("a label filter operator and value"))
            }
        }
    }

    fn grouping(&mut self) -> Result<Option<Grouping>, ParseError> {
        let without = match self.peek() {
            Tok::Ident(s) if s == "by" => false,
            Tok::Ident(s) if s == "without" => true,
            _ => return Ok(None),
        };
        self.next();
        self.expect(Tok::LParen, "(")?;
        let mut labels = Vec::new();
        if *self.peek() != Tok::RParen {
            loop {
                labels.push(self.ident("IDENTIFIER")?);
                match self.peek() {
                    Tok::Comma => {
                        self.next();
                    }
                    _ => break,
                }
            }
        }
        self.expect(Tok::RParen, ")")?;
        Ok(Some(Grouping { without, labels }))
    }

    fn metric_expr(&mut self) -> Result<MetricExpr, ParseError> {
        match self.peek().clone() {
            Tok::LParen => {
                self.next();
                let e = self.metric_expr()?;
                self.expect(Tok::RParen, ")")?;
                Ok(e)
            }
            Tok::Ident(name) => {
                if let Some(op) = AggOp::from_name(&name) {
                    self.next();
                    let before = self.grouping()?;
                    self.expect(Tok::LParen, "(")?;
                    if matches!(self.peek(), Tok::Num(_)) {
                        return Err(self.unexpected("a metric expression"));
                    }
                    let inner = self.metric_expr()?;
                    self.expect(Tok::RParen, ")")?;
                    let grouping = match before {
                        Some(g) => Some(g),
                        None => self.grouping()?,
                    };
                    return Ok(MetricExpr::Agg {
                        op,
                        grouping,
                        inner: Box::new(inner),
                    });
                }
                if let Some(func) = RangeFn::from_name(&name) {
                    self.next();
                    self.expect(Tok::LParen, "(")?;
                    let (log, range, offset) = self.log_range()?;
                    self.expect(Tok::RParen, ")")?;
                    if matches!(self.peek(), Tok::Ident(s) if s == "by" || s == "without") {
                        return Err(ParseError::at(
                            0,
                            0,
                            format!("grouping not allowed for {name} aggregation"),
                        ));
                    }
                    return Ok(MetricExpr::Range {
                        func,
                        log,
                        range,
                        offset,
                    });
                }
                if UNSUPPORTED_FUNCTIONS.contains(&name.as_str()) {
                    return Err(ParseError::Unsupported(format!("the {name} function")));
                }
                Err(self.unexpected("a metric expression"))
            }
            Tok::Num(_) | Tok::Arith('-') => Err(ParseError::Unsupported(
                "number literals and binary operations".into(),
            )),
            _ => Err(self.unexpected("{ or a metric expression")),
        }
    }

    /// `{..} | stages [5m] offset 1m`, `({..} | stages)[5m]` or `{..}[5m] | stages`.
    fn log_range(&mut self) -> Result<(LogExpr, i64, i64), ParseError> {
        let mut log;
        let range;
        if *self.peek() == Tok::LParen {
            self.next();
            log = self.log_expr()?;
            self.expect(Tok::RParen, ")")?;
            range = self.range()?;
        } else {
            log = LogExpr {
                matchers: self.selector()?,
                stages: Vec::new(),
            };
            if *self.peek() == Tok::LBracket {
                range = self.range()?;
                self.stages(&mut log)?;
            } else {
                self.stages(&mut log)?;
                range = self.range()?;
            }
        }
        let mut offset = 0;
        if matches!(self.peek(), Tok::Ident(s) if s == "offset") {
            self.next();
            offset = self.duration()?;
        }
        if matches!(self.peek(), Tok::Pipe) {
            return Err(ParseError::Unsupported("the unwrap stage".into()));
        }
        Ok((log, range, offset))
    }

    fn range(&mut self) -> Result<i64, ParseError> {
        self.expect(Tok::LBracket, "[")?;
        let d = self.duration()?;
        if d <= 0 {
            return Err(self.error("syntax error: the range must be positive".into()));
        }
        self.expect(Tok::RBracket, "]")?;
        Ok(d)
    }

    fn duration(&mut self) -> Result<i64, ParseError> {
        match self.peek().clone() {
            Tok::Num(n) => match parse_duration(&n) {
                Some(d) => {
                    self.next();
                    Ok(d)
                }
                None => Err(self.unexpected("DURATION")),
            },
            _ => Err(self.unexpected("DURATION")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn metric(s: &str) -> MetricExpr {
        match parse(s).unwrap() {
            Expr::Metric(m) => m,
            Expr::Log(_) => panic!("not a metric query: {s}"),
        }
    }

    #[test]
    fn log_queries() {
        let Expr::Log(l) = parse(
            r#"{app="a", env=~"p.*"} |= "x" != "y" |~ "z+" | json | level="error" and n >= 2"#,
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(l.matchers.len(), 2);
        assert_eq!(l.stages.len(), 5);
        assert!(matches!(
            l.stages[4],
            Stage::LabelFilter(LabelFilter::And(..))
        ));
        assert!(parse(r#"{a="b"} | logfmt | d > 250ms, size < 1KB or x!~"q""#).is_ok());
    }

    #[test]
    fn metric_queries() {
        match metric(r#"sum by (app) (rate({a="b"} |= "x" [5m]))"#) {
            MetricExpr::Agg {
                op: AggOp::Sum,
                grouping: Some(g),
                inner,
            } => {
                assert_eq!(g.labels, vec!["app"]);
                assert!(matches!(
                    *inner,
                    MetricExpr::Range {
                        func: RangeFn::Rate,
                        range: 300_000_000_000,
                        ..
                    }
                ));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            metric(r#"count(count_over_time({a="b"}[1m] | json)) without (x)"#),
            MetricExpr::Agg {
                op: AggOp::Count,
                grouping: Some(Grouping { without: true, .. }),
                ..
            }
        ));
        assert!(matches!(
            metric(r#"bytes_over_time(({a="b"} | logfmt)[10s] offset 5s)"#),
            MetricExpr::Range {
                offset: 5_000_000_000,
                ..
            }
        ));
    }

    #[test]
    fn errors() {
        let e = parse(r#"{a=~".*"}"#).unwrap_err().to_string();
        assert!(
            e.starts_with("parse error : queries require at least one regexp"),
            "{e}"
        );
        assert!(parse(r#"{a!="x"}"#).is_err());
        let e = parse(r#"{a="b"} |= "x" | "#).unwrap_err().to_string();
        assert!(
            e.starts_with("parse error at line 1, col 18: syntax error"),
            "{e}"
        );
        let e = parse(r#"{a="b"} | line_format "x""#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "not supported by the embedded Loki: the line_format stage"
        );
        assert!(matches!(
            parse(r#"sum(rate({a="b"}[1m])) / 2"#),
            Err(ParseError::Unsupported(_))
        ));
        assert!(matches!(
            parse(r#"topk(3, rate({a="b"}[1m]))"#),
            Err(ParseError::Unsupported(_))
        ));
        assert_eq!(
            parse(r#"rate({a="b"}[1m]) by (x)"#)
                .unwrap_err()
                .to_string(),
            "parse error : grouping not allowed for rate aggregation"
        );
        assert!(parse("").is_err());
        assert!(parse(r#"{a="("}"#).is_ok());
        assert!(parse(r#"{a=~"("}"#).is_err());
    }

    #[test]
    fn regex_matchers_are_anchored() {
        let Expr::Log(l) = parse(r#"{a=~"b|c"}"#).unwrap() else {
            panic!()
        };
        assert!(l.matchers[0].matches("b"));
        assert!(!l.matchers[0].matches("ab"));
        assert!(!l.matchers[0].matches(""));
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,64}") {
            let _ = parse(&s);
        }

        #[test]
        fn never_panics_on_logql_like_input(s in r#"[{}()\[\]|=!~"a-z0-9_ ,<>.`#-]{0,48}"#) {
            let _ = parse(&s);
            let _ = parse_selector(&s);
        }

        #[test]
        fn selectors_round_trip(name in "[a-z_][a-z0-9_]{0,8}", value in "[a-zA-Z0-9 ]{1,12}") {
            let m = parse_selector(&format!("{{{name}={value:?}}}")).unwrap();
            prop_assert_eq!(&m[0].name, &name);
            prop_assert!(m[0].matches(&value));
        }
    }
}
