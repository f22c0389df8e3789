//! The CSV loader on arbitrary bytes: parse, convert to numbers, fit the preprocessing, split.
//! Any outcome is fine except a panic (or a crash, a hang, unbounded memory).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use wgfit::data::{CsvOptions, Preprocessor, RawTable, ScaleKind, Table};

fuzz_target!(|bytes: &[u8]| {
    let path = Path::new("fuzz.csv");
    let _ = Table::parse_csv(bytes, path).map(|t| t.features_target(None));
    let Ok(table) = RawTable::parse_csv(bytes, path) else { return };
    assert!(table.rows().iter().all(|r| r.len() == table.columns().len()));
    let _ = table.split_last(0.5);
    let _ = table.split_random(0.25, 7);
    for opts in [
        CsvOptions::new(),
        CsvOptions::new().categorical(&[table.columns()[0].as_str()]).scale(ScaleKind::Standard),
        CsvOptions::new().target(&table.columns()[0]).scale(ScaleKind::None),
    ] {
        if let Ok(pre) = Preprocessor::fit(&table, &opts) {
            let _ = pre.transform_xy(&table);
        }
    }
});
