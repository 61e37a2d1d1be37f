//! Tests of the Avro datum reader: schemas of every type kind, decoded against apache-avro's own reader.

use apache_avro::types::Value as Reference;

use super::*;

/// A schema with every kind of type, named references and namespaces.
const SCHEMA: &str = r#"{
        "type": "record", "name": "Event", "namespace": "com.example",
        "fields": [
            {"name": "n", "type": "null"},
            {"name": "b", "type": "boolean"},
            {"name": "i", "type": "int"},
            {"name": "l", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "f", "type": "float"},
            {"name": "d", "type": "double"},
            {"name": "by", "type": "bytes"},
            {"name": "s", "type": "string"},
            {"name": "e", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B", "C"]}},
            {"name": "e2", "type": "Kind"},
            {"name": "a", "type": {"type": "array", "items": "string"}},
            {"name": "m", "type": {"type": "map", "values": "long"}},
            {"name": "u", "type": ["null", "string"]},
            {"name": "fx", "type": {"type": "fixed", "name": "Four", "namespace": "other", "size": 4}},
            {"name": "fx2", "type": "other.Four"},
            {"name": "r", "type": ["null", {"type": "record", "name": "Inner",
                "fields": [{"name": "x", "type": ["null", "double"]}]}]},
            {"name": "r2", "type": "com.example.Inner"}
        ]}"#;

fn reference_value() -> Reference {
    Reference::Record(vec![
        ("n".into(), Reference::Null),
        ("b".into(), Reference::Boolean(true)),
        ("i".into(), Reference::Int(-123_456)),
        (
            "l".into(),
            Reference::TimestampMillis(11_258_999_068_426_241),
        ),
        ("f".into(), Reference::Float(1.5)),
        ("d".into(), Reference::Double(-2.25)),
        ("by".into(), Reference::Bytes(vec![0, 255, 7])),
        ("s".into(), Reference::String("héllo".into())),
        ("e".into(), Reference::Enum(2, "C".into())),
        ("e2".into(), Reference::Enum(0, "A".into())),
        (
            "a".into(),
            Reference::Array(vec![
                Reference::String("x".into()),
                Reference::String("".into()),
            ]),
        ),
        (
            "m".into(),
            Reference::Map([("k".to_string(), Reference::Long(i64::MIN))].into()),
        ),
        (
            "u".into(),
            Reference::Union(1, Box::new(Reference::String("set".into()))),
        ),
        ("fx".into(), Reference::Fixed(4, vec![1, 2, 3, 4])),
        ("fx2".into(), Reference::Fixed(4, vec![5, 6, 7, 8])),
        (
            "r".into(),
            Reference::Union(
                1,
                Box::new(Reference::Record(vec![(
                    "x".into(),
                    Reference::Union(1, Box::new(Reference::Double(0.5))),
                )])),
            ),
        ),
        (
            "r2".into(),
            Reference::Record(vec![(
                "x".into(),
                Reference::Union(0, Box::new(Reference::Null)),
            )]),
        ),
    ])
}

fn reference_bytes() -> Vec<u8> {
    let schema = apache_avro::Schema::parse_str(SCHEMA).unwrap();
    apache_avro::to_avro_datum(&schema, reference_value()).unwrap()
}

#[test]
fn a_datum_written_by_the_reference_implementation_reads_back_exactly() {
    let schema = Schema::parse(SCHEMA).unwrap();
    let datum = schema.decode(&reference_bytes()).unwrap();
    assert_eq!(
        datum,
        Datum::Record(vec![
            ("n".into(), Datum::Null),
            ("b".into(), Datum::Boolean(true)),
            ("i".into(), Datum::Int(-123_456)),
            ("l".into(), Datum::Long(11_258_999_068_426_241)),
            ("f".into(), Datum::Float(1.5)),
            ("d".into(), Datum::Double(-2.25)),
            ("by".into(), Datum::Bytes(vec![0, 255, 7])),
            ("s".into(), Datum::String("héllo".into())),
            ("e".into(), Datum::Enum("C".into())),
            ("e2".into(), Datum::Enum("A".into())),
            (
                "a".into(),
                Datum::Array(vec![Datum::String("x".into()), Datum::String("".into())])
            ),
            (
                "m".into(),
                Datum::Map(vec![("k".into(), Datum::Long(i64::MIN))])
            ),
            ("u".into(), Datum::String("set".into())),
            ("fx".into(), Datum::Bytes(vec![1, 2, 3, 4])),
            ("fx2".into(), Datum::Bytes(vec![5, 6, 7, 8])),
            (
                "r".into(),
                Datum::Record(vec![("x".into(), Datum::Double(0.5))])
            ),
            ("r2".into(), Datum::Record(vec![("x".into(), Datum::Null)])),
        ])
    );
}

#[test]
fn longs_at_every_width_read_as_the_reference_writes_them() {
    let schema = Schema::parse("\"long\"").unwrap();
    let reference = apache_avro::Schema::parse_str("\"long\"").unwrap();
    for v in [
        0,
        1,
        -1,
        63,
        -64,
        64,
        1 << 31,
        -(1 << 53) - 1,
        i64::MAX,
        i64::MIN,
    ] {
        let bytes = apache_avro::to_avro_datum(&reference, Reference::Long(v)).unwrap();
        assert_eq!(schema.decode(&bytes).unwrap(), Datum::Long(v), "{v}");
    }
}

#[test]
fn blocks_with_byte_sizes_read_as_plain_blocks() {
    // Two blocks, the second with a negative count and its byte size, then the end.
    let schema = Schema::parse(r#"{"type": "array", "items": "int"}"#).unwrap();
    let bytes = [0x02, 0x02, 0x03, 0x04, 0x06, 0x08, 0x00];
    assert_eq!(
        schema.decode(&bytes).unwrap(),
        Datum::Array(vec![Datum::Int(1), Datum::Int(3), Datum::Int(4)])
    );
}

#[test]
fn corrupt_data_is_an_error_never_a_panic_or_a_huge_allocation() {
    let schema = Schema::parse(SCHEMA).unwrap();
    let good = reference_bytes();
    // Every truncation, and every single-byte corruption, is either an error or a datum.
    for cut in 0..good.len() {
        assert!(schema.decode(&good[..cut]).is_err(), "cut at {cut}");
    }
    for at in 0..good.len() {
        for byte in [0x00, 0x7f, 0x80, 0xff] {
            let mut bad = good.clone();
            bad[at] = byte;
            let _ = schema.decode(&bad);
        }
    }
    let mut longer = good.clone();
    longer.push(0);
    assert_eq!(
        schema.decode(&longer).unwrap_err().0,
        "1 bytes left after the datum"
    );
    // A string claiming a gigabyte.
    let s = Schema::parse("\"string\"").unwrap();
    assert!(s.decode(&[0xfe, 0xff, 0xff, 0xff, 0x0f]).is_err());
    // A union branch out of range, an enum symbol out of range.
    let u = Schema::parse(r#"["null", "int"]"#).unwrap();
    assert!(u.decode(&[0x04]).unwrap_err().0.contains("union branch 2"));
}

#[test]
fn bad_schemas_are_errors_naming_the_problem() {
    assert!(Schema::parse("{").unwrap_err().0.contains("not JSON"));
    assert!(Schema::parse("\"Nope\"")
        .unwrap_err()
        .0
        .contains("unknown type"));
    assert!(Schema::parse(r#"{"type": "record", "name": "R"}"#)
        .unwrap_err()
        .0
        .contains("no \"fields\""));
    assert!(Schema::parse(
        r#"{"type": "record", "name": "R", "fields": [
                {"name": "a", "type": {"type": "enum", "name": "E", "symbols": ["X"]}},
                {"name": "b", "type": {"type": "enum", "name": "E", "symbols": ["Y"]}}]}"#
    )
    .unwrap_err()
    .0
    .contains("declared twice"));
}

#[test]
fn a_record_may_refer_to_itself() {
    let schema = Schema::parse(
        r#"{"type": "record", "name": "Node", "fields": [
                {"name": "v", "type": "int"},
                {"name": "next", "type": ["null", "Node"]}]}"#,
    )
    .unwrap();
    let bytes = [0x02, 0x02, 0x04, 0x00];
    assert_eq!(
        schema.decode(&bytes).unwrap().into_json(),
        serde_json::json!({"v": 1, "next": {"v": 2, "next": null}})
    );
}
