//! `Preprocessor::fit_file` and `DataFile::open_preprocessed`: the preprocessing of a file read in
//! pieces is the in-memory one (`Preprocessor::fit` on `RawTable::read`, `transform_xy`), bit for
//! bit, with the same errors.

use std::path::{Path, PathBuf};

mod common;
use common::cli::shipped;
use common::concrete_with_text;
use wgfit::data::{CsvOptions, DataFile, FileOptions, Preprocessor, RawTable, ScaleKind};

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// A numeric class target whose first rows are numbers and later ones text (the labels of the
/// first rows are read again), with -0 and 0 among the numbers.
fn mixed_target(dir: &Path) -> PathBuf {
    let mut out = String::from("a,b,y\n");
    for i in 0..60 {
        let y = match i {
            0 => "-0".to_string(),
            1 => "0.0".to_string(),
            i if i < 30 => format!("{}", i % 4),
            i => ["cat", "dog", " 1.0"][i % 3].to_string(),
        };
        out += &format!("{},{},{y}\n", i as f32 * 0.5, (i * 7 % 11) as f32 - 3.0);
    }
    let path = dir.join("mixed.csv");
    std::fs::write(&path, out).unwrap();
    path
}

#[cfg(feature = "parquet")]
fn as_parquet(csv: &Path, dir: &Path) -> PathBuf {
    let table = RawTable::read(csv).unwrap();
    let path = dir.join("copy.parquet");
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
    let columns: Vec<(String, ArrayRef)> = table
        .columns()
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let cells: Vec<&str> = table.rows().iter().map(|r| r[c].as_str()).collect();
            let array: ArrayRef = match cells.iter().map(|s| s.parse::<f64>()).collect::<Result<Vec<_>, _>>() {
                Ok(v) => Arc::new(Float64Array::from(v)),
                Err(_) => Arc::new(StringArray::from(cells)),
            };
            (name.clone(), array)
        })
        .collect();
    let props = parquet::file::properties::WriterProperties::builder().set_max_row_group_row_count(Some(300)).build();
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let file = std::fs::File::create(&path).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    path
}

/// `fit_file` learns what `fit` learns on the rows, and `open_preprocessed` holds what
/// `transform_xy` gives, bit for bit (the fitted preprocessors compared as their saved JSON,
/// which writes every f32 exactly, and field by field).
fn check(path: &Path, opts: &CsvOptions, rows: Option<std::ops::Range<usize>>, what: &str) -> Preprocessor {
    let table = RawTable::read(path).unwrap();
    let n = table.len();
    let range = rows.clone().unwrap_or(0..n);
    let train = table.select(&range.clone().collect::<Vec<_>>());
    let file_opts = match &rows {
        Some(r) => FileOptions::new().rows(r.clone()),
        None => FileOptions::new(),
    };
    let want = Preprocessor::fit(&train, opts).unwrap();
    let got = Preprocessor::fit_file(path, opts, &file_opts).unwrap();
    assert_eq!(serde_json::to_string(&got).unwrap(), serde_json::to_string(&want).unwrap(), "{what}");
    assert_eq!(got, want, "{what}");
    // The training rows, and the others (as validation rows) through the same preprocessing.
    let mut parts = vec![(range.clone(), file_opts)];
    if range.end < n {
        parts.push((range.end..n, FileOptions::new().rows(range.end..n)));
    }
    for (part, file_opts) in parts {
        let rows = table.select(&part.clone().collect::<Vec<_>>());
        let file = DataFile::open_preprocessed(path, &got, &file_opts);
        let (x, y) = match want.transform_xy(&rows) {
            Ok(xy) => xy,
            Err(e) => {
                assert_eq!(file.unwrap_err().to_string(), e.to_string(), "{what}: rows {part:?}");
                continue;
            }
        };
        let file = file.unwrap();
        assert_eq!(file.rows(), part.len(), "{what}");
        assert_eq!(file.features(), want.input_names(), "{what}");
        assert_eq!(file.target(), want.target(), "{what}");
        let (fx, fy) = file.read_rows(0..file.rows()).unwrap();
        assert_eq!(bits(fx.data()), bits(x.data()), "{what}: features of rows {part:?}");
        assert_eq!(bits(fy.data()), bits(y.data()), "{what}: targets of rows {part:?}");
    }
    got
}

#[test]
fn fit_file_learns_what_fit_learns_and_open_preprocessed_holds_transform_xy() {
    let dir = tempfile::tempdir().unwrap();
    let concrete = shipped("concrete.csv");
    let text = concrete_with_text(dir.path());
    let digits = shipped("digits.csv");
    let words = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/digits_words.csv");
    let mixed = mixed_target(dir.path());
    let at = |path: &Path, f: f32| wgfit::data::split_point(RawTable::read(path).unwrap().len(), f).unwrap();
    for scale in [ScaleKind::MinMax, ScaleKind::Standard, ScaleKind::None] {
        let opts = CsvOptions::new().scale(scale);
        check(&concrete, &opts, None, &format!("concrete {scale:?}"));
        check(&concrete, &opts, Some(0..at(&concrete, 0.2)), &format!("concrete {scale:?}, split"));
        // Categorical features, a text class target, a dropped column, a target by name.
        let opts =
            CsvOptions::new().target("strength").categorical(&["grade"]).drop(&["compressive_strength"]).scale(scale);
        let pre = check(&text, &opts, None, &format!("categorical {scale:?}"));
        assert_eq!(pre.classes().unwrap(), ["high", "low", "medium"]);
        check(&text, &opts, Some(0..at(&text, 0.3)), &format!("categorical {scale:?}, split"));
        // A numeric target read as classes.
        let opts = CsvOptions::new().multiclass(true).scale(scale);
        let pre = check(&digits, &opts, Some(0..at(&digits, 0.25)), &format!("digits multiclass {scale:?}"));
        assert_eq!(pre.classes().unwrap().len(), 10);
    }
    check(&words, &CsvOptions::new().scale(ScaleKind::Standard), None, "digits with word labels");
    // Numbers first, then text: every label, as text (" 1.0" trimmed, "-0" and "0.0" apart).
    let pre = check(&mixed, &CsvOptions::new(), None, "mixed target");
    assert!(pre.classes().unwrap().iter().any(|c| c == "-0"), "{:?}", pre.classes());
    let pre = check(&mixed, &CsvOptions::new().multiclass(true), Some(0..30), "mixed target, numeric rows");
    assert_eq!(pre.classes().unwrap(), ["-0", "1", "2", "3"]);
    check(&mixed, &CsvOptions::new(), Some(10..45), "mixed target, middle rows");
    #[cfg(feature = "parquet")]
    {
        let pq = as_parquet(&text, dir.path());
        let opts = CsvOptions::new().target("strength").categorical(&["grade"]).scale(ScaleKind::Standard);
        check(&pq, &opts, Some(0..at(&pq, 0.2)), "parquet");
    }
}

#[test]
fn sample_weights_and_files_without_a_target() {
    let dir = tempfile::tempdir().unwrap();
    let path = shipped("ionosphere.csv");
    let table = RawTable::read(&path).unwrap();
    let w = table.columns()[2].clone();
    let opts = CsvOptions::new().drop(&[&w]);
    let pre = Preprocessor::fit_file(&path, &opts, &FileOptions::new().sample_weight(&w)).unwrap();
    assert_eq!(pre, Preprocessor::fit(&table, &opts).unwrap());
    let file = DataFile::open_preprocessed(&path, &pre, &FileOptions::new().sample_weight(&w).rows(5..9)).unwrap();
    let want: Vec<f32> = (5..9).map(|r| table.number(r, 2).unwrap()).collect();
    assert_eq!(file.sample_weights().unwrap(), want);
    assert!(DataFile::open_preprocessed(&path, &pre, &FileOptions::new()).unwrap().sample_weights().is_none());
    // A file to predict: no target column.
    let text = std::fs::read_to_string(&path).unwrap();
    let no_target: String = text.lines().map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n").collect();
    let p = dir.path().join("x.csv");
    std::fs::write(&p, no_target).unwrap();
    let file = DataFile::open_preprocessed(&p, &pre, &FileOptions::new().without_target()).unwrap();
    let (x, _) = file.read_rows(0..file.rows()).unwrap();
    assert_eq!(bits(x.data()), bits(pre.transform_x(&RawTable::read(&p).unwrap()).unwrap().data()));
    assert!(file.targets().data().iter().all(|&v| v == 0.0));
    // Its placeholder targets never train or score: predict only.
    let mut model = wgfit::Sequential::new(&wgfit::Device::cpu(), vec![wgfit::Dense::new(1).input_shape(x.cols())]);
    model.compile("sgd", "mse", &[]).unwrap();
    assert_eq!(model.predict_file(&file).unwrap().rows(), file.rows());
    let zeros = wgfit::Matrix::new(x.rows(), 1, vec![0.0; x.rows()]).unwrap();
    let fits = [
        model.fit_file(&file, wgfit::Fit::new().verbose(0)).map(|_| ()),
        model.evaluate_file(&file).map(|_| ()),
        model.fit(&x, &zeros, wgfit::Fit::new().validation_file(&file).verbose(0)).map(|_| ()),
    ];
    for e in fits {
        let e = e.unwrap_err();
        assert!(matches!(e, wgfit::Error::InvalidValue { .. }), "{e:?}");
        assert!(e.to_string().contains("without its target column"), "{e}");
    }
    // Rows outside the file.
    let e = DataFile::open_preprocessed(&path, &pre, &FileOptions::new().rows(300..400)).unwrap_err();
    assert!(matches!(e, wgfit::Error::InvalidValue { .. }), "{e:?}");
    let e = Preprocessor::fit_file(&path, &opts, &FileOptions::new().rows(3..3)).unwrap_err();
    assert!(matches!(e, wgfit::Error::InvalidValue { .. }), "{e:?}");
}

/// A bad file or option: the in-memory path's error, the same text.
#[test]
fn faults_are_the_in_memory_errors() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(concrete_with_text(dir.path())).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let with_cell = |edits: &[(usize, usize, &str)]| {
        let mut l = lines.clone();
        for &(line, col, value) in edits {
            let mut cells: Vec<&str> = l[line].split(',').collect();
            cells[col] = value;
            l[line] = cells.join(",");
        }
        l.join("\n") + "\n"
    };
    let base = || CsvOptions::new().target("strength").categorical(&["grade"]).drop(&["compressive_strength"]);
    let cases: Vec<(&str, String, CsvOptions)> = vec![
        ("a text cell in a numeric column", with_cell(&[(40, 2, "abc")]), base()),
        ("an empty numeric cell", with_cell(&[(7, 0, "")]), base().scale(ScaleKind::Standard)),
        ("two bad cells: the first row's", with_cell(&[(30, 5, "x"), (20, 6, "y")]), base()),
        ("a bad cell, then a ragged row", { with_cell(&[(3, 0, "z")]) + "1,2\n" }, base()),
        ("an unknown target", text.clone(), base().target("price")),
        ("an unknown categorical column", text.clone(), base().categorical(&["colour"])),
        ("an unknown dropped column", text.clone(), base().drop(&["id"])),
        ("a dropped target", text.clone(), base().drop(&["strength"])),
        ("an empty class label", with_cell(&[(50, 10, " ")]), base()),
        ("one class", text.replace("medium", "low").replace("high", "low"), base()),
        ("a categorical target", text.clone(), base().categorical(&["strength"])),
        (
            "no features",
            text.clone(),
            CsvOptions::new().target("age").drop(&lines[0].split(',').filter(|c| *c != "age").collect::<Vec<_>>()),
        ),
    ];
    for (what, text, opts) in cases {
        let path = dir.path().join("bad.csv");
        std::fs::write(&path, &text).unwrap();
        let want = RawTable::read(&path)
            .and_then(|t| Preprocessor::fit(&t, &opts).and_then(|p| p.transform_xy(&t).map(|_| p)))
            .unwrap_err();
        let got = Preprocessor::fit_file(&path, &opts, &FileOptions::new())
            .and_then(|p| DataFile::open_preprocessed(&path, &p, &FileOptions::new()).map(|_| p))
            .unwrap_err();
        assert_eq!(got.to_string(), want.to_string(), "{what}");
        assert_eq!(std::mem::discriminant(&got), std::mem::discriminant(&want), "{what}");
    }
    // Validation rows: an unseen category, an unknown class, a bad cell (the first one's error).
    let path = dir.path().join("valid.csv");
    for (what, edits) in [
        ("an unseen category", vec![(1000, 9, "ancient")]),
        ("an unknown class", vec![(1010, 10, "extreme")]),
        ("a feature before a class", vec![(1020, 10, "extreme"), (1025, 1, "?")]),
    ] {
        std::fs::write(&path, with_cell(&edits)).unwrap();
        let table = RawTable::read(&path).unwrap();
        let (train, valid) = table.split_last(0.1).unwrap();
        let at = train.len();
        let pre = Preprocessor::fit(&train, &base()).unwrap();
        assert_eq!(Preprocessor::fit_file(&path, &base(), &FileOptions::new().rows(0..at)).unwrap(), pre, "{what}");
        let want = pre.transform_xy(&valid).unwrap_err();
        let got = DataFile::open_preprocessed(&path, &pre, &FileOptions::new().rows(at..table.len())).unwrap_err();
        assert_eq!(got.to_string(), want.to_string(), "{what}");
    }
}
