//! Tests of adoption's plan: type fits, per-table plans, the rendered plan.

use super::*;

#[test]
fn wider_or_equal_types_fit_narrower_text_widens_other_kinds_do_not_fit() {
    assert_eq!(fit("integer", "integer"), Fit::Same);
    assert_eq!(
        fit("character varying(255)", "character varying(80)"),
        Fit::Same
    );
    assert_eq!(
        fit("character varying(40)", "character varying(80)"),
        Fit::Widen
    );
    assert_eq!(fit("character varying(40)", "text"), Fit::Widen);
    assert_eq!(fit("text", "character varying(18)"), Fit::Same);
    assert_eq!(fit("character varying", "character varying(18)"), Fit::Same);
    assert_eq!(fit("bigint", "integer"), Fit::Same);
    assert_eq!(fit("integer", "double precision"), Fit::Incompatible);
    assert_eq!(
        fit("timestamp with time zone", "timestamp without time zone"),
        Fit::Incompatible
    );
    assert_eq!(fit("jsonb", "text"), Fit::Incompatible);
}

fn layout(schema: &str, tables: Vec<(&str, TableLayout)>, functions: &[&str]) -> Layout {
    Layout {
        schema: schema.to_owned(),
        tables: tables.into_iter().map(|(n, t)| (n.to_owned(), t)).collect(),
        functions: functions
            .iter()
            .map(|f| FunctionLayout {
                name: (*f).to_owned(),
                arguments: String::new(),
                definition: format!("CREATE FUNCTION {schema}.{f}() {f}"),
            })
            .collect(),
    }
}

fn columns(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(c, t)| ((*c).to_owned(), (*t).to_owned()))
        .collect()
}

fn trigger(schema: &str, name: &str, function: &str) -> TriggerLayout {
    TriggerLayout {
        name: name.to_owned(),
        definition: format!(
            "CREATE TRIGGER {name} ON {schema}.account EXECUTE FUNCTION {schema}.{function}()"
        ),
        function: function.to_owned(),
    }
}

#[test]
fn a_heroku_connect_table_gets_missing_columns_indexes_and_forcesyncs_triggers() {
    let have = layout(
            "salesforce",
            vec![(
                "account",
                TableLayout {
                    columns: columns(&[
                        ("id", "integer"),
                        ("name", "character varying(80)"),
                        ("sfid", "character varying(18)"),
                        ("app_note", "text"),
                        ("numberofemployees", "double precision"),
                        ("_hc_lastop", "character varying(32)"),
                    ]),
                    defaults: [("id".to_owned(), "nextval('salesforce.account_id_seq'::regclass)".to_owned())].into(),
                    indexes: vec![IndexLayout {
                        name: "hcu_idx_account_sfid".into(),
                        definition: "CREATE UNIQUE INDEX hcu_idx_account_sfid ON salesforce.account USING btree (sfid)".into(),
                    }],
                    triggers: vec![
                        trigger("salesforce", "hc_account_status_trigger", "hc_account_status"),
                        trigger("salesforce", "hc_account_logtrigger", "hc_account_logger"),
                        trigger("salesforce", "app_audit", "app_audit"),
                    ],
                },
            )],
            &["hc_account_status", "hc_account_logger", "app_audit", "tlog_notify_trigger"],
        );
    let want = layout(
            "ref",
            vec![(
                "account",
                TableLayout {
                    columns: columns(&[
                        ("id", "integer"),
                        ("sfid", "character varying(18)"),
                        ("name", "character varying(255)"),
                        ("industry", "character varying(40)"),
                        ("numberofemployees", "integer"),
                        ("_hc_lastop", "character varying(32)"),
                    ]),
                    defaults: [
                        ("id".to_owned(), "nextval('ref.account_id_seq'::regclass)".to_owned()),
                        ("_hc_lastop".to_owned(), "'PENDING'::character varying".to_owned()),
                    ]
                    .into(),
                    indexes: vec![
                        IndexLayout {
                            name: "hcu_idx_account_sfid".into(),
                            definition: "CREATE UNIQUE INDEX hcu_idx_account_sfid ON ref.account USING btree (sfid)".into(),
                        },
                        IndexLayout {
                            name: "hc_idx_account_industry".into(),
                            definition: "CREATE INDEX hc_idx_account_industry ON ref.account USING btree (industry)".into(),
                        },
                    ],
                    triggers: vec![
                        trigger("ref", "hc_account_status_trigger", "forcesync_status"),
                        trigger("ref", "hc_account_logtrigger", "forcesync_logger"),
                    ],
                },
            )],
            &["forcesync_status", "forcesync_logger", "tlog_notify_trigger"],
        );
    let wanted = [
        Wanted {
            table: "account".into(),
            object: Some("Account".into()),
        },
        Wanted {
            table: "contact".into(),
            object: Some("Contact".into()),
        },
    ];
    let plans = plan_tables(&have, &want, &wanted);
    assert_eq!(plans.len(), 1, "contact is in neither layout: {plans:?}");
    let account = &plans[0];
    assert!(account.found);
    assert_eq!(
        account.add_columns,
        columns(&[("industry", "character varying(40)")])
    );
    assert_eq!(
        account.widen_columns,
        [(
            "name".to_owned(),
            "character varying(80)".to_owned(),
            "character varying(255)".to_owned()
        )]
    );
    assert_eq!(
        account.incompatible,
        [(
            "numberofemployees".to_owned(),
            "double precision".to_owned(),
            "integer".to_owned()
        )]
    );
    assert_eq!(
        account.set_defaults,
        [(
            "_hc_lastop".to_owned(),
            "'PENDING'::character varying".to_owned()
        )],
        "the sequence's default is the table's own"
    );
    let text = render(&Plan {
        schema: "salesforce".into(),
        tables: plans.clone(),
        ..Plan::default()
    });
    assert!(
        text.contains("    defaults to set: _hc_lastop 'PENDING'::character varying\n"),
        "{text}"
    );
    assert_eq!(account.kept_columns, ["app_note"]);
    assert_eq!(account.add_indexes, ["hc_idx_account_industry"]);
    assert_eq!(
        account.replace_triggers,
        ["hc_account_status_trigger", "hc_account_logtrigger"],
        "the app's own trigger is left alone"
    );
    assert_eq!(account.create_triggers.len(), 2);
    assert_eq!(
        account.drop_functions,
        ["hc_account_logger", "hc_account_status"]
    );
    assert_eq!(
        plan_functions(&have, &want),
        ["forcesync_status()", "forcesync_logger()"],
        "the same tlog_notify_trigger is kept"
    );

    // After adoption the same comparison finds nothing to do.
    let mut adopted = want.clone();
    adopted.schema = "salesforce".into();
    for t in adopted.tables.values_mut() {
        for i in &mut t.indexes {
            i.definition = i.definition.replace("ref.", "salesforce.");
        }
        for tr in &mut t.triggers {
            tr.definition = tr.definition.replace("ref.", "salesforce.");
        }
    }
    for f in &mut adopted.functions {
        f.definition = f.definition.replace("ref.", "salesforce.");
    }
    let plans = plan_tables(&adopted, &want, &wanted);
    assert!(!plans[0].changes(), "{plans:?}");
    assert!(plan_functions(&adopted, &want).is_empty());
}

#[test]
fn a_missing_table_is_created_and_the_text_says_so() {
    let want = layout("ref", vec![("contact", TableLayout::default())], &[]);
    let have = layout("salesforce", vec![], &[]);
    let wanted = [Wanted {
        table: "contact".into(),
        object: Some("Contact".into()),
    }];
    let plan = Plan {
        schema: "salesforce".into(),
        tables: plan_tables(&have, &want, &wanted),
        left_alone: vec!["_hcmeta (Heroku Connect's metadata)".into()],
        ..Plan::default()
    };
    assert!(plan.changes());
    let text = render(&plan);
    assert!(
        text.contains(
            "Contact (salesforce.contact): missing; created as `forcesync migrate` would"
        ),
        "{text}"
    );
    assert!(text.contains("left as it is: _hcmeta"), "{text}");
}
