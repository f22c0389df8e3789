//! The `arrow` and `parquet` features: record batches as tables and matrices (types, nulls,
//! dictionaries, bad columns), Parquet files read as the CSV path reads a CSV file, and the CLI
//! training on a Parquet file exactly as on the same data in CSV (`cargo test --features
//! parquet`; scripts/test runs it).
#![cfg(feature = "parquet")]

use std::path::Path;
use std::sync::Arc;

use arrow_array::types::{Int32Type, Int8Type};
use arrow_array::{
    ArrayRef, BooleanArray, DictionaryArray, Float16Array, Float32Array, Float64Array, Int32Array, Int64Array,
    LargeStringArray, ListArray, RecordBatch, StringArray, StringViewArray, UInt8Array,
};
use assert_cmd::Command;
use parquet::arrow::ArrowWriter;
use wgfit::data::{CsvOptions, Preprocessor, RawTable};
use wgfit::{Dense, Device, Error, Fit, Matrix, Sequential};

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(columns).unwrap()
}

fn message(e: Error) -> String {
    e.to_string()
}

#[test]
fn every_supported_type_becomes_cells_and_numbers() {
    let dict: DictionaryArray<Int8Type> = vec!["red", "blue", "red"].into_iter().collect();
    let b = batch(vec![
        ("i32", Arc::new(Int32Array::from(vec![1, -2, 3])) as ArrayRef),
        ("i64", Arc::new(Int64Array::from(vec![10, 20, 30]))),
        ("u8", Arc::new(UInt8Array::from(vec![0, 1, 255]))),
        (
            "f16",
            Arc::new(Float16Array::from(vec![
                half::f16::from_f32(0.5),
                half::f16::from_f32(-1.25),
                half::f16::from_f32(2.0),
            ])),
        ),
        ("f32", Arc::new(Float32Array::from(vec![0.1f32, -7.25, 1e-8]))),
        ("f64", Arc::new(Float64Array::from(vec![0.1f64, 2.5, -3.0]))),
        ("flag", Arc::new(BooleanArray::from(vec![true, false, true]))),
        ("city", Arc::new(StringArray::from(vec!["Oslo", "Lima", "Oslo"]))),
        ("big", Arc::new(LargeStringArray::from(vec!["a", "b", "c"]))),
        ("view", Arc::new(StringViewArray::from(vec!["x", "y", "z"]))),
        ("colour", Arc::new(dict)),
    ]);
    let t = RawTable::from_record_batch(&b).unwrap();
    assert_eq!(t.columns().len(), 11);
    assert_eq!(t.len(), 3);
    assert_eq!(t.lines(), &[1, 2, 3]);
    assert_eq!(t.rows()[0], ["1", "10", "0", "0.5", "0.1", "0.1", "1", "Oslo", "a", "x", "red"]);
    assert_eq!(t.rows()[1][10], "blue");
    // Numbers parse back to the f32 the column holds (f32 exactly; f64 rounded once).
    assert_eq!(t.number(2, 4).unwrap(), 1e-8f32);
    assert_eq!(t.number(0, 5).unwrap(), 0.1f64 as f32);
    assert_eq!(t.number(1, 3).unwrap(), -1.25);

    let numeric = batch(vec![
        ("a", Arc::new(Int32Array::from(vec![1, 2])) as ArrayRef),
        ("b", Arc::new(Float64Array::from(vec![0.5, -0.25]))),
        ("c", Arc::new(BooleanArray::from(vec![false, true]))),
    ]);
    let m = Matrix::from_record_batch(&numeric).unwrap();
    assert_eq!((m.rows(), m.cols()), (2, 3));
    assert_eq!(m.data(), &[1.0, 0.5, 0.0, 2.0, -0.25, 1.0]);
}

#[test]
fn nulls_and_unsupported_columns_are_errors_naming_them() {
    let b = batch(vec![
        ("ok", Arc::new(Float32Array::from(vec![1.0, 2.0, 3.0])) as ArrayRef),
        ("gaps", Arc::new(Float32Array::from(vec![Some(1.0), Some(2.0), None]))),
    ]);
    let e = message(RawTable::from_record_batch(&b).unwrap_err());
    assert!(e.contains("row 3, column 2 (\"gaps\"): missing value (null)"), "{e}");
    let e = message(Matrix::from_record_batch(&b).unwrap_err());
    assert!(e.contains("row 3, column 2 (\"gaps\")"), "{e}");
    // A null key of a dictionary is a null too.
    let dict: DictionaryArray<Int32Type> = vec![Some("a"), None].into_iter().collect();
    let e = message(RawTable::from_record_batch(&batch(vec![("d", Arc::new(dict) as ArrayRef)])).unwrap_err());
    assert!(e.contains("row 2, column 1 (\"d\")"), "{e}");

    let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![Some(1)]), Some(vec![Some(2)])]);
    let e = message(RawTable::from_record_batch(&batch(vec![("l", Arc::new(list) as ArrayRef)])).unwrap_err());
    assert!(e.contains("column 1 (\"l\") has Arrow type List") && e.contains("wgfit reads integers"), "{e}");
    let text = batch(vec![("s", Arc::new(StringArray::from(vec!["a"])) as ArrayRef)]);
    let e = message(Matrix::from_record_batch(&text).unwrap_err());
    assert!(e.contains("not a number") && e.contains("Preprocessor"), "{e}");
    let nan = batch(vec![("v", Arc::new(Float64Array::from(vec![1.0, f64::NAN])) as ArrayRef)]);
    let e = message(Matrix::from_record_batch(&nan).unwrap_err());
    assert!(e.contains("row 2, column 1 (\"v\"): NaN is not a finite number"), "{e}");
    let e = message(RawTable::from_record_batch(&nan).unwrap().to_table().unwrap_err());
    assert!(e.contains("row 2, column 1 (\"v\")") && e.contains("not a finite number"), "{e}");
    let empty = batch(vec![("v", Arc::new(Float64Array::from(Vec::<f64>::new())) as ArrayRef)]);
    assert!(message(RawTable::from_record_batch(&empty).unwrap_err()).contains("no data rows"));
    assert!(message(RawTable::from_record_batches(&[], "x").unwrap_err()).contains("no record batches"));
}

#[test]
fn text_columns_go_through_the_preprocessor_and_batches_train() {
    let b = batch(vec![
        ("size", Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])) as ArrayRef),
        ("city", Arc::new(StringArray::from(vec!["a", "b", "a", "c", "b", "a"]))),
        ("price", Arc::new(Float32Array::from(vec![1.0, 2.5, 3.0, 4.5, 5.0, 6.5]))),
    ]);
    let table = RawTable::from_record_batch(&b).unwrap();
    let pre = Preprocessor::fit(&table, &CsvOptions::new().categorical(&["city"])).unwrap();
    let (x, y) = pre.transform_xy(&table).unwrap();
    assert_eq!((x.cols(), y.cols()), (4, 1), "size + three one-hot cities");
    // A numeric batch goes to fit / evaluate / predict as it is.
    let xb = batch(vec![
        ("a", Arc::new(Float32Array::from(vec![0.0, 1.0, 2.0, 3.0])) as ArrayRef),
        ("b", Arc::new(Int32Array::from(vec![1, 0, 1, 0]))),
    ]);
    let yb = batch(vec![("y", Arc::new(Float32Array::from(vec![0.5, 1.0, 1.5, 2.0])) as ArrayRef)]);
    let mut m = Sequential::new(&Device::cpu(), vec![Dense::new(4).activation("relu"), Dense::new(1)]).seed(1);
    m.compile("adam", "mse", &[]).unwrap();
    let h = m.fit(&xb, &yb, Fit::new().epochs(2).batch_size(2).verbose(0)).unwrap();
    assert_eq!(h.epochs(), 2);
    let from_matrix = m.predict(&Matrix::from_record_batch(&xb).unwrap()).unwrap();
    assert_eq!(m.predict(&xb).unwrap(), from_matrix);
}

fn write_parquet(path: &Path, batches: &[RecordBatch]) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = ArrowWriter::try_new(file, batches[0].schema(), None).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.close().unwrap();
}

/// The shipped concrete CSV as a Parquet file of f32 columns in two row groups.
fn concrete_parquet(path: &Path) {
    let csv = RawTable::read_csv(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/concrete.csv")).unwrap();
    let t = csv.to_table().unwrap();
    let (rows, cols) = (t.values().rows(), t.values().cols());
    let half = rows / 2;
    let part = |range: std::ops::Range<usize>| {
        let columns: Vec<(&str, ArrayRef)> = (0..cols)
            .map(|c| {
                let v: Vec<f32> = range.clone().map(|r| t.values().data()[r * cols + c]).collect();
                (t.columns()[c].as_str(), Arc::new(Float32Array::from(v)) as ArrayRef)
            })
            .collect();
        batch(columns)
    };
    write_parquet(path, &[part(0..half), part(half..rows)]);
}

#[test]
fn parquet_files_read_as_their_csv_twins() {
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("concrete.parquet");
    concrete_parquet(&pq);
    let from_pq = RawTable::read(&pq).unwrap();
    let from_csv = RawTable::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/concrete.csv")).unwrap();
    assert_eq!(from_pq.columns(), from_csv.columns());
    assert_eq!(from_pq.to_table().unwrap().values(), from_csv.to_table().unwrap().values());
    // Found by its magic bytes too, whatever the name.
    let renamed = dir.path().join("data.bin");
    std::fs::copy(&pq, &renamed).unwrap();
    assert_eq!(RawTable::read(&renamed).unwrap().len(), from_csv.len());

    // Truncated, and not Parquet at all: errors naming the file.
    let bytes = std::fs::read(&pq).unwrap();
    let cut = dir.path().join("cut.parquet");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = message(RawTable::read(&cut).unwrap_err());
    assert!(e.contains("cut.parquet") && e.contains("not a readable Parquet file"), "{e}");
    let fake = dir.path().join("fake.parquet");
    std::fs::write(&fake, "a,b\n1,2\n").unwrap();
    let e = message(RawTable::read(&fake).unwrap_err());
    assert!(e.contains("fake.parquet") && e.contains("not a readable Parquet file"), "{e}");
}

#[test]
fn cli_trains_evaluates_and_predicts_on_parquet_as_on_csv() {
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("concrete.parquet");
    concrete_parquet(&pq);
    let csv = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/concrete.csv");
    let run = |data: &Path, model: &Path| -> String {
        let out = Command::cargo_bin("wgfit")
            .unwrap()
            .env("XDG_RUNTIME_DIR", "/tmp")
            .args(["train", "--data", data.to_str().unwrap(), "--layers", "8", "--epochs", "3", "--device", "cpu"])
            .args(["--verbose", "0", "--json", "--save", model.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["history"].to_string()
    };
    let (m_pq, m_csv) = (dir.path().join("pq.json"), dir.path().join("csv.json"));
    assert_eq!(run(&pq, &m_pq), run(&csv, &m_csv), "the same history from the same data");
    for cmd in ["evaluate", "predict"] {
        let out = |model: &Path, data: &Path| {
            let o = Command::cargo_bin("wgfit")
                .unwrap()
                .env("XDG_RUNTIME_DIR", "/tmp")
                .args([cmd, "--model", model.to_str().unwrap(), "--data", data.to_str().unwrap(), "--device", "cpu"])
                .output()
                .unwrap();
            assert!(o.status.success(), "{cmd}: {}", String::from_utf8_lossy(&o.stderr));
            o.stdout
        };
        assert_eq!(out(&m_pq, &pq), out(&m_csv, &csv), "{cmd}");
    }
}
