//! The README's parameter table is the one [`Param`] describes: one description per parameter.

use render::Limits;
use render::request::Param;

#[test]
fn the_readme_parameter_table_is_generated_from_param() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let table = Param::markdown_table(&Limits::DEFAULT);
    assert!(
        readme.contains(&table),
        "README.md's parameter table differs from Param::markdown_table; paste this in its place:\n\n{table}"
    );
}
