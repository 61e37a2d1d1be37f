//! Avro's binary encoding, read side (pure): a schema parsed from the JSON `GetSchema` returns
//! and one raw datum decoded with it (Apache Avro 1.11 specification, "Schema Declaration" and
//! "Binary Encoding"). Every type a schema can declare is read — primitives (logical types read
//! as their underlying type), records, enums, arrays, maps, unions, fixed, and named types
//! referred to by name, with namespaces resolved as the specification says. Nothing more:
//! no object container files, no schema resolution between writer and reader schemas (the
//! Pub/Sub API hands out the exact writer schema by id). Hand-written rather than a general Avro
//! crate because a datum reader is small and the general crates would nearly double the product
//! binary's first build; the tests check it against `apache-avro`.
//!
//! Corrupt input is an error, never a panic or an unbounded allocation: lengths and counts are
//! checked against the bytes left, and nesting is bounded.

use std::collections::HashMap;
use std::fmt;

use serde_json::Value as Json;

/// Why a schema, a datum, a field bitmap or an event's payload cannot be read (one event's
/// error, never the subscription's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayloadError(pub String);

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PayloadError {}

fn err<T>(message: impl Into<String>) -> Result<T, PayloadError> {
    Err(PayloadError(message.into()))
}

/// One type of a parsed schema. Named types (records, enums, fixed) live in
/// [`Schema::named`] and are referred to by index, so a type may refer to itself.
#[derive(Clone, Debug, PartialEq)]
pub enum Type {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Array(Box<Type>),
    Map(Box<Type>),
    Union(Vec<Type>),
    Named(usize),
}

/// A record, enum or fixed type.
#[derive(Clone, Debug, PartialEq)]
pub enum Named {
    Record { name: String, fields: Vec<Field> },
    Enum { name: String, symbols: Vec<String> },
    Fixed { name: String, size: usize },
}

impl Named {
    /// The type's full name.
    fn name(&self) -> &str {
        match self {
            Named::Record { name, .. } | Named::Enum { name, .. } | Named::Fixed { name, .. } => {
                name
            }
        }
    }
}

/// One field of a record.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: String,
    pub ty: Type,
}

/// A parsed schema: its root type and the named types it declares.
#[derive(Clone, Debug, PartialEq)]
pub struct Schema {
    pub root: Type,
    pub named: Vec<Named>,
}

/// A decoded value. Records keep their fields in schema order.
#[derive(Clone, Debug, PartialEq)]
pub enum Datum {
    Null,
    Boolean(bool),
    Int(i32),
    Long(i64),
    Float(f32),
    Double(f64),
    Bytes(Vec<u8>),
    String(String),
    /// An enum's symbol.
    Enum(String),
    Array(Vec<Datum>),
    Map(Vec<(String, Datum)>),
    Record(Vec<(String, Datum)>),
}

impl Datum {
    /// The value as JSON: unions already unwrapped, enums as their symbol, longs exact, bytes as
    /// an array of numbers.
    pub fn into_json(self) -> Json {
        match self {
            Datum::Null => Json::Null,
            Datum::Boolean(b) => Json::Bool(b),
            Datum::Int(i) => Json::from(i),
            Datum::Long(i) => Json::from(i),
            Datum::Float(f) => {
                serde_json::Number::from_f64(f64::from(f)).map_or(Json::Null, Json::Number)
            }
            Datum::Double(f) => serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number),
            Datum::Bytes(b) => Json::Array(b.into_iter().map(Json::from).collect()),
            Datum::String(s) | Datum::Enum(s) => Json::String(s),
            Datum::Array(items) => Json::Array(items.into_iter().map(Datum::into_json).collect()),
            Datum::Map(entries) | Datum::Record(entries) => Json::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, v.into_json()))
                    .collect(),
            ),
        }
    }
}

/// Deepest nesting of types (parsing) or values (decoding) accepted.
const MAX_DEPTH: usize = 64;

impl Schema {
    /// Parses a schema from its JSON text.
    pub fn parse(text: &str) -> Result<Schema, PayloadError> {
        let json: Json = serde_json::from_str(text)
            .map_err(|e| PayloadError(format!("the schema is not JSON: {e}")))?;
        let mut parser = Parser {
            named: Vec::new(),
            names: HashMap::new(),
        };
        let root = parser.parse(&json, "", 0)?;
        Ok(Schema {
            root,
            named: parser.named,
        })
    }

    /// The record a type is, looking through a union (`["null", {record}]`) to its one record.
    pub fn record_of<'a>(&'a self, ty: &Type) -> Option<(&'a str, &'a [Field])> {
        match ty {
            Type::Named(i) => match &self.named[*i] {
                Named::Record { name, fields } => Some((name, fields)),
                _ => None,
            },
            Type::Union(variants) => variants.iter().find_map(|v| self.record_of(v)),
            _ => None,
        }
    }

    /// Decodes one raw binary datum, which must use every byte.
    pub fn decode(&self, bytes: &[u8]) -> Result<Datum, PayloadError> {
        let mut reader = Reader { bytes, pos: 0 };
        let datum = reader.read(self, &self.root, 0)?;
        let left = bytes.len() - reader.pos;
        if left > 0 {
            return err(format!("{left} bytes left after the datum"));
        }
        Ok(datum)
    }
}

struct Parser {
    named: Vec<Named>,
    /// Full name → index in `named`.
    names: HashMap<String, usize>,
}

/// A name's full name in `namespace` (a name with a dot is already full).
fn full_name(name: &str, namespace: &str) -> String {
    if name.contains('.') || namespace.is_empty() {
        name.to_string()
    } else {
        format!("{namespace}.{name}")
    }
}

impl Parser {
    fn parse(&mut self, json: &Json, namespace: &str, depth: usize) -> Result<Type, PayloadError> {
        if depth > MAX_DEPTH {
            return err("the schema nests too deeply");
        }
        match json {
            Json::String(name) => self.by_name(name, namespace),
            Json::Array(variants) => Ok(Type::Union(
                variants
                    .iter()
                    .map(|v| self.parse(v, namespace, depth + 1))
                    .collect::<Result<_, _>>()?,
            )),
            Json::Object(o) => {
                let kind = match o.get("type") {
                    Some(Json::String(kind)) => kind.as_str(),
                    // `{"type": {...}}` or `{"type": [...]}`: the type itself.
                    Some(inner) => return self.parse(inner, namespace, depth + 1),
                    None => return err(format!("a schema object without \"type\": {json}")),
                };
                let named_in =
                    |o: &serde_json::Map<String, Json>| -> Result<(String, String), PayloadError> {
                        let Some(name) = o.get("name").and_then(Json::as_str) else {
                            return err(format!("a {kind} without a name"));
                        };
                        let ns = o
                            .get("namespace")
                            .and_then(Json::as_str)
                            .unwrap_or(namespace);
                        let full = full_name(name, ns);
                        let own_ns = full.rsplit_once('.').map_or("", |(ns, _)| ns).to_string();
                        Ok((full, own_ns))
                    };
                match kind {
                    "record" | "error" => {
                        let (full, own_ns) = named_in(o)?;
                        let index = self.declare(Named::Fixed {
                            name: full.clone(),
                            size: 0,
                        })?;
                        let Some(Json::Array(list)) = o.get("fields") else {
                            return err(format!("record {full} has no \"fields\" list"));
                        };
                        let mut fields = Vec::with_capacity(list.len());
                        for f in list {
                            let Some(name) = f.get("name").and_then(Json::as_str) else {
                                return err(format!("a field of record {full} has no name"));
                            };
                            let Some(ty) = f.get("type") else {
                                return err(format!("field {full}.{name} has no type"));
                            };
                            fields.push(Field {
                                name: name.to_string(),
                                ty: self.parse(ty, &own_ns, depth + 1)?,
                            });
                        }
                        self.named[index] = Named::Record { name: full, fields };
                        Ok(Type::Named(index))
                    }
                    "enum" => {
                        let (full, _) = named_in(o)?;
                        let symbols = match o.get("symbols") {
                            Some(Json::Array(s)) => s
                                .iter()
                                .map(|s| s.as_str().map(str::to_string))
                                .collect::<Option<Vec<_>>>(),
                            _ => None,
                        };
                        let Some(symbols) = symbols else {
                            return err(format!("enum {full} has no list of symbols"));
                        };
                        self.declare(Named::Enum {
                            name: full,
                            symbols,
                        })
                        .map(Type::Named)
                    }
                    "fixed" => {
                        let (full, _) = named_in(o)?;
                        let Some(size) = o.get("size").and_then(Json::as_u64) else {
                            return err(format!("fixed {full} has no size"));
                        };
                        let size = usize::try_from(size)
                            .map_err(|_| PayloadError(format!("fixed {full} is too large")))?;
                        self.declare(Named::Fixed { name: full, size })
                            .map(Type::Named)
                    }
                    "array" => Ok(Type::Array(
                        self.inner(o, "items", "an array", namespace, depth)?,
                    )),
                    "map" => Ok(Type::Map(
                        self.inner(o, "values", "a map", namespace, depth)?,
                    )),
                    // A primitive, perhaps with a logical type: read as the primitive.
                    primitive => self.by_name(primitive, namespace),
                }
            }
            other => err(format!("{other} is not a schema")),
        }
    }

    /// Declares the named type `named` (a placeholder for a record while its fields are read).
    fn declare(&mut self, named: Named) -> Result<usize, PayloadError> {
        let full = named.name().to_string();
        if self.names.contains_key(&full) {
            return err(format!("the type {full} is declared twice"));
        }
        self.named.push(named);
        let index = self.named.len() - 1;
        self.names.insert(full, index);
        Ok(index)
    }

    /// The schema a container holds under `key` (`items` of an array, `values` of a map).
    fn inner(
        &mut self,
        o: &serde_json::Map<String, Json>,
        key: &str,
        container: &str,
        namespace: &str,
        depth: usize,
    ) -> Result<Box<Type>, PayloadError> {
        let Some(inner) = o.get(key) else {
            return err(format!("{container} without \"{key}\""));
        };
        Ok(Box::new(self.parse(inner, namespace, depth + 1)?))
    }

    fn by_name(&self, name: &str, namespace: &str) -> Result<Type, PayloadError> {
        Ok(match name {
            "null" => Type::Null,
            "boolean" => Type::Boolean,
            "int" => Type::Int,
            "long" => Type::Long,
            "float" => Type::Float,
            "double" => Type::Double,
            "bytes" => Type::Bytes,
            "string" => Type::String,
            _ => {
                let index = self
                    .names
                    .get(&full_name(name, namespace))
                    .or_else(|| self.names.get(name))
                    .ok_or_else(|| PayloadError(format!("unknown type {name:?}")))?;
                Type::Named(*index)
            }
        })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn left(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&[u8], PayloadError> {
        if n > self.left() {
            return err(format!(
                "the datum ends early: {n} bytes wanted at byte {}, {} left",
                self.pos,
                self.left()
            ));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// An index (a long) into `list`: a union's branch, an enum's symbol; `out_of_range` names
    /// an index the list does not have.
    fn index_into<'l, T>(
        &mut self,
        list: &'l [T],
        out_of_range: impl FnOnce(i64) -> String,
    ) -> Result<&'l T, PayloadError> {
        let index = self.long()?;
        usize::try_from(index)
            .ok()
            .and_then(|i| list.get(i))
            .ok_or_else(|| PayloadError(out_of_range(index)))
    }

    /// A zig-zag variable-length long.
    fn long(&mut self) -> Result<i64, PayloadError> {
        let mut value: u64 = 0;
        for shift in (0..70).step_by(7) {
            let byte = self.take(1)?[0];
            if shift == 63 && byte > 1 {
                return err("a long longer than 64 bits");
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
            }
        }
        err("a long longer than 10 bytes")
    }

    fn int(&mut self) -> Result<i32, PayloadError> {
        let v = self.long()?;
        i32::try_from(v).map_err(|_| PayloadError(format!("{v} does not fit an int")))
    }

    /// Whether `n` elements of at least `min_size` bytes each can be in the bytes left (elements
    /// of no size, like nulls, are capped at a million).
    fn fits(&self, n: usize, min_size: usize) -> bool {
        if min_size == 0 {
            n <= 1 << 20
        } else {
            n.saturating_mul(min_size) <= self.left()
        }
    }

    /// A length or count, checked against the bytes left (each element takes at least
    /// `min_size` bytes).
    fn count(&mut self, what: &str, min_size: usize) -> Result<usize, PayloadError> {
        let n = self.long()?;
        let n = usize::try_from(n).map_err(|_| PayloadError(format!("a negative {what} ({n})")))?;
        if !self.fits(n, min_size) {
            return err(format!(
                "a {what} of {n} with only {} bytes left",
                self.left()
            ));
        }
        Ok(n)
    }

    fn bytes(&mut self) -> Result<Vec<u8>, PayloadError> {
        let n = self.count("byte length", 1)?;
        Ok(self.take(n)?.to_vec())
    }

    fn string(&mut self) -> Result<String, PayloadError> {
        let bytes = self.bytes()?;
        String::from_utf8(bytes).map_err(|_| PayloadError("a string that is not UTF-8".into()))
    }

    /// Items of an array or map: blocks of `count` items, a negative count followed by the
    /// block's byte size, until a zero count.
    fn blocks(
        &mut self,
        min_size: usize,
        mut item: impl FnMut(&mut Self) -> Result<(), PayloadError>,
    ) -> Result<(), PayloadError> {
        loop {
            let mut n = self.long()?;
            if n == 0 {
                return Ok(());
            }
            if n < 0 {
                n = n
                    .checked_neg()
                    .ok_or_else(|| PayloadError("a bad block count".into()))?;
                self.long()?; // the block's size in bytes
            }
            let n = usize::try_from(n).map_err(|_| PayloadError("a bad block count".into()))?;
            if !self.fits(n, min_size) {
                return err(format!(
                    "a block of {n} items with only {} bytes left",
                    self.left()
                ));
            }
            for _ in 0..n {
                item(self)?;
            }
        }
    }

    fn read(&mut self, schema: &Schema, ty: &Type, depth: usize) -> Result<Datum, PayloadError> {
        if depth > MAX_DEPTH {
            return err("the datum nests too deeply");
        }
        Ok(match ty {
            Type::Null => Datum::Null,
            Type::Boolean => match self.take(1)?[0] {
                0 => Datum::Boolean(false),
                1 => Datum::Boolean(true),
                b => return err(format!("{b} is not a boolean")),
            },
            Type::Int => Datum::Int(self.int()?),
            Type::Long => Datum::Long(self.long()?),
            Type::Float => {
                let b = self.take(4)?;
                Datum::Float(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            Type::Double => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Datum::Double(f64::from_le_bytes(a))
            }
            Type::Bytes => Datum::Bytes(self.bytes()?),
            Type::String => Datum::String(self.string()?),
            Type::Array(items) => {
                let min = min_size(items);
                let mut out = Vec::new();
                self.blocks(min, |r| {
                    out.push(r.read(schema, items, depth + 1)?);
                    Ok(())
                })?;
                Datum::Array(out)
            }
            Type::Map(values) => {
                let min = 1 + min_size(values);
                let mut out = Vec::new();
                self.blocks(min, |r| {
                    let key = r.string()?;
                    out.push((key, r.read(schema, values, depth + 1)?));
                    Ok(())
                })?;
                Datum::Map(out)
            }
            Type::Union(variants) => {
                let variant = self.index_into(variants, |index| {
                    format!("union branch {index} of a union of {}", variants.len())
                })?;
                self.read(schema, variant, depth + 1)?
            }
            Type::Named(i) => match &schema.named[*i] {
                Named::Record { fields, .. } => {
                    let mut out = Vec::with_capacity(fields.len());
                    for f in fields {
                        out.push((f.name.clone(), self.read(schema, &f.ty, depth + 1)?));
                    }
                    Datum::Record(out)
                }
                Named::Enum { name, symbols } => {
                    let symbol = self.index_into(symbols, |index| {
                        format!("symbol {index} of enum {name}, which has {}", symbols.len())
                    })?;
                    Datum::Enum(symbol.clone())
                }
                Named::Fixed { size, .. } => Datum::Bytes(self.take(*size)?.to_vec()),
            },
        })
    }
}

/// The fewest bytes a value of `ty` takes (0 for null, and for types that may be empty).
fn min_size(ty: &Type) -> usize {
    match ty {
        Type::Null => 0,
        Type::Float => 4,
        Type::Double => 8,
        Type::Named(_) | Type::Union(_) => 0,
        _ => 1,
    }
}

#[cfg(test)]
mod tests;
