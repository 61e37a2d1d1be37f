//! Every mapping validation error fails the build with a `compile_error!` that pins the file,
//! line, column, source line and fix (one `tests/ui/<case>.rs` per error, each expanding the
//! mappings directory `tests/ui/<case>/`).

#[test]
fn mapping_errors_are_compile_errors() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
