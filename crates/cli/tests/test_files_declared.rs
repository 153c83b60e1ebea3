//! Every crate builds its integration tests as one binary, `tests/main.rs`,
//! with `autotests = false`: a file of `tests/` that main.rs does not declare
//! would never be compiled or run. This test finds such files in every crate.

use std::fs;
use std::path::Path;

#[test]
fn every_test_file_is_a_module_of_its_crates_test_binary() {
    let crates = fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .expect("the crates folder");
    let mut checked = 0;
    let mut missing = Vec::new();
    for krate in fs::read_dir(&crates).expect("the crates folder") {
        let tests = krate.expect("a crate folder").path().join("tests");
        let Ok(main) = fs::read_to_string(tests.join("main.rs")) else {
            continue;
        };
        for file in fs::read_dir(&tests).expect("the tests folder") {
            let path = file.expect("a test file").path();
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let is_module = path.extension().is_some_and(|e| e == "rs") && stem != "main";
            if is_module {
                checked += 1;
                if !main.lines().any(|l| l.trim() == format!("mod {stem};")) {
                    missing.push(path.display().to_string());
                }
            }
        }
    }
    assert!(
        checked > 40,
        "only {checked} test files found under {crates:?}"
    );
    assert!(
        missing.is_empty(),
        "test files not declared in their crate's tests/main.rs: {missing:?}"
    );
}
