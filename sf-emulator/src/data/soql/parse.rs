//! The SOQL parser: tokens to [`Query`], with Salesforce's `MALFORMED_QUERY` messages.

use super::ast::*;
use super::error::{SoqlError, SoqlErrorCode};
use super::lex::{lex, Tok, Token};

/// Parses one SOQL statement.
pub fn parse(query: &str) -> Result<Query, SoqlError> {
    let tokens = lex(query)?;
    let mut p = Parser {
        query,
        tokens,
        at: 0,
    };
    let q = p.query()?;
    p.expect_eof()?;
    Ok(q)
}

struct Parser<'a> {
    query: &'a str,
    tokens: Vec<Token>,
    at: usize,
}

/// Words that end a field list or condition and so can never be an alias or field name there.
const RESERVED: &[&str] = &[
    "AND", "ASC", "BY", "DESC", "EXCLUDES", "FIRST", "FROM", "GROUP", "HAVING", "IN", "INCLUDES",
    "LAST", "LIKE", "LIMIT", "NOT", "NULL", "NULLS", "OFFSET", "OR", "ORDER", "SELECT", "WHERE",
    "WITH", "FOR", "USING", "TRUE", "FALSE",
];

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.tokens[self.at.min(self.tokens.len() - 1)]
    }

    fn peek_at(&self, n: usize) -> &Token {
        &self.tokens[(self.at + n).min(self.tokens.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if self.at < self.tokens.len() - 1 {
            self.at += 1;
        }
        t
    }

    fn unexpected(&self, t: &Token) -> SoqlError {
        let shown = if t.tok == Tok::Eof {
            "<EOF>".to_string()
        } else {
            format!("'{}'", t.text)
        };
        SoqlError::at(
            SoqlErrorCode::MalformedQuery,
            self.query,
            t.pos,
            format!("unexpected token: {shown}"),
        )
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(&self.peek().tok, Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), SoqlError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.unexpected(self.peek()))
        }
    }

    fn expect(&mut self, want: Tok) -> Result<Token, SoqlError> {
        if self.peek().tok == want {
            Ok(self.bump())
        } else {
            Err(self.unexpected(self.peek()))
        }
    }

    fn expect_eof(&mut self) -> Result<(), SoqlError> {
        if self.peek().tok == Tok::Eof {
            Ok(())
        } else {
            Err(self.unexpected(self.peek()))
        }
    }

    fn name(&mut self) -> Result<Name, SoqlError> {
        let t = self.peek().clone();
        match &t.tok {
            Tok::Ident(s) if !is_reserved(s) => {
                self.bump();
                Ok(Name {
                    text: s.clone(),
                    pos: t.pos,
                })
            }
            _ => Err(self.unexpected(&t)),
        }
    }

    fn field_path(&mut self) -> Result<FieldPath, SoqlError> {
        let first = self.name()?;
        let mut parts = vec![first.text];
        while self.peek().tok == Tok::Dot {
            self.bump();
            parts.push(self.name()?.text);
        }
        Ok(FieldPath {
            parts,
            pos: first.pos,
        })
    }

    fn query(&mut self) -> Result<Query, SoqlError> {
        self.expect_kw("SELECT")?;
        let mut select = vec![self.select_item()?];
        while self.peek().tok == Tok::Comma {
            self.bump();
            select.push(self.select_item()?);
        }
        self.expect_kw("FROM")?;
        let from = self.name()?;
        let filter = if self.eat_kw("WHERE") {
            Some(self.condition()?)
        } else {
            None
        };
        let mut order_by = Vec::new();
        if self.eat_kw("ORDER") {
            self.expect_kw("BY")?;
            loop {
                order_by.push(self.order_item()?);
                if self.peek().tok != Tok::Comma {
                    break;
                }
                self.bump();
            }
        }
        let limit = if self.eat_kw("LIMIT") {
            Some(self.integer()?)
        } else {
            None
        };
        let offset = if self.eat_kw("OFFSET") {
            Some(self.integer()?)
        } else {
            None
        };
        Ok(Query {
            select,
            from,
            filter,
            order_by,
            limit,
            offset,
        })
    }

    fn integer(&mut self) -> Result<u64, SoqlError> {
        let t = self.bump();
        match &t.tok {
            Tok::Number(n) => n.parse::<u64>().map_err(|_| self.unexpected(&t)),
            _ => Err(self.unexpected(&t)),
        }
    }

    fn select_item(&mut self) -> Result<SelectItem, SoqlError> {
        if self.is_kw("COUNT") && self.peek_at(1).tok == Tok::LParen {
            let pos = self.bump().pos;
            self.bump();
            if self.peek().tok == Tok::RParen {
                self.bump();
                return Ok(SelectItem::CountAll { pos });
            }
            let field = self.field_path()?;
            self.expect(Tok::RParen)?;
            let alias = match &self.peek().tok {
                Tok::Ident(s) if !is_reserved(s) => Some(self.bump().text),
                _ => None,
            };
            return Ok(SelectItem::CountField { field, alias });
        }
        if self.peek().tok == Tok::LParen {
            // Child-relationship subqueries are not supported by this org.
            return Err(self.unexpected(&self.peek().clone()));
        }
        Ok(SelectItem::Field(self.field_path()?))
    }

    fn order_item(&mut self) -> Result<OrderItem, SoqlError> {
        let field = self.field_path()?;
        let descending = if self.eat_kw("DESC") {
            true
        } else {
            self.eat_kw("ASC");
            false
        };
        let nulls_first = if self.eat_kw("NULLS") {
            if self.eat_kw("FIRST") {
                true
            } else {
                self.expect_kw("LAST")?;
                false
            }
        } else {
            !descending
        };
        Ok(OrderItem {
            field,
            descending,
            nulls_first,
        })
    }

    /// A condition: terms joined by one connective; mixing AND and OR needs parentheses.
    fn condition(&mut self) -> Result<Cond, SoqlError> {
        let first = self.unary()?;
        let connective = if self.is_kw("AND") {
            "AND"
        } else if self.is_kw("OR") {
            "OR"
        } else {
            return Ok(first);
        };
        let mut terms = vec![first];
        while self.eat_kw(connective) {
            terms.push(self.unary()?);
        }
        if self.is_kw("AND") || self.is_kw("OR") {
            return Err(self.unexpected(&self.peek().clone()));
        }
        Ok(if connective == "AND" {
            Cond::And(terms)
        } else {
            Cond::Or(terms)
        })
    }

    fn unary(&mut self) -> Result<Cond, SoqlError> {
        if self.eat_kw("NOT") {
            return Ok(Cond::Not(Box::new(self.unary()?)));
        }
        if self.peek().tok == Tok::LParen {
            self.bump();
            let inner = self.condition()?;
            self.expect(Tok::RParen)?;
            return Ok(inner);
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Cond, SoqlError> {
        let field = self.field_path()?;
        let t = self.peek().clone();
        let op = match &t.tok {
            Tok::Eq => Some(CmpOp::Eq),
            Tok::Ne => Some(CmpOp::Ne),
            Tok::Lt => Some(CmpOp::Lt),
            Tok::Le => Some(CmpOp::Le),
            Tok::Gt => Some(CmpOp::Gt),
            Tok::Ge => Some(CmpOp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.bump();
            let value = self.literal()?;
            return Ok(Cond::Compare { field, op, value });
        }
        if self.eat_kw("LIKE") {
            let t = self.bump();
            let Tok::Str(raw) = &t.tok else {
                return Err(self.unexpected(&t));
            };
            let pattern = like_pattern(self.query, raw, t.pos)?;
            return Ok(Cond::Like {
                field,
                pattern,
                pos: t.pos,
            });
        }
        if self.is_kw("NOT")
            && matches!(&self.peek_at(1).tok, Tok::Ident(s) if s.eq_ignore_ascii_case("IN"))
        {
            self.bump();
            self.bump();
            let values = self.literal_list()?;
            return Ok(Cond::In {
                field,
                negated: true,
                values,
            });
        }
        if self.eat_kw("IN") {
            let values = self.literal_list()?;
            return Ok(Cond::In {
                field,
                negated: false,
                values,
            });
        }
        for (kw, negated) in [("INCLUDES", false), ("EXCLUDES", true)] {
            if self.eat_kw(kw) {
                let values = self.literal_list()?;
                return Ok(Cond::Includes {
                    field,
                    negated,
                    values,
                });
            }
        }
        Err(self.unexpected(&t))
    }

    fn literal_list(&mut self) -> Result<Vec<Literal>, SoqlError> {
        self.expect(Tok::LParen)?;
        if self.is_kw("SELECT") {
            // Semi-join subqueries are not supported by this org.
            return Err(self.unexpected(&self.peek().clone()));
        }
        let mut values = vec![self.literal()?];
        while self.peek().tok == Tok::Comma {
            self.bump();
            values.push(self.literal()?);
        }
        self.expect(Tok::RParen)?;
        Ok(values)
    }

    fn literal(&mut self) -> Result<Literal, SoqlError> {
        let t = self.bump();
        let pos = t.pos;
        let kind = match &t.tok {
            Tok::Str(raw) => LiteralKind::String(decode_string(self.query, raw, pos)?),
            Tok::Number(n) => number(n, false),
            Tok::Minus | Tok::Plus => {
                let n = self.bump();
                match &n.tok {
                    Tok::Number(text) => number(text, t.tok == Tok::Minus),
                    _ => return Err(self.unexpected(&n)),
                }
            }
            Tok::Date(d) => LiteralKind::Date(*d),
            Tok::DateTime(d) => LiteralKind::DateTime(*d),
            Tok::Ident(word) => {
                if word.eq_ignore_ascii_case("null") {
                    LiteralKind::Null
                } else if word.eq_ignore_ascii_case("true") {
                    LiteralKind::Bool(true)
                } else if word.eq_ignore_ascii_case("false") {
                    LiteralKind::Bool(false)
                } else {
                    LiteralKind::DateLiteral(self.date_literal(&t)?)
                }
            }
            _ => return Err(self.unexpected(&t)),
        };
        Ok(Literal { kind, pos })
    }

    fn date_literal(&mut self, t: &Token) -> Result<DateLiteral, SoqlError> {
        let word = t.text.to_ascii_uppercase();
        let word = word.replace("_FISCAL_", "_");
        if let Some(d) = fixed_date_literal(&word) {
            return Ok(d);
        }
        if !is_n_date_literal(&word) {
            return Err(self.unexpected(t));
        }
        if self.peek().tok != Tok::Colon {
            return Err(self.unexpected(&self.peek().clone()));
        }
        self.bump();
        let nt = self.bump();
        let n = match &nt.tok {
            Tok::Number(s) => s.parse::<i64>().ok().filter(|n| *n <= 100_000),
            _ => None,
        }
        .ok_or_else(|| self.unexpected(&nt))?;
        n_date_literal(&word, n).ok_or_else(|| self.unexpected(t))
    }
}

fn is_reserved(word: &str) -> bool {
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(word))
}

fn number(text: &str, negative: bool) -> LiteralKind {
    let text = if negative {
        format!("-{text}")
    } else {
        text.to_string()
    };
    let value = text.parse::<f64>().unwrap_or(0.0);
    LiteralKind::Number { text, value }
}

fn fixed_date_literal(word: &str) -> Option<DateLiteral> {
    use DateLiteral::*;
    Some(match word {
        "TODAY" => Days { start: 0, end: 1 },
        "YESTERDAY" => Days { start: -1, end: 0 },
        "TOMORROW" => Days { start: 1, end: 2 },
        "LAST_WEEK" => Weeks { start: -1, end: 0 },
        "THIS_WEEK" => Weeks { start: 0, end: 1 },
        "NEXT_WEEK" => Weeks { start: 1, end: 2 },
        "LAST_MONTH" => Months { start: -1, end: 0 },
        "THIS_MONTH" => Months { start: 0, end: 1 },
        "NEXT_MONTH" => Months { start: 1, end: 2 },
        "LAST_90_DAYS" => Days { start: -90, end: 1 },
        "NEXT_90_DAYS" => Days { start: 1, end: 91 },
        "LAST_QUARTER" => Quarters { start: -1, end: 0 },
        "THIS_QUARTER" => Quarters { start: 0, end: 1 },
        "NEXT_QUARTER" => Quarters { start: 1, end: 2 },
        "LAST_YEAR" => Years { start: -1, end: 0 },
        "THIS_YEAR" => Years { start: 0, end: 1 },
        "NEXT_YEAR" => Years { start: 1, end: 2 },
        _ => return None,
    })
}

const N_LITERALS: &[&str] = &[
    "LAST_N_DAYS",
    "NEXT_N_DAYS",
    "N_DAYS_AGO",
    "LAST_N_WEEKS",
    "NEXT_N_WEEKS",
    "N_WEEKS_AGO",
    "LAST_N_MONTHS",
    "NEXT_N_MONTHS",
    "N_MONTHS_AGO",
    "LAST_N_QUARTERS",
    "NEXT_N_QUARTERS",
    "N_QUARTERS_AGO",
    "LAST_N_YEARS",
    "NEXT_N_YEARS",
    "N_YEARS_AGO",
];

fn is_n_date_literal(word: &str) -> bool {
    N_LITERALS.contains(&word)
}

fn n_date_literal(word: &str, n: i64) -> Option<DateLiteral> {
    use DateLiteral::*;
    let (kind, unit) = word.rsplit_once('_')?;
    let (kind, unit) = if unit == "AGO" {
        let (_, unit) = kind.rsplit_once('_')?;
        ("AGO", unit)
    } else {
        (kind, unit)
    };
    let (start, end) = match (kind, unit) {
        // LAST_N_DAYS:n covers today and the n days before it.
        ("LAST_N", "DAYS") => (-n, 1),
        ("NEXT_N", "DAYS") => (1, n + 1),
        ("LAST_N", _) => (-n, 0),
        ("NEXT_N", _) => (1, n + 1),
        ("AGO", _) => (-n, -n + 1),
        _ => return None,
    };
    Some(match unit {
        "DAYS" => Days { start, end },
        "WEEKS" => Weeks { start, end },
        "MONTHS" => Months { start, end },
        "QUARTERS" => Quarters { start, end },
        "YEARS" => Years { start, end },
        _ => return None,
    })
}

fn bad_escape(query: &str, raw: &str, pos: Pos, seq: &str) -> SoqlError {
    SoqlError::at(
        SoqlErrorCode::MalformedQuery,
        query,
        pos,
        format!(
            "Invalid string literal '{raw}'. Illegal character sequence '{seq}' in string literal."
        ),
    )
}

/// Decodes the backslash escapes of a quoted string (`\' \" \\ \n \r \t \b \f`, and `\% \_`).
fn decode_string(query: &str, raw: &str, pos: Pos) -> Result<String, SoqlError> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = chars.next().unwrap_or('\\');
        out.push(match e {
            'n' | 'N' => '\n',
            'r' | 'R' => '\r',
            't' | 'T' => '\t',
            'b' | 'B' => '\u{8}',
            'f' | 'F' => '\u{c}',
            '\'' | '"' | '\\' | '%' | '_' => e,
            _ => return Err(bad_escape(query, raw, pos, &format!("\\{e}"))),
        });
    }
    Ok(out)
}

/// Compiles a `LIKE` pattern: `%` any run, `_` one character, `\%`/`\_` literal.
fn like_pattern(query: &str, raw: &str, pos: Pos) -> Result<LikePattern, SoqlError> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut chars = raw.chars();
    let flush = |text: &mut String, parts: &mut Vec<LikePart>| {
        if !text.is_empty() {
            parts.push(LikePart::Text(std::mem::take(text)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '%' => {
                flush(&mut text, &mut parts);
                if parts.last() != Some(&LikePart::AnyRun) {
                    parts.push(LikePart::AnyRun);
                }
            }
            '_' => {
                flush(&mut text, &mut parts);
                parts.push(LikePart::AnyChar);
            }
            '\\' => {
                let e = chars.next().unwrap_or('\\');
                let escaped = format!("\\{e}");
                text.push_str(&decode_string(query, &escaped, pos)?);
            }
            _ => text.push(c),
        }
    }
    flush(&mut text, &mut parts);
    Ok(LikePattern { parts })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn field(parts: &[&str], pos: Pos) -> FieldPath {
        FieldPath {
            parts: parts.iter().map(|s| s.to_string()).collect(),
            pos,
        }
    }

    #[test]
    fn tap_salesforce_incremental_query_with_two_spaces() {
        let q = parse(
            "SELECT Id,Name,SystemModstamp FROM Account WHERE SystemModstamp >= 2017-01-01T00:00:00Z  ORDER BY SystemModstamp ASC",
        )
        .unwrap();
        assert_eq!(q.select.len(), 3);
        assert_eq!(q.from.text, "Account");
        let Some(Cond::Compare {
            field: f,
            op,
            value,
        }) = &q.filter
        else {
            panic!("{:?}", q.filter)
        };
        assert_eq!(f.parts, vec!["SystemModstamp"]);
        assert_eq!(*op, CmpOp::Ge);
        assert_eq!(
            value.kind,
            LiteralKind::DateTime(Utc.with_ymd_and_hms(2017, 1, 1, 0, 0, 0).unwrap())
        );
        assert_eq!(q.order_by.len(), 1);
        assert!(!q.order_by[0].descending);
        assert!(q.order_by[0].nulls_first);
    }

    #[test]
    fn tap_salesforce_windowed_query_with_bookmark_format() {
        let q = parse(
            "SELECT Id,Name FROM Account WHERE SystemModstamp >= 2024-01-02T03:04:05.000000Z  AND SystemModstamp < 2024-02-01T00:00:00Z ORDER BY SystemModstamp ASC",
        )
        .unwrap();
        let Some(Cond::And(terms)) = &q.filter else {
            panic!()
        };
        assert_eq!(terms.len(), 2);
    }

    #[test]
    fn airbyte_queries() {
        let q = parse(
            "SELECT a,b FROM Account WHERE SystemModstamp >= 2024-01-01T00:00:00.000+00:00 AND SystemModstamp < 2024-01-31T00:00:00.000+00:00",
        )
        .unwrap();
        let Some(Cond::And(terms)) = &q.filter else {
            panic!()
        };
        let Cond::Compare { value, .. } = &terms[1] else {
            panic!()
        };
        assert_eq!(
            value.kind,
            LiteralKind::DateTime(Utc.with_ymd_and_hms(2024, 1, 31, 0, 0, 0).unwrap())
        );
        let q = parse("SELECT a, b FROM Account ORDER BY Id ASC").unwrap();
        assert_eq!(q.order_by[0].field.parts, vec!["Id"]);
        let q =
            parse("SELECT Id FROM ContentDocumentLink WHERE ContentDocumentId IN ('069A','069B')")
                .unwrap();
        let Some(Cond::In {
            negated, values, ..
        }) = &q.filter
        else {
            panic!()
        };
        assert!(!negated);
        assert_eq!(values.len(), 2);
    }

    #[test]
    fn simple_salesforce_is_sandbox() {
        let q = parse("SELECT IsSandbox FROM Organization LIMIT 1").unwrap();
        assert_eq!(q.limit, Some(1));
    }

    #[test]
    fn counts_parents_and_keywords_in_any_case() {
        let q = parse("select count() from Account").unwrap();
        assert_eq!(q.select, vec![SelectItem::CountAll { pos: 7 }]);
        let q = parse("SELECT COUNT(Id) cnt, Account.Name, Owner.Name FROM Contact").unwrap();
        assert_eq!(
            q.select[0],
            SelectItem::CountField {
                field: field(&["Id"], 13),
                alias: Some("cnt".into())
            }
        );
        assert_eq!(
            q.select[1],
            SelectItem::Field(field(&["Account", "Name"], 22))
        );
    }

    #[test]
    fn where_operators_and_literals() {
        let q = parse(
            "SELECT Id FROM Account WHERE (Name LIKE 'Acme\\_%' OR Name = 'O\\'Brien') AND NOT Industry = null \
             AND AnnualRevenue > -1.5 AND Type NOT IN ('a','b') AND Tags__c INCLUDES ('x;y','z') \
             AND Tags__c EXCLUDES ('q') AND IsDeleted = false AND CreatedDate = LAST_N_DAYS:30 \
             AND CloseDate >= 2024-01-01 AND NumberOfEmployees <> 5",
        )
        .unwrap();
        let Some(Cond::And(terms)) = &q.filter else {
            panic!()
        };
        assert_eq!(terms.len(), 10);
        let Cond::Or(alts) = &terms[0] else { panic!() };
        let Cond::Like { pattern, .. } = &alts[0] else {
            panic!()
        };
        assert_eq!(
            pattern.parts,
            vec![LikePart::Text("Acme_".into()), LikePart::AnyRun]
        );
        let Cond::Compare { value, .. } = &alts[1] else {
            panic!()
        };
        assert_eq!(value.kind, LiteralKind::String("O'Brien".into()));
        assert!(matches!(&terms[1], Cond::Not(_)));
        let Cond::Compare { value, .. } = &terms[2] else {
            panic!()
        };
        assert!(matches!(&value.kind, LiteralKind::Number { text, .. } if text == "-1.5"));
        let Cond::Compare { value, .. } = &terms[7] else {
            panic!()
        };
        assert_eq!(
            value.kind,
            LiteralKind::DateLiteral(DateLiteral::Days { start: -30, end: 1 })
        );
        let Cond::Compare { op, .. } = &terms[9] else {
            panic!()
        };
        assert_eq!(*op, CmpOp::Ne);
    }

    #[test]
    fn order_by_nulls_limit_offset() {
        let q =
            parse("SELECT Id FROM Account ORDER BY Name DESC NULLS FIRST, Id LIMIT 10 OFFSET 20")
                .unwrap();
        assert!(q.order_by[0].descending && q.order_by[0].nulls_first);
        assert!(!q.order_by[1].descending && q.order_by[1].nulls_first);
        assert_eq!((q.limit, q.offset), (Some(10), Some(20)));
        let q = parse("SELECT Id FROM Account ORDER BY Name DESC").unwrap();
        assert!(!q.order_by[0].nulls_first);
    }

    #[test]
    fn date_literals() {
        use DateLiteral::*;
        let lit = |s: &str| {
            let q = parse(&format!("SELECT Id FROM Account WHERE CreatedDate = {s}")).unwrap();
            let Some(Cond::Compare { value, .. }) = q.filter else {
                panic!()
            };
            value.kind
        };
        assert_eq!(
            lit("TODAY"),
            LiteralKind::DateLiteral(Days { start: 0, end: 1 })
        );
        assert_eq!(
            lit("yesterday"),
            LiteralKind::DateLiteral(Days { start: -1, end: 0 })
        );
        assert_eq!(
            lit("LAST_WEEK"),
            LiteralKind::DateLiteral(Weeks { start: -1, end: 0 })
        );
        assert_eq!(
            lit("THIS_MONTH"),
            LiteralKind::DateLiteral(Months { start: 0, end: 1 })
        );
        assert_eq!(
            lit("NEXT_N_DAYS:7"),
            LiteralKind::DateLiteral(Days { start: 1, end: 8 })
        );
        assert_eq!(
            lit("N_MONTHS_AGO:2"),
            LiteralKind::DateLiteral(Months { start: -2, end: -1 })
        );
        assert_eq!(
            lit("LAST_N_QUARTERS:2"),
            LiteralKind::DateLiteral(Quarters { start: -2, end: 0 })
        );
    }

    fn err(q: &str) -> SoqlError {
        parse(q).unwrap_err()
    }

    #[test]
    fn malformed_queries_point_at_the_token() {
        let e = err("SELECT Id FROM Account WHERE");
        assert_eq!(e.code, SoqlErrorCode::MalformedQuery);
        assert_eq!(
            e.message,
            "\nSELECT Id FROM Account WHERE\n                            ^\nERROR at Row:1:Column:29\nunexpected token: <EOF>"
        );
        let e = err("SELECT Id, FROM Account");
        assert!(
            e.message
                .ends_with("ERROR at Row:1:Column:12\nunexpected token: 'FROM'"),
            "{}",
            e.message
        );
        let e = err("SELECT Id FROM Account WHERE Name = 'a' AND Type = 'b' OR Id = 'c'");
        assert!(
            e.message.ends_with("unexpected token: 'OR'"),
            "{}",
            e.message
        );
        let e = err("SELECT Id FROM Account LIMIT x");
        assert!(
            e.message.ends_with("unexpected token: 'x'"),
            "{}",
            e.message
        );
        let e = err("SELECT Id FROM Account WHERE Name = 'abc");
        assert_eq!(e.code, SoqlErrorCode::MalformedQuery);
        let e = err("SELECT Id FROM Account WHERE Name = 'a\\qb'");
        assert!(
            e.message.contains("Illegal character sequence '\\q'"),
            "{}",
            e.message
        );
        let e = err("SELECT Id FROM Account WHERE CreatedDate > BOGUS_DAY");
        assert!(
            e.message.ends_with("unexpected token: 'BOGUS_DAY'"),
            "{}",
            e.message
        );
        let e = err("SELECT Id FROM Account ORDER BY");
        assert!(e.message.ends_with("unexpected token: <EOF>"));
        let e = err("SELECT Id FROM Account extra");
        assert!(e.message.ends_with("unexpected token: 'extra'"));
    }

    #[test]
    fn multi_line_query_errors_report_the_row() {
        let e = err("SELECT Id\nFROM Account\nWHERE Name ==");
        assert_eq!(
            e.message,
            "\nWHERE Name ==\n            ^\nERROR at Row:3:Column:13\nunexpected token: '='"
        );
    }
}
