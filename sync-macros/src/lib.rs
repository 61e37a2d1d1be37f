//! forcesync's proc-macro: a thin front-end over `sync-schema`.
//!
//! `sync_macros::mappings!("../mappings")` loads a mappings directory (TOML mappings + describe
//! snapshots), expands to the generated models and sync adapters, and makes the crate rebuild
//! when any file it read changes. Every mapping error becomes a `compile_error!` carrying the
//! file, line, column, the offending source line and the fix. It never panics on user input.

use std::path::{Path, PathBuf};

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::LitStr;

/// Expands to the generated code for every mapping in a directory.
///
/// The path is relative to the invoking crate's `CARGO_MANIFEST_DIR` (Cargo's convention, as
/// for `include_str!` in build scripts); when no such directory exists there, it is resolved
/// relative to the source file containing the invocation instead.
#[proc_macro]
pub fn mappings(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let lit =
        match syn::parse::<LitStr>(input) {
            Ok(lit) => lit,
            Err(e) => return syn::Error::new(
                e.span(),
                "expected the mappings directory as a string, e.g. `mappings!(\"../mappings\")`",
            )
            .to_compile_error()
            .into(),
        };
    let written = PathBuf::from(lit.value());
    let dir = resolve(&written, invocation_file());
    expand(&dir, &written, lit.span()).into()
}

/// The source file of the invocation, if the compiler tells.
fn invocation_file() -> Option<PathBuf> {
    proc_macro::Span::call_site().local_file()
}

/// Where the directory named `written` is: absolute as is; else under `CARGO_MANIFEST_DIR`;
/// else next to the invoking source file; else (missing) under `CARGO_MANIFEST_DIR`, so the
/// loader reports it.
fn resolve(written: &Path, source_file: Option<PathBuf>) -> PathBuf {
    if written.is_absolute() {
        return written.to_path_buf();
    }
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    let beside_source = source_file
        .and_then(|f| f.parent().map(Path::to_path_buf))
        .map(|d| {
            if d.is_absolute() {
                d
            } else {
                // rustc names files relative to the directory it runs in (the package root).
                manifest.clone().unwrap_or_default().join(d)
            }
        });
    let candidates = [manifest.clone(), beside_source];
    candidates
        .iter()
        .flatten()
        .map(|base| base.join(written))
        .find(|p| p.is_dir())
        .or_else(|| manifest.map(|m| m.join(written)))
        .unwrap_or_else(|| written.to_path_buf())
}

/// Loads `dir` and expands to its code, or to one `compile_error!` per diagnostic.
fn expand(dir: &Path, written: &Path, span: Span) -> TokenStream {
    let catalog = match sync_schema::load::load_dir_as(dir, written) {
        Ok(catalog) => catalog,
        Err(diagnostics) => {
            return diagnostics
                .iter()
                .map(|d| {
                    let rendered = d.render();
                    let message = rendered.strip_prefix("error: ").unwrap_or(&rendered);
                    syn::Error::new(span, message).to_compile_error()
                })
                .collect();
        }
    };
    let tracked = catalog.sources.iter().map(|path| {
        let path = path.to_string_lossy();
        quote! { const _: &[u8] = include_bytes!(#path); }
    });
    let code = generated_code(&catalog);
    quote! {
        #(#tracked)*
        #code
    }
}

/// The models and adapters `sync-schema` renders for the catalog.
fn generated_code(catalog: &sync_schema::catalog::Catalog) -> TokenStream {
    sync_schema::rust::render(catalog)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_against_the_manifest_dir_first() {
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        assert_eq!(
            resolve(Path::new("src"), Some(PathBuf::from("/elsewhere/lib.rs"))),
            manifest.join("src")
        );
    }

    #[test]
    fn falls_back_to_the_invoking_file() {
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let ui = manifest.join("tests/ui/unknown_field.rs");
        assert_eq!(
            resolve(Path::new("unknown_field"), Some(ui)),
            manifest.join("tests/ui/unknown_field")
        );
        assert_eq!(
            resolve(
                Path::new("unknown_field"),
                Some(PathBuf::from("tests/ui/x.rs"))
            ),
            manifest.join("tests/ui/unknown_field")
        );
    }

    #[test]
    fn expansion_tracks_every_file_it_read() {
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let dir = manifest.join("../mappings");
        let code = expand(&dir, Path::new("../mappings"), Span::call_site()).to_string();
        assert!(!code.contains("compile_error"), "{code}");
        for file in [
            "forcesync.toml",
            "Account.toml",
            "Invoice__c.toml",
            "describe/Invoice__c.json",
        ] {
            let path = dir.join(file).to_string_lossy().into_owned();
            assert!(
                code.contains(&format!("include_bytes ! ({path:?})")),
                "{file} untracked: {code}"
            );
        }
    }

    #[test]
    fn errors_become_one_compile_error_each() {
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let dir = manifest.join("tests/ui/all_at_once");
        let code = expand(&dir, Path::new("all_at_once"), Span::call_site()).to_string();
        assert_eq!(code.matches("compile_error").count(), 3, "{code}");
        assert!(code.contains("all_at_once/Account.toml:2:11"), "{code}");
    }

    #[test]
    fn a_missing_directory_resolves_under_the_manifest_for_the_loader_to_report() {
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        assert_eq!(
            resolve(Path::new("nowhere"), None),
            manifest.join("nowhere")
        );
    }
}
