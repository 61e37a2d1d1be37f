//! Formula fields: a small evaluator for the Salesforce formula subset a record's own fields
//! need (arithmetic, `&` concatenation, comparisons, `IF`, `AND`/`OR`/`NOT`, `ISBLANK`,
//! `BLANKVALUE`/`NULLVALUE`, `ROUND`, `ABS`, `MAX`/`MIN`). Formulas are parsed when the schema
//! loads; values are computed on every write so queries read them like stored fields.
//! A formula outside the subset leaves its field null.

use crate::data::schema::{FieldType, ObjectSchema};
use crate::data::store::Record;
use crate::data::value::Value;

/// A parsed formula.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Num(f64),
    Str(String),
    Bool(bool),
    Null,
    Field(usize),
    Neg(Box<Expr>),
    Bin(Box<Expr>, Op, Box<Expr>),
    Call(String, Vec<Expr>),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Concat,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    Sym(&'static str),
}

fn lex(s: &str) -> Option<Vec<Tok>> {
    let c: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch.is_ascii_digit()
            || (ch == '.' && c.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let st = i;
            while i < c.len() && (c[i].is_ascii_digit() || c[i] == '.') {
                i += 1;
            }
            out.push(Tok::Num(c[st..i].iter().collect::<String>().parse().ok()?));
        } else if ch.is_alphabetic() || ch == '_' || ch == '$' {
            let st = i;
            while i < c.len()
                && (c[i].is_alphanumeric() || c[i] == '_' || c[i] == '.' || c[i] == '$')
            {
                i += 1;
            }
            out.push(Tok::Ident(c[st..i].iter().collect()));
        } else if ch == '\'' || ch == '"' {
            let q = ch;
            i += 1;
            let mut s = String::new();
            while i < c.len() && c[i] != q {
                if c[i] == '\\' && i + 1 < c.len() {
                    i += 1;
                }
                s.push(c[i]);
                i += 1;
            }
            i += 1;
            out.push(Tok::Str(s));
        } else {
            let two: String = c[i..(i + 2).min(c.len())].iter().collect();
            let sym = match two.as_str() {
                "<=" => Some("<="),
                ">=" => Some(">="),
                "<>" => Some("<>"),
                "!=" => Some("!="),
                "==" => Some("="),
                "&&" => Some("&&"),
                "||" => Some("||"),
                _ => None,
            };
            if let Some(s) = sym {
                out.push(Tok::Sym(s));
                i += 2;
                continue;
            }
            let one = match ch {
                '+' => "+",
                '-' => "-",
                '*' => "*",
                '/' => "/",
                '&' => "&",
                '=' => "=",
                '<' => "<",
                '>' => ">",
                '(' => "(",
                ')' => ")",
                ',' => ",",
                _ => return None,
            };
            out.push(Tok::Sym(one));
            i += 1;
        }
    }
    Some(out)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    obj: &'a ObjectSchema,
}

impl Parser<'_> {
    fn peek_sym(&self) -> Option<&'static str> {
        match self.toks.get(self.pos) {
            Some(Tok::Sym(s)) => Some(s),
            _ => None,
        }
    }

    fn eat(&mut self, s: &str) -> bool {
        if self.peek_sym() == Some(s) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn binary(&mut self, level: usize) -> Option<Expr> {
        const LEVELS: &[&[(&str, Op)]] = &[
            &[("||", Op::Or)],
            &[("&&", Op::And)],
            &[("=", Op::Eq), ("!=", Op::Ne), ("<>", Op::Ne)],
            &[("<", Op::Lt), ("<=", Op::Le), (">", Op::Gt), (">=", Op::Ge)],
            &[("+", Op::Add), ("-", Op::Sub), ("&", Op::Concat)],
            &[("*", Op::Mul), ("/", Op::Div)],
        ];
        if level == LEVELS.len() {
            return self.unary();
        }
        let mut left = self.binary(level + 1)?;
        'outer: loop {
            for (s, op) in LEVELS[level] {
                if self.eat(s) {
                    let right = self.binary(level + 1)?;
                    left = Expr::Bin(Box::new(left), *op, Box::new(right));
                    continue 'outer;
                }
            }
            return Some(left);
        }
    }

    fn unary(&mut self) -> Option<Expr> {
        if self.eat("-") {
            return Some(Expr::Neg(Box::new(self.unary()?)));
        }
        if self.eat("+") {
            return self.unary();
        }
        if self.eat("(") {
            let e = self.binary(0)?;
            return self.eat(")").then_some(e);
        }
        let t = self.toks.get(self.pos)?.clone();
        self.pos += 1;
        match t {
            Tok::Num(n) => Some(Expr::Num(n)),
            Tok::Str(s) => Some(Expr::Str(s)),
            Tok::Sym(_) => None,
            Tok::Ident(id) => {
                if self.eat("(") {
                    let mut args = Vec::new();
                    if !self.eat(")") {
                        loop {
                            args.push(self.binary(0)?);
                            if self.eat(")") {
                                break;
                            }
                            if !self.eat(",") {
                                return None;
                            }
                        }
                    }
                    return Some(Expr::Call(id.to_ascii_uppercase(), args));
                }
                match id.to_ascii_uppercase().as_str() {
                    "TRUE" => Some(Expr::Bool(true)),
                    "FALSE" => Some(Expr::Bool(false)),
                    "NULL" => Some(Expr::Null),
                    _ => self.obj.field_index(&id).map(Expr::Field),
                }
            }
        }
    }
}

/// Parses `text` against `obj`'s fields; None when outside the supported subset.
pub fn parse(text: &str, obj: &ObjectSchema) -> Option<Expr> {
    let mut p = Parser {
        toks: lex(text)?,
        pos: 0,
        obj,
    };
    let e = p.binary(0)?;
    (p.pos == p.toks.len()).then_some(e)
}

#[derive(Clone, Debug, PartialEq)]
enum V {
    Null,
    N(f64),
    S(String),
    B(bool),
}

fn num(v: &V) -> Option<f64> {
    match v {
        V::N(n) => Some(*n),
        _ => None,
    }
}

fn eval(e: &Expr, o: &ObjectSchema, r: &Record) -> V {
    match e {
        Expr::Num(n) => V::N(*n),
        Expr::Str(s) => V::S(s.clone()),
        Expr::Bool(b) => V::B(*b),
        Expr::Null => V::Null,
        Expr::Field(i) => match r.get(*i) {
            Value::Null => V::Null,
            Value::Bool(b) => V::B(*b),
            Value::Int(n) => V::N(*n as f64),
            Value::Double(d) if o.fields[*i].ftype == FieldType::Percent => V::N(d / 100.0),
            Value::Double(d) => V::N(*d),
            other => V::S(other.to_csv()),
        },
        Expr::Neg(x) => match eval(x, o, r) {
            V::N(n) => V::N(-n),
            _ => V::Null,
        },
        Expr::Bin(a, op, b) => {
            let (x, y) = (eval(a, o, r), eval(b, o, r));
            match op {
                Op::Concat => {
                    let s = |v: V| match v {
                        V::S(s) => s,
                        V::N(n) => crate::data::value::format_double(n),
                        V::B(b) => b.to_string(),
                        V::Null => String::new(),
                    };
                    V::S(s(x) + &s(y))
                }
                Op::And => V::B(x == V::B(true) && y == V::B(true)),
                Op::Or => V::B(x == V::B(true) || y == V::B(true)),
                Op::Eq => V::B(x == y),
                Op::Ne => V::B(x != y),
                Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                    let ord = match (&x, &y) {
                        (V::N(p), V::N(q)) => p.partial_cmp(q),
                        (V::S(p), V::S(q)) => Some(p.cmp(q)),
                        _ => None,
                    };
                    match ord {
                        None => V::Null,
                        Some(o) => V::B(match op {
                            Op::Lt => o.is_lt(),
                            Op::Le => o.is_le(),
                            Op::Gt => o.is_gt(),
                            _ => o.is_ge(),
                        }),
                    }
                }
                _ => match (num(&x), num(&y)) {
                    (Some(p), Some(q)) => match op {
                        Op::Add => V::N(p + q),
                        Op::Sub => V::N(p - q),
                        Op::Mul => V::N(p * q),
                        _ if q == 0.0 => V::Null,
                        _ => V::N(p / q),
                    },
                    _ => V::Null,
                },
            }
        }
        Expr::Call(f, args) => {
            let a = |i: usize| args.get(i).map(|x| eval(x, o, r)).unwrap_or(V::Null);
            let blank = |v: &V| matches!(v, V::Null) || matches!(v, V::S(s) if s.is_empty());
            match f.as_str() {
                "BLANKVALUE" | "NULLVALUE" => {
                    let x = a(0);
                    if blank(&x) {
                        a(1)
                    } else {
                        x
                    }
                }
                "ISBLANK" | "ISNULL" => V::B(blank(&a(0))),
                "IF" => {
                    if a(0) == V::B(true) {
                        a(1)
                    } else {
                        a(2)
                    }
                }
                "AND" => V::B(args.iter().all(|x| eval(x, o, r) == V::B(true))),
                "OR" => V::B(args.iter().any(|x| eval(x, o, r) == V::B(true))),
                "NOT" => match a(0) {
                    V::B(b) => V::B(!b),
                    _ => V::Null,
                },
                "ABS" => num(&a(0)).map(|n| V::N(n.abs())).unwrap_or(V::Null),
                "ROUND" => match (num(&a(0)), num(&a(1))) {
                    (Some(n), Some(d)) => {
                        let f = 10f64.powi(d as i32);
                        V::N((n * f).round() / f)
                    }
                    _ => V::Null,
                },
                "MAX" | "MIN" => {
                    let ns: Option<Vec<f64>> = args.iter().map(|x| num(&eval(x, o, r))).collect();
                    match ns {
                        Some(ns) if !ns.is_empty() => V::N(if f == "MAX" {
                            ns.into_iter().fold(f64::MIN, f64::max)
                        } else {
                            ns.into_iter().fold(f64::MAX, f64::min)
                        }),
                        _ => V::Null,
                    }
                }
                _ => V::Null,
            }
        }
    }
}

/// Computes the value of formula field `i` on `r`.
pub fn compute(e: &Expr, o: &ObjectSchema, i: usize, r: &Record) -> Value {
    let f = &o.fields[i];
    match (eval(e, o, r), &f.ftype) {
        (V::Null, _) => Value::Null,
        (V::N(n), FieldType::Percent) => round(n * 100.0, f.scale),
        (V::N(n), FieldType::Int | FieldType::Long) => Value::Int(n.round() as i64),
        (V::N(n), FieldType::Double | FieldType::Currency) => round(n, f.scale),
        (V::B(b), FieldType::Boolean) => Value::Bool(b),
        (V::S(s), t) if t.is_text() => Value::String(s.into()),
        (V::N(n), t) if t.is_text() => Value::String(crate::data::value::format_double(n).into()),
        _ => Value::Null,
    }
}

fn round(n: f64, scale: u32) -> Value {
    let f = 10f64.powi(scale.min(17) as i32);
    Value::Double((n * f).round() / f)
}

/// Recomputes every parsed formula field of `r`.
pub fn apply(o: &ObjectSchema, r: &mut Record) {
    for (i, e) in &o.formulas {
        let v = compute(e, o, *i, r);
        r.set(*i, v);
    }
}
