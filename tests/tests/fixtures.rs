//! The emulator ships its own copy of the real describe payloads (it must stay self-contained);
//! the repository's fixture corpus (`fixtures/salesforce/`) is the reference. The two must not
//! drift apart.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `*.describe.json` file names in `dir`, sorted.
fn describes(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".describe.json"))
        .collect();
    names.sort();
    names
}

#[test]
fn the_emulator_serves_the_fixture_corpus_byte_for_byte() {
    let corpus = root().join("fixtures/salesforce");
    let emulator = root().join("sf-emulator/demo-org");
    let shipped = describes(&emulator);
    let mut compared = Vec::new();
    for name in describes(&corpus) {
        if name == "global.describe.json" {
            continue; // the global describe is computed by the emulator, not shipped
        }
        assert!(
            shipped.contains(&name),
            "sf-emulator/demo-org lacks {name} from fixtures/salesforce"
        );
        let expected = std::fs::read(corpus.join(&name)).unwrap();
        let actual = std::fs::read(emulator.join(&name)).unwrap();
        assert!(
            expected == actual,
            "sf-emulator/demo-org/{name} differs from fixtures/salesforce/{name}: copy the \
             fixture over the emulator's file (the corpus is the reference)"
        );
        compared.push(name);
    }
    assert_eq!(
        compared,
        [
            "account.describe.json",
            "case.describe.json",
            "contact.describe.json",
            "lead.describe.json",
            "opportunity.describe.json",
        ]
    );
}

#[test]
fn the_fixture_corpus_keeps_its_provenance_and_has_no_symlinks() {
    let corpus = root().join("fixtures/salesforce");
    let sources = std::fs::read_to_string(corpus.join("SOURCES.md")).unwrap();
    for entry in std::fs::read_dir(&corpus).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        assert!(
            !entry.file_type().unwrap().is_symlink(),
            "fixtures/salesforce/{name} is a symlink"
        );
        if name.ends_with(".json") {
            assert!(sources.contains(&name), "SOURCES.md does not cite {name}");
        }
    }
}
