//! The filter parser, validator and evaluator, on this repository's describes.
use super::*;

fn describe(name: &str) -> SObjectDescribe {
    // The fixed test corpus: real payloads, and the synthetic custom object.
    let root = env!("CARGO_MANIFEST_DIR");
    let path = if name.ends_with("__c") {
        format!("{root}/tests/fixtures/write_fields/describe/{name}.json")
    } else {
        format!(
            "{root}/../fixtures/salesforce/{}.describe.json",
            name.to_lowercase()
        )
    };
    SObjectDescribe::from_json(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn check(object: &str, filter: &str) -> Vec<String> {
    let account = describe("Account");
    let contact = describe("Contact");
    let target = describe(object);
    let parent = |name: &str| match name {
        "Account" => Some(&account),
        "Contact" => Some(&contact),
        _ => None,
    };
    validate(filter, &target, &parent)
        .into_iter()
        .map(|e| {
            format!(
                "{}..{} {} | {}",
                e.span.start, e.span.end, e.message, e.help
            )
        })
        .collect()
}

#[test]
fn accepts_valid_conditions() {
    let ok = [
        "IsDeleted = false AND Type != 'Competitor'",
        "Industry IN ('Energy', 'Banking') OR (AnnualRevenue > 1000000 AND Rating = null)",
        "NOT Name LIKE 'Acme%'",
        "Name NOT LIKE 'Test\\_%'",
        "Type NOT IN ('Other') AND NumberOfEmployees >= 10",
        "CreatedDate >= 2024-01-01T00:00:00Z AND LastActivityDate < 2024-01-31",
        "CreatedDate > 2024-01-31T10:00:00Z AND SystemModstamp <= 2024-01-31T10:00:00.000+01:00",
        "ParentId = '001000000000001AAA' AND ParentId != null",
        "Name = 'O\\'Reilly' and (Phone <> '1' or Fax = '2')",
        "AnnualRevenue > -1.5 AND LastActivityDate != null",
    ];
    for f in ok {
        assert_eq!(check("Account", f), Vec::<String>::new(), "{f}");
    }
    let invoice_ok = [
        "Payment_Methods__c INCLUDES ('Card', 'Cash') AND Due_Time__c < 17:00:00.000Z",
        "Account__r.Industry = 'Energy' AND Status__c = 'Paid'",
        "Billing_Contact__r.Account.Name LIKE 'A%'",
    ];
    for f in invoice_ok {
        assert_eq!(check("Invoice__c", f), Vec::<String>::new(), "{f}");
    }
}

#[test]
fn reports_precise_problems() {
    insta::assert_debug_snapshot!([
        check("Account", "Industy = 'Energy'"),
        check("Account", "Name = 'x' AND Type = 'y' OR Rating = 'z'"),
        check("Account", "AnnualRevenue > 'big'"),
        check("Account", "NumberOfEmployees = 1.5"),
        check("Account", "IsDeleted = 'false'"),
        check("Account", "CreatedDate > 2024-01-31"),
        check("Account", "Name = \"Acme\""),
        check("Account", "Name = 'Acme"),
        check("Account", "Name ="),
        check("Account", "Name LIKE 'A%' ORDER BY Name"),
        check("Account", "Industry INCLUDES ('Energy')"),
        check("Account", "BillingAddress = null"),
        check("Account", "CreatedDate = LAST_N_DAY:3"),
        check("Account", "ParentId = 'nope'"),
        check("Account", "Parent.Nme = 'x'"),
        check("Account", "Owner.Name = 'x'"),
        check("Account", "(Name = 'x'"),
        check("Account", "Name > null AND IsDeleted < true"),
        check("Invoice__c", "Notes__c LIKE '%late%'"),
        check("Invoice__c", "Due_Time__c = 10:00"),
        check(
            "Invoice__c",
            "Status__c IN ('Paid', 'Payed', 'Cancelled') AND Status__c LIKE 'P%'"
        ),
        check("Account", ""),
        check(
            "Account",
            "CreatedDate = LAST_N_DAYS:30 OR LastActivityDate = TODAY"
        ),
        check("Account", "LastActivityDate = 2024-02-30"),
    ]);
}

#[test]
fn every_prefix_and_mutation_of_a_filter_is_handled_without_panicking() {
    let filter = "Account__r.Industry IN ('Energy', 'It\\'s') AND (Amount__c >= -1.5 OR \
                  CreatedDate > 2024-01-31T10:00:00Z) AND Due_Time__c < 10:00:00.000Z \
                  AND NOT Payment_Methods__c INCLUDES ('Card') AND Issued_On__c != 2024-02-29";
    assert_eq!(check("Invoice__c", filter), Vec::<String>::new());
    let account = describe("Account");
    let invoice = describe("Invoice__c");
    let parent = |name: &str| (name == "Account").then_some(&account);
    let check_spans = |filter: &str| -> Vec<Range<usize>> {
        validate(filter, &invoice, &parent)
            .into_iter()
            .map(|e| e.span)
            .collect()
    };
    for (i, _) in filter.char_indices() {
        for e in check_spans(&filter[..i]) {
            assert!(e.end <= i, "{e:?} outside {:?}", &filter[..i]);
        }
        for c in ['(', ')', '\'', '\\', ':', '.', '-', 'é', ' '] {
            let mut v = filter.to_owned();
            v.replace_range(i..i + 1, &c.to_string());
            for e in check_spans(&v) {
                assert!(e.start <= e.end && e.end <= v.len(), "{e:?} in {v:?}");
                assert!(
                    v.is_char_boundary(e.start) && v.is_char_boundary(e.end),
                    "{e:?} in {v:?}"
                );
            }
        }
    }
}

/// Evaluates `filter` against a REST-shaped record.
fn eval(filter: &str, record: serde_json::Value) -> Option<bool> {
    let condition = Condition::parse(filter).unwrap_or_else(|e| panic!("{filter}: {e:?}"));
    condition.eval(&json_lookup(&record))
}

#[test]
fn text_compares_case_insensitively() {
    let r = serde_json::json!({"Industry": "Energy", "Name": "Acme Corp"});
    assert_eq!(eval("Industry = 'energy'", r.clone()), Some(true));
    assert_eq!(eval("industry = 'Banking'", r.clone()), Some(false));
    assert_eq!(eval("Industry != 'Banking'", r.clone()), Some(true));
    assert_eq!(eval("Name > 'acme'", r.clone()), Some(true));
    assert_eq!(eval("Name < 'B'", r.clone()), Some(true));
    assert_eq!(eval("Name <> 'ACME CORP'", r), Some(false));
}

#[test]
fn null_is_a_value_for_equality_and_matches_nothing_else() {
    let r = serde_json::json!({"Industry": null, "Rating": "Hot"});
    assert_eq!(eval("Industry = null", r.clone()), Some(true));
    assert_eq!(eval("Industry != null", r.clone()), Some(false));
    assert_eq!(eval("Rating != null", r.clone()), Some(true));
    assert_eq!(eval("Industry != 'Energy'", r.clone()), Some(true));
    assert_eq!(eval("Industry = 'Energy'", r.clone()), Some(false));
    assert_eq!(eval("Industry > 'A'", r.clone()), Some(false));
    assert_eq!(eval("Industry LIKE '%'", r.clone()), Some(false));
    assert_eq!(
        eval("Industry IN ('Energy', 'Banking')", r.clone()),
        Some(false)
    );
    assert_eq!(eval("Industry IN ('Energy', null)", r.clone()), Some(true));
    assert_eq!(eval("Industry NOT IN ('Energy')", r.clone()), Some(true));
    assert_eq!(eval("Industry NOT IN ('Energy', null)", r), Some(false));
}

#[test]
fn booleans_treat_null_as_false() {
    let r = serde_json::json!({"IsDeleted": false, "Active__c": null, "Paid__c": true});
    assert_eq!(eval("IsDeleted = false", r.clone()), Some(true));
    assert_eq!(eval("IsDeleted = TRUE", r.clone()), Some(false));
    assert_eq!(eval("Active__c = false", r.clone()), Some(true));
    assert_eq!(eval("Active__c = null", r.clone()), Some(true));
    assert_eq!(eval("Paid__c != null", r.clone()), Some(true));
    assert_eq!(eval("IsDeleted = null", r), Some(true));
}

#[test]
fn numbers_compare_numerically() {
    let r = serde_json::json!({"AnnualRevenue": 1500000.0, "NumberOfEmployees": 10});
    assert_eq!(eval("AnnualRevenue > 1000000", r.clone()), Some(true));
    assert_eq!(eval("AnnualRevenue >= 1500000.0", r.clone()), Some(true));
    assert_eq!(eval("AnnualRevenue < -1.5", r.clone()), Some(false));
    assert_eq!(eval("NumberOfEmployees = 10", r.clone()), Some(true));
    assert_eq!(eval("NumberOfEmployees <= 9", r.clone()), Some(false));
    assert_eq!(eval("NumberOfEmployees IN (1, 10, 100)", r), Some(true));
}

#[test]
fn dates_datetimes_and_times_compare_as_instants() {
    let r = serde_json::json!({
        "LastActivityDate": "2024-01-31",
        "CreatedDate": "2024-01-31T10:00:00.000+0000",
        "SystemModstamp": "2024-01-31T10:00:00Z",
        "Due_Time__c": "17:30:00.000Z",
    });
    assert_eq!(eval("LastActivityDate = 2024-01-31", r.clone()), Some(true));
    assert_eq!(eval("LastActivityDate < 2024-02-01", r.clone()), Some(true));
    assert_eq!(
        eval("LastActivityDate > 2024-01-31", r.clone()),
        Some(false)
    );
    // The same instant written in another offset.
    assert_eq!(
        eval("CreatedDate = 2024-01-31T11:00:00+01:00", r.clone()),
        Some(true)
    );
    assert_eq!(
        eval("CreatedDate > 2024-01-31T10:59:00+01:00", r.clone()),
        Some(true)
    );
    assert_eq!(
        eval("SystemModstamp <= 2024-01-31T10:00:00.000Z", r.clone()),
        Some(true)
    );
    assert_eq!(
        eval("SystemModstamp > 2024-01-31T10:00:00.001Z", r.clone()),
        Some(false)
    );
    assert_eq!(eval("Due_Time__c < 18:00:00.000Z", r.clone()), Some(true));
    assert_eq!(eval("Due_Time__c = 17:30:00Z", r), Some(true));
}

#[test]
fn like_matches_wildcards_and_escapes_case_insensitively() {
    let r = serde_json::json!({"Name": "Acme_Corp 100%"});
    assert_eq!(eval("Name LIKE 'acme%'", r.clone()), Some(true));
    assert_eq!(eval("Name LIKE '%corp%'", r.clone()), Some(true));
    assert_eq!(eval("Name LIKE 'Acm_\\_Corp%'", r.clone()), Some(true));
    assert_eq!(
        eval("Name LIKE 'Acme\\_Corp 100\\%'", r.clone()),
        Some(true)
    );
    assert_eq!(eval("Name LIKE 'Acme\\%%'", r.clone()), Some(false));
    assert_eq!(eval("Name LIKE 'Acme'", r.clone()), Some(false));
    assert_eq!(eval("Name LIKE '%1_0%'", r.clone()), Some(true));
    assert_eq!(eval("Name NOT LIKE 'Globex%'", r.clone()), Some(true));
    assert_eq!(eval("NOT Name LIKE 'acme%'", r), Some(false));
}

#[test]
fn includes_and_excludes_read_multipicklist_values() {
    let r = serde_json::json!({"Payment_Methods__c": "Card;Cash", "Empty__c": null});
    let f = "Payment_Methods__c";
    assert_eq!(
        eval(&format!("{f} INCLUDES ('card')"), r.clone()),
        Some(true)
    );
    assert_eq!(
        eval(&format!("{f} INCLUDES ('Cash;Card')"), r.clone()),
        Some(true)
    );
    assert_eq!(
        eval(&format!("{f} INCLUDES ('Card;Wire')"), r.clone()),
        Some(false)
    );
    assert_eq!(
        eval(&format!("{f} INCLUDES ('Wire', 'Cash')"), r.clone()),
        Some(true)
    );
    assert_eq!(
        eval(&format!("{f} EXCLUDES ('Wire')"), r.clone()),
        Some(true)
    );
    assert_eq!(
        eval(&format!("{f} EXCLUDES ('Wire', 'Card')"), r.clone()),
        Some(false)
    );
    assert_eq!(eval("Empty__c INCLUDES ('Card')", r.clone()), Some(false));
    assert_eq!(eval("Empty__c EXCLUDES ('Card')", r), Some(true));
}

#[test]
fn and_or_not_use_three_valued_logic_for_fields_not_provided() {
    let r = serde_json::json!({"Industry": "Energy"});
    assert_eq!(eval("Rating = 'Hot'", r.clone()), None);
    assert_eq!(
        eval("Industry = 'Banking' AND Rating = 'Hot'", r.clone()),
        Some(false)
    );
    assert_eq!(
        eval("Industry = 'Energy' AND Rating = 'Hot'", r.clone()),
        None
    );
    assert_eq!(
        eval("Industry = 'Energy' OR Rating = 'Hot'", r.clone()),
        Some(true)
    );
    assert_eq!(
        eval("Industry = 'Banking' OR Rating = 'Hot'", r.clone()),
        None
    );
    assert_eq!(eval("NOT Rating = 'Hot'", r.clone()), None);
    assert_eq!(
        eval("NOT (Industry = 'Energy' AND Rating = 'x')", r.clone()),
        None
    );
    assert_eq!(
        eval(
            "(Industry = 'Energy' OR Rating = 'x') AND NOT Industry = 'Banking'",
            r
        ),
        Some(true)
    );
}

#[test]
fn relationship_paths_follow_nested_records_and_null_parents() {
    let with_parent = serde_json::json!({"Account__r": {"Industry": "Energy"}});
    let no_parent = serde_json::json!({"Account__r": null});
    let f = "account__r.industry = 'Energy'";
    assert_eq!(eval(f, with_parent), Some(true));
    assert_eq!(eval(f, no_parent.clone()), Some(false));
    assert_eq!(eval("Account__r.Industry = null", no_parent), Some(true));
}

#[test]
fn values_of_an_unexpected_type_are_unknown_rather_than_guessed() {
    let r = serde_json::json!({"Industry": 42, "Amount__c": "12.5"});
    assert_eq!(eval("Industry = 'Energy'", r.clone()), None);
    // Numbers that arrive as text still compare numerically.
    assert_eq!(eval("Amount__c > 12", r), Some(true));
}

#[test]
fn fields_lists_every_path_once_in_filter_order() {
    let condition = Condition::parse(
        "Industry = 'Energy' AND (Account__r.Name LIKE 'A%' OR NOT industry IN ('x')) \
         AND Payment_Methods__c INCLUDES ('Card')",
    )
    .unwrap();
    assert_eq!(
        condition.fields(),
        ["Industry", "Account__r.Name", "Payment_Methods__c"]
    );
}

#[test]
fn parses_into_a_tree_of_comparisons() {
    let condition = Condition::parse("NOT (A = 1 OR B != 'x') AND C NOT IN (true, null)").unwrap();
    let Condition::And(operands) = &condition else {
        panic!("{condition:?}")
    };
    assert_eq!(operands.len(), 2);
    assert!(
        matches!(&operands[0], Condition::Not(inner) if matches!(**inner, Condition::Or(ref o) if o.len() == 2))
    );
    let Condition::Comparison(c) = &operands[1] else {
        panic!("{condition:?}")
    };
    assert_eq!(c.field.to_string(), "C");
    assert_eq!(c.op, Operator::NotIn);
    let values: Vec<&Literal> = c.values.iter().map(|v| &v.value).collect();
    assert_eq!(values, [&Literal::Boolean(true), &Literal::Null]);
}
