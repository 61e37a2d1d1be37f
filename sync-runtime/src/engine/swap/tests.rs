//! Tests of the shadow-table swap's pure decisions: method, shadow names, index SQL.

use super::*;

#[test]
fn a_first_load_copies_straight_into_a_shadow_and_a_reload_swaps_unless_something_depends_on_the_table(
) {
    assert_eq!(method(false, false, vec![]), Method::Shadow);
    assert_eq!(method(true, false, vec![]), Method::Swap);
    assert_eq!(method(false, true, vec![]), Method::Swap);
    let blocked = vec!["view salesforce.v depends on it".to_owned()];
    assert_eq!(method(true, true, blocked.clone()), Method::Merge(blocked));
    // Nothing synced yet: nothing for the app to lose sight of; straight in when the swap is
    // ruled out.
    assert_eq!(method(false, false, vec!["x".to_owned()]), Method::Direct);
}

#[test]
fn index_definitions_are_rebuilt_on_the_shadow_under_a_temporary_name() {
    assert_eq!(
            shadow_index_sql(
                "CREATE UNIQUE INDEX hcu_idx_account_sfid ON salesforce.account USING btree (sfid)",
                "hcu_idx_account_sfid",
                "salesforce.account",
                "_forcesync_reload_42",
                "salesforce.account_reload",
            )
            .as_deref(),
            Some("CREATE UNIQUE INDEX _forcesync_reload_42 ON salesforce.account_reload USING btree (sfid)")
        );
    assert_eq!(
            shadow_index_sql(
                "CREATE INDEX \"Odd\" ON salesforce.account USING btree (lower((name)::text)) WHERE (name IS NOT NULL)",
                "\"Odd\"",
                "salesforce.account",
                "_forcesync_reload_7",
                "salesforce.account_reload",
            )
            .as_deref(),
            Some("CREATE INDEX _forcesync_reload_7 ON salesforce.account_reload USING btree (lower((name)::text)) WHERE (name IS NOT NULL)")
        );
    assert_eq!(
        shadow_index_sql(
            "CREATE INDEX x ON ONLY salesforce.account USING btree (sfid)",
            "x",
            "salesforce.account",
            "t",
            "s"
        ),
        None
    );
}

#[test]
fn the_shadow_table_is_named_after_the_table_within_postgres_identifier_limits() {
    assert_eq!(shadow_name("account", 1), "account_reload");
    assert_eq!(shadow_name(&"x".repeat(60), 1234), "_forcesync_reload_1234");
}
