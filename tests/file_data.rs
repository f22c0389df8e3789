//! `DataFile`: a CSV or Parquet file trained on in pieces (its features spilled to disk, each
//! chunk fill reading its rows there) gives the same History, weights, evaluation and
//! predictions, bit for bit, as the same table fit in memory, on the GPU and the CPU path, with
//! the data about ten times the chunk; every bad value is an error at open, the same error the
//! in-memory loaders give; the spill file goes away with the `DataFile`; a spill file truncated
//! under it is a typed error, not a panic.

mod common;

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use wgfit::data::{CsvOptions, DataFile, FileOptions, Preprocessor, RawTable, ScaleKind, Table};
use wgfit::{Dense, Device, Dropout, Error, Fit, GpuOptions, Matrix, Member, Sequential, Sweep};

/// Feature columns of the generated files, and their rows.
const COLS: usize = 12;
const ROWS: usize = 3000;
/// The chunk budget: a chunk holds ROWS / 10 rows (x and y with a weight slot, 4 bytes each), so
/// the file is about ten times the chunk.
const CHUNK_BYTES: usize = ROWS / 10 * (COLS + 2) * 4;

fn gpu_capped() -> Device {
    common::gpu(); // sets XDG_RUNTIME_DIR, and fails with the install hint when there is no adapter
    Device::gpu_with(GpuOptions::from_env().max_data_bytes(CHUNK_BYTES as u64)).expect("a GPU adapter")
}

fn cpu_capped() -> Device {
    wgfit::testing::cpu_with_max_data_bytes(CHUNK_BYTES)
}

/// `rows` rows of COLS random features and a target `y` placed among them (column 6), written as
/// f32's shortest round-trip text so the file holds exactly those values.
fn csv_text(rows: usize, seed: u64, classes: Option<usize>) -> String {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut names: Vec<String> = (0..COLS).map(|c| format!("f{c}")).collect();
    names.insert(6, "y".into());
    let mut out = names.join(",") + "\n";
    for _ in 0..rows {
        let x: Vec<f32> = (0..COLS).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let y = match classes {
            Some(k) => ((x[0] + 1.0) * 0.5 * k as f32).floor().min(k as f32 - 1.0),
            None => (x[0] + 0.5 * x[3] - x[7]).tanh() + 0.1 * rng.random_range(-1.0f32..1.0),
        };
        let mut cells: Vec<String> = x.iter().map(|v| v.to_string()).collect();
        cells.insert(6, y.to_string());
        out += &(cells.join(",") + "\n");
    }
    out
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn model(device: &Device) -> Sequential {
    common::small_dropout_batchnorm_model(device, COLS)
}

fn fit() -> Fit<'static> {
    Fit::new().validation_split(0.2).batch_size(32).epochs(2).seed(5).verbose(0)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

fn history_bits(h: &wgfit::History) -> Vec<(String, Vec<u32>)> {
    let mut keys: Vec<_> = h.keys().map(|k| (k.to_string(), bits(h.get(k).unwrap()))).collect();
    keys.sort();
    keys
}

fn weight_bits(m: &mut Sequential) -> Vec<u32> {
    let (p, s) = m.get_weights().unwrap();
    bits(&[p, s].concat())
}

/// Fits the table in memory on `whole` (uploaded whole) and from the file on `capped` (streamed,
/// ten chunks and more), and holds History and weights bit for bit; then evaluate and predict on
/// the file against the same matrices on the same model.
fn file_fit_matches_memory(x: &Matrix, y: &Matrix, file: &DataFile, whole: &Device, capped: &Device, what: &str) {
    let mut in_memory = model(whole);
    let want = history_bits(&in_memory.fit(x, y, fit()).unwrap());
    assert_eq!(want.iter().find(|(k, _)| k == "val_loss").map(|(_, v)| v.len()), Some(2), "{what}");
    let mut from_file = model(capped);
    let before = wgfit::testing::gpu_submissions(capped);
    let got = history_bits(&from_file.fit_file(file, fit()).unwrap());
    assert_eq!(got, want, "{what}: History");
    assert_eq!(weight_bits(&mut from_file), weight_bits(&mut in_memory), "{what}: weights");
    if capped.is_gpu() {
        // 2400 training rows in fills of 288 (9 of them) and 600 validation rows in 3: per epoch.
        let submissions = wgfit::testing::gpu_submissions(capped) - before;
        assert!(submissions >= 2 * 12, "{what}: {submissions} submissions: the file did not stream");
    }
    assert!(
        from_file.device_bytes() < ROWS * COLS * 4 / 2,
        "{what}: {} device bytes for {} bytes of features",
        from_file.device_bytes(),
        ROWS * COLS * 4
    );
    // The same model on matrices (which stream on the capped device too: the same batches).
    let e_file = from_file.evaluate_file(file).unwrap();
    let e_memory = from_file.evaluate(x, y).unwrap();
    let as_bits = |e: Vec<(String, f32)>| e.into_iter().map(|(k, v)| (k, v.to_bits())).collect::<Vec<_>>();
    assert_eq!(as_bits(e_file), as_bits(e_memory), "{what}: evaluate");
    let p_file = from_file.predict_file(file).unwrap();
    assert_eq!((p_file.rows(), p_file.cols()), (ROWS, 1));
    assert_eq!(bits(p_file.data()), bits(from_file.predict(x).unwrap().data()), "{what}: predict");
}

#[test]
fn a_csv_file_trains_as_its_table_in_memory_bit_for_bit_on_both_devices() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "train.csv", &csv_text(ROWS, 1, None));
    let (x, y) = Table::read_csv(&path).unwrap().features_target(Some("y")).unwrap();
    let file = DataFile::open_in(&path, Some("y"), dir.path()).unwrap();
    assert_eq!((file.rows(), file.features().len(), file.target()), (ROWS, COLS, "y"));
    assert_eq!(file.features()[6], "f6");
    // The spilled rows are the table's rows.
    let (fx, fy) = file.read_rows(100..110).unwrap();
    assert_eq!(bits(fx.data()), bits(&x.data()[100 * COLS..110 * COLS]));
    assert_eq!(bits(fy.data()), bits(&y.data()[100..110]));
    file_fit_matches_memory(&x, &y, &file, &common::gpu(), &gpu_capped(), "GPU");
    file_fit_matches_memory(&x, &y, &file, &Device::cpu(), &cpu_capped(), "CPU");
}

#[cfg(feature = "parquet")]
fn write_parquet(path: &Path, text: &str) {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Float32Array, Float64Array, RecordBatch};
    let table = Table::parse_csv(text.as_bytes(), Path::new("generated")).unwrap();
    let values = table.values();
    let file = std::fs::File::create(path).unwrap();
    let column = |c: usize| (0..values.rows()).map(move |r| values.row(r).unwrap()[c]);
    let columns: Vec<(String, ArrayRef)> = table
        .columns()
        .iter()
        .enumerate()
        .map(|(c, name)| {
            // Some columns as f64 (read as the in-memory loader reads them: through their text).
            let array: ArrayRef = if c % 3 == 1 {
                Arc::new(Float64Array::from(column(c).map(f64::from).collect::<Vec<_>>()))
            } else {
                Arc::new(Float32Array::from(column(c).collect::<Vec<_>>()))
            };
            (name.clone(), array)
        })
        .collect();
    // Several record batches and row groups: the file is read in pieces.
    let props = parquet::file::properties::WriterProperties::builder().set_max_row_group_row_count(Some(700)).build();
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

#[cfg(feature = "parquet")]
#[test]
fn a_parquet_file_trains_as_its_table_in_memory_bit_for_bit_on_both_devices() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.parquet");
    write_parquet(&path, &csv_text(ROWS, 2, None));
    let (x, y) = RawTable::read(&path).unwrap().to_table().unwrap().features_target(Some("y")).unwrap();
    let file = DataFile::open(&path, Some("y")).unwrap();
    assert_eq!((file.rows(), file.features().len()), (ROWS, COLS));
    file_fit_matches_memory(&x, &y, &file, &common::gpu(), &gpu_capped(), "GPU, Parquet");
    file_fit_matches_memory(&x, &y, &file, &Device::cpu(), &cpu_capped(), "CPU, Parquet");
}

/// Validation from another file, class weights, a sparse softmax classifier with accuracy; and
/// sample weights split by validation_split: as the same data in memory, on both devices.
#[test]
fn validation_files_class_and_sample_weights_match_the_in_memory_fit() {
    let dir = tempfile::tempdir().unwrap();
    let (train_path, valid_path) = (
        write(dir.path(), "train.csv", &csv_text(1200, 3, Some(3))),
        write(dir.path(), "valid.csv", &csv_text(300, 4, Some(3))),
    );
    let (x, y) = Table::read_csv(&train_path).unwrap().features_target(Some("y")).unwrap();
    let (vx, vy) = Table::read_csv(&valid_path).unwrap().features_target(Some("y")).unwrap();
    let (train, valid) =
        (DataFile::open(&train_path, Some("y")).unwrap(), DataFile::open(&valid_path, Some("y")).unwrap());
    let classifier = |device: &Device| {
        let mut m = Sequential::new(
            device,
            vec![
                Dense::new(8).activation("relu").input_shape(COLS),
                Dropout::new(0.1),
                Dense::new(3).activation("softmax"),
            ],
        );
        m.compile("adam", "sparse_categorical_crossentropy", &["accuracy"]).unwrap();
        m
    };
    let settings = || Fit::new().class_weight([(0, 0.5), (2, 3.0)]).batch_size(50).epochs(2).seed(3).verbose(0);
    let weights: Vec<f32> = (0..1200).map(|i| 0.5 + (i % 7) as f32 / 4.0).collect();
    for (whole, capped) in [(common::gpu(), gpu_capped()), (Device::cpu(), cpu_capped())] {
        let mut m = classifier(&whole);
        let want = history_bits(&m.fit(&x, &y, settings().validation_data(&vx, &vy)).unwrap());
        assert!(want.iter().any(|(k, _)| k == "val_accuracy"));
        let mut f = classifier(&capped);
        assert_eq!(history_bits(&f.fit_file(&train, settings().validation_file(&valid)).unwrap()), want);
        assert_eq!(weight_bits(&mut f), weight_bits(&mut m));
        // A file's validation data for a fit on matrices.
        let mut mf = classifier(&capped);
        assert_eq!(history_bits(&mf.fit(&x, &y, settings().validation_file(&valid)).unwrap()), want);

        let weighted = || Fit::new().sample_weight(&weights).validation_split(0.25).batch_size(64).epochs(2).verbose(0);
        let want = history_bits(&model_for(&whole).fit(&x, &y, weighted()).unwrap());
        assert_eq!(history_bits(&model_for(&capped).fit_file(&train, weighted()).unwrap()), want);
    }
}

fn model_for(device: &Device) -> Sequential {
    let mut m = Sequential::new(device, vec![Dense::new(4).activation("relu").input_shape(COLS), Dense::new(1)]);
    m.compile("sgd", "mse", &[]).unwrap();
    m
}

/// Every bad file is an error at open, the very error the in-memory loader gives; nothing is
/// left in the spill directory.
#[test]
fn bad_files_fail_at_open_with_the_in_memory_loaders_errors() {
    let dir = tempfile::tempdir().unwrap();
    let spill = tempfile::tempdir().unwrap();
    let good = csv_text(20, 5, None);
    let lines: Vec<String> = good.lines().map(str::to_string).collect();
    // The lines with one cell replaced (`line` from 0: the header is 0).
    let with_cell = |line: usize, col: usize, value: &str| {
        let mut l = lines.clone();
        let mut cells: Vec<&str> = l[line].split(',').collect();
        cells[col] = value;
        l[line] = cells.join(",");
        l
    };
    let cases: Vec<(&str, String)> = vec![
        ("a text cell", with_cell(4, 2, "abc").join("\n")),
        ("an empty cell", with_cell(9, 11, "").join("\n")),
        ("infinity", with_cell(3, 0, "inf").join("\n")),
        ("a bad target", with_cell(3, 6, "-").join("\n")),
        ("a bad cell and, later, a ragged row (the ragged row is reported, as in memory)", {
            let mut l = with_cell(2, 0, "x");
            l[8] += ",1";
            l.join("\n")
        }),
        ("an empty file", String::new()),
        ("white space only", "  \n\n \n".into()),
        ("a header alone", lines[0].clone() + "\n"),
        ("a byte-order mark, CRLF lines and a NaN", format!("\u{feff}{}", with_cell(6, 1, "NaN").join("\r\n"))),
    ];
    for (what, text) in cases {
        let path = write(dir.path(), "bad.csv", &text);
        let want = Table::read_csv(&path).unwrap_err();
        let got = DataFile::open_in(&path, Some("y"), spill.path()).unwrap_err();
        assert!(matches!(got, Error::Format { .. }), "{what}: {got:?}");
        assert_eq!(got.to_string(), want.to_string(), "{what}");
        assert_eq!(std::fs::read_dir(spill.path()).unwrap().count(), 0, "{what}: a spill file was left");
    }
    // The message names the place: line, column and value.
    let path = write(dir.path(), "cell.csv", &(with_cell(5, 3, "12;5").join("\n") + "\n"));
    let msg = DataFile::open(&path, Some("y")).unwrap_err().to_string();
    for part in ["line 6", "column 4", "(\"f3\")", "\"12;5\" is not a number"] {
        assert!(msg.contains(part), "{msg:?} lacks {part:?}");
    }
    // A target column the file does not have: the in-memory error (after the values are read).
    let path = write(dir.path(), "good.csv", &good);
    let want = Table::read_csv(&path).unwrap().features_target(Some("price")).unwrap_err();
    let got = DataFile::open_in(&path, Some("price"), spill.path()).unwrap_err();
    assert!(matches!(got, Error::Model(_)), "{got:?}");
    assert_eq!(got.to_string(), want.to_string());
    assert!(got.to_string().contains("\"price\""));
    // No file at all.
    let got = DataFile::open(dir.path().join("missing.csv"), None).unwrap_err();
    assert!(matches!(got, Error::Io { .. }), "{got:?}");
    assert_eq!(std::fs::read_dir(spill.path()).unwrap().count(), 0);
}

#[cfg(feature = "parquet")]
#[test]
fn bad_parquet_files_fail_at_open_with_the_in_memory_loaders_errors() {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Float32Array, RecordBatch, StringArray};
    let dir = tempfile::tempdir().unwrap();
    let write_batch = |name: &str, columns: Vec<(&str, ArrayRef)>| {
        let path = dir.path().join(name);
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let mut w =
            parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        path
    };
    let nulls = write_batch(
        "nulls.parquet",
        vec![
            ("a", Arc::new(Float32Array::from(vec![Some(1.0), None, Some(2.0)])) as ArrayRef),
            ("y", Arc::new(Float32Array::from(vec![1.0, 2.0, 3.0]))),
        ],
    );
    let text = write_batch(
        "text.parquet",
        vec![
            ("a", Arc::new(StringArray::from(vec!["1", "2", "x"])) as ArrayRef),
            ("y", Arc::new(Float32Array::from(vec![1.0, 2.0, f32::NAN]))),
        ],
    );
    let bytes = std::fs::read(&text).unwrap();
    let truncated = write(dir.path(), "cut.parquet", "");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    for (what, path) in [("a null", nulls), ("a text cell", text), ("a truncated file", truncated)] {
        let want = RawTable::read(&path).and_then(|t| t.to_table()).unwrap_err();
        let got = DataFile::open(&path, None).unwrap_err();
        assert!(matches!(got, Error::Format { .. }), "{what}: {got:?}");
        assert_eq!(got.to_string(), want.to_string(), "{what}");
    }
}

/// The spill file lives as long as the `DataFile`; the source may go once it is open; a spill
/// file truncated under the dataset is an I/O error naming it, from fit, evaluate and predict;
/// one deleted under it (unix) is still read through the open handle.
#[test]
fn the_spill_file_goes_with_the_data_file_and_a_truncated_one_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let spill_dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "train.csv", &csv_text(400, 6, None));
    let file = DataFile::open_in(&path, Some("y"), spill_dir.path()).unwrap();
    let spill = file.spill_path().to_path_buf();
    assert_eq!(spill.parent(), Some(spill_dir.path()));
    assert_eq!(std::fs::metadata(&spill).unwrap().len(), (400 * COLS * 4) as u64);
    // The source can go: the spill file is a snapshot.
    std::fs::remove_file(&path).unwrap();
    let h = model(&cpu_capped()).fit_file(&file, Fit::new().batch_size(32).epochs(1).verbose(0)).unwrap();
    assert!(h.get("loss").unwrap()[0].is_finite());
    // A small file streams through a chunk of its own size, not the default budget's (256 MiB),
    // in one fill: evaluate and predict batch it as the whole matrices, bit for bit.
    let (x, y) = file.read_rows(0..400).unwrap();
    for device in [common::gpu(), Device::cpu()] {
        let mut m = model(&device);
        m.fit_file(&file, Fit::new().batch_size(32).epochs(1).verbose(0)).unwrap();
        assert!(m.device_bytes() < 1 << 20, "{} device bytes for a file of 400 rows", m.device_bytes());
        let as_bits = |e: Vec<(String, f32)>| e.into_iter().map(|(k, v)| (k, v.to_bits())).collect::<Vec<_>>();
        assert_eq!(as_bits(m.evaluate_file(&file).unwrap()), as_bits(m.evaluate(&x, &y).unwrap()));
        assert_eq!(bits(m.predict_file(&file).unwrap().data()), bits(m.predict(&x).unwrap().data()));
    }
    drop(file);
    assert!(!spill.exists(), "the spill file outlived its DataFile");
    assert_eq!(std::fs::read_dir(spill_dir.path()).unwrap().count(), 0);

    let path = write(dir.path(), "train.csv", &csv_text(400, 6, None));
    let file = DataFile::open_in(&path, Some("y"), spill_dir.path()).unwrap();
    std::fs::OpenOptions::new().write(true).open(file.spill_path()).unwrap().set_len(100 * COLS as u64 * 4).unwrap();
    let is_spill_io = |e: Error| match e {
        Error::Io { path, .. } => assert_eq!(path, file.spill_path()),
        other => panic!("not an I/O error naming the spill file: {other:?}"),
    };
    for device in [gpu_capped(), Device::cpu()] {
        let mut m = model(&device);
        is_spill_io(m.fit_file(&file, Fit::new().batch_size(32).verbose(0)).unwrap_err());
        is_spill_io(m.evaluate_file(&file).unwrap_err());
        is_spill_io(m.predict_file(&file).unwrap_err());
    }
    is_spill_io(file.read_rows(300..400).unwrap_err());
    assert_eq!(file.read_rows(0..100).unwrap().0.rows(), 100);
    drop(file);

    // On unix a spill file deleted under the dataset is still read through the handle held open
    // since open: training goes on, with the same rows.
    #[cfg(unix)]
    {
        let file = DataFile::open_in(&path, Some("y"), spill_dir.path()).unwrap();
        let before = file.read_rows(0..400).unwrap();
        std::fs::remove_file(file.spill_path()).unwrap();
        assert_eq!(file.read_rows(0..400).unwrap(), before);
        let fit = || Fit::new().batch_size(32).epochs(1).verbose(0);
        let (x, y) = Table::read_csv(&path).unwrap().features_target(Some("y")).unwrap();
        let want = history_bits(&model(&Device::cpu()).fit(&x, &y, fit()).unwrap());
        assert_eq!(history_bits(&model(&cpu_capped()).fit_file(&file, fit()).unwrap()), want);
    }
}

/// What a file-backed fit refuses, with typed errors.
#[test]
fn misuses_of_a_data_file_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "train.csv", &csv_text(100, 7, None));
    let file = DataFile::open(&path, None).unwrap();
    // The last column is the target by default.
    assert_eq!(file.target(), "f11");
    let device = Device::cpu();
    // A model of another input width.
    let mut m = Sequential::new(&device, vec![Dense::new(1).input_shape(COLS + 1)]);
    m.compile("sgd", "mse", &[]).unwrap();
    assert!(matches!(m.fit_file(&file, Fit::new().verbose(0)).unwrap_err(), Error::Shape { .. }));
    // Not compiled.
    let mut m = Sequential::new(&device, vec![Dense::new(1)]);
    assert!(matches!(m.fit_file(&file, Fit::new().verbose(0)).unwrap_err(), Error::State(_)));
    // Validation data twice.
    let (vx, vy) = file.read_rows(0..10).unwrap();
    let mut m = model_for(&device);
    let e = m.fit_file(&file, Fit::new().validation_data(&vx, &vy).validation_file(&file).verbose(0)).unwrap_err();
    assert!(matches!(e, Error::InvalidValue { .. }), "{e:?}");
    // Sample weights of another length; class weights with sample weights.
    let w = vec![1.0f32; 99];
    assert!(matches!(m.fit_file(&file, Fit::new().sample_weight(&w).verbose(0)).unwrap_err(), Error::Shape { .. }));
    let w = vec![1.0f32; 100];
    let both = Fit::new().sample_weight(&w).class_weight([(0, 1.0)]).verbose(0);
    assert!(matches!(m.fit_file(&file, both).unwrap_err(), Error::InvalidValue { .. }));
    // Cross-validation makes its own folds.
    let e =
        wgfit::cross_validate_file(2, &file, Fit::new().validation_split(0.5), "val_loss", |_| Ok(model_for(&device)))
            .unwrap_err();
    assert!(matches!(e, Error::State(_)), "{e:?}");
    let e = wgfit::cross_validate_file(101, &file, Fit::new(), "val_loss", |_| Ok(model_for(&device))).unwrap_err();
    assert!(matches!(e, Error::InvalidValue { .. }), "{e:?}");
    assert!(format!("{file:?}").contains("rows: 100"));
}

/// Three members in two plans (one with its own training rows) fit from a file that streams
/// through chunks of about a tenth of it: every member's History and weights as the same sweep
/// on the table in memory, bit for bit, on both devices; their ensemble over the file as over the
/// matrix; and k-fold cross-validation on the file as on the matrices.
#[test]
fn a_sweep_and_cross_validation_on_a_file_match_the_in_memory_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "train.csv", &csv_text(1500, 8, None));
    let (x, y) = Table::read_csv(&path).unwrap().features_target(Some("y")).unwrap();
    let file = DataFile::open_in(&path, Some("y"), dir.path()).unwrap();
    let sweep = |device: &Device| {
        Sweep::from_fn(3, |i| {
            let member = if i == 2 { Member::new(model(device)) } else { Member::new(model_for(device)) };
            let member = member.seed(i as u64 + 1).label(format!("m{i}"));
            Ok(if i == 1 { member.train_rows((0..600).chain(300..900).collect()) } else { member })
        })
        .unwrap()
    };
    let settings = || Fit::new().validation_split(0.2).batch_size(32).epochs(2).verbose(0);
    for (whole, capped) in [(common::gpu(), gpu_capped()), (Device::cpu(), cpu_capped())] {
        let what = if whole.is_gpu() { "GPU" } else { "CPU" };
        let mut in_memory = sweep(&whole);
        let want = in_memory.fit(&x, &y, settings()).unwrap();
        assert_eq!(want.plans, 2, "{what}");
        let mut from_file = sweep(&capped);
        let before = wgfit::testing::gpu_submissions(&capped);
        let got = from_file.fit_file(&file, settings()).unwrap();
        if capped.is_gpu() {
            let submissions = wgfit::testing::gpu_submissions(&capped) - before;
            assert!(submissions >= 2 * 10, "{what}: {submissions} submissions: the file did not stream");
        }
        assert!(got.device_bytes < 1500 * COLS * 4, "{what}: {} device bytes", got.device_bytes);
        for i in 0..3 {
            let (g, w) = (&got.members[i], &want.members[i]);
            assert_eq!(history_bits(&g.history), history_bits(&w.history), "{what}: member {i} History");
            assert_eq!(g.history.get("val_loss").map(<[f32]>::len), Some(2), "{what}: member {i}");
            let (a, b) = (from_file.model(i).unwrap(), in_memory.model(i).unwrap());
            assert_eq!(weight_bits(a), weight_bits(b), "{what}: member {i} weights");
        }
        // The ensemble of two plans' members over the file, streamed: the one over the matrix.
        let chosen = [0, 2, 1, 2];
        let mean = from_file.predict_mean_file(&chosen, &file).unwrap();
        assert_eq!((mean.rows(), mean.cols()), (1500, 1));
        assert_eq!(bits(mean.data()), bits(from_file.predict_mean(&chosen, &x).unwrap().data()), "{what}: ensemble");
        // A validation file for a sweep (the same file: validation rows are its rows).
        let on_file =
            sweep(&capped).fit_file(&file, Fit::new().batch_size(32).epochs(2).verbose(0).validation_file(&file));
        let on_memory =
            sweep(&whole).fit(&x, &y, Fit::new().batch_size(32).epochs(2).verbose(0).validation_data(&x, &y));
        let (on_file, on_memory) = (on_file.unwrap(), on_memory.unwrap());
        for (g, w) in on_file.members.iter().zip(&on_memory.members) {
            assert_eq!(history_bits(&g.history), history_bits(&w.history), "{what}: validation file");
        }
        let opts = || Fit::new().batch_size(64).epochs(2).verbose(0);
        let want = wgfit::cross_validate(3, &x, &y, opts(), "val_loss", |_| Ok(model_for(&whole))).unwrap();
        let got = wgfit::cross_validate_file(3, &file, opts(), "val_loss", |_| Ok(model_for(&capped))).unwrap();
        assert_eq!(bits(&got.best), bits(&want.best), "{what}: folds' best val_loss");
        assert_eq!(got.mean.to_bits(), want.mean.to_bits());
        assert!(got.best.iter().all(|v| v.is_finite()));
    }
}

/// A file opened with a weight column weighs its rows wherever it is used (Keras's dataset of
/// (x, y, sample_weight)): training (split with validation_split), validation, evaluation,
/// sweeps and folds, each as the same weights given in memory; weights given beside them are an
/// error.
#[test]
fn a_files_own_sample_weights_are_used_wherever_the_file_is() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for (i, line) in csv_text(600, 9, None).lines().enumerate() {
        let w = if i == 0 { "w".to_string() } else { (0.25 + ((i * 7) % 11) as f32 / 4.0).to_string() };
        text += &format!("{line},{w}\n");
    }
    let path = write(dir.path(), "weighted.csv", &text);
    let opts = CsvOptions::new().target("y").drop(&["w"]).scale(ScaleKind::None);
    let table = RawTable::read(&path).unwrap();
    let pre = Preprocessor::fit(&table, &opts).unwrap();
    let (x, y) = pre.transform_xy(&table).unwrap();
    let w: Vec<f32> = (0..600).map(|r| table.number(r, COLS + 1).unwrap()).collect();
    let file = DataFile::open_preprocessed(&path, &pre, &FileOptions::new().sample_weight("w")).unwrap();
    assert_eq!(file.sample_weights().unwrap(), w);
    let device = cpu_capped();
    let settings = || Fit::new().batch_size(40).epochs(2).verbose(0);

    let want = model_for(&device).fit(&x, &y, settings().sample_weight(&w).validation_split(0.25)).unwrap();
    let got = model_for(&device).fit_file(&file, settings().validation_split(0.25)).unwrap();
    assert_eq!(history_bits(&got), history_bits(&want), "training and validation_split");
    let want = model_for(&device).fit(&x, &y, settings().validation_data_weighted(&x, &y, &w)).unwrap();
    let got = model_for(&device).fit(&x, &y, settings().validation_file(&file)).unwrap();
    assert_eq!(history_bits(&got), history_bits(&want), "a validation file");
    let mut m = model_for(&device);
    let as_bits = |e: Vec<(String, f32)>| e.into_iter().map(|(k, v)| (k, v.to_bits())).collect::<Vec<_>>();
    assert_eq!(as_bits(m.evaluate_file(&file).unwrap()), as_bits(m.evaluate_weighted(&x, &y, &w).unwrap()));
    assert_ne!(as_bits(m.evaluate_file(&file).unwrap()), as_bits(m.evaluate(&x, &y).unwrap()), "weights unused");

    let one = || Sweep::from_fn(1, |_| Ok(Member::new(model_for(&device)))).unwrap();
    let want = one().fit(&x, &y, settings().sample_weight(&w).validation_split(0.25)).unwrap();
    let got = one().fit_file(&file, settings().validation_split(0.25)).unwrap();
    assert_eq!(history_bits(&got.members[0].history), history_bits(&want.members[0].history), "a sweep");
    let want = wgfit::cross_validate(2, &x, &y, settings().sample_weight(&w), "val_loss", |_| Ok(model_for(&device)));
    let got = wgfit::cross_validate_file(2, &file, settings(), "val_loss", |_| Ok(model_for(&device)));
    assert_eq!(bits(&got.unwrap().best), bits(&want.unwrap().best), "folds");

    // Weights given beside the file's own: an error naming the file, for each use.
    let e = model_for(&device).fit_file(&file, settings().sample_weight(&w)).unwrap_err();
    assert!(e.to_string().contains("carries its own sample weights"), "{e}");
    let h = model_for(&device).fit(&x, &y, Fit::new().validation_file(&file).sample_weight(&w).verbose(0)).unwrap();
    assert_eq!(h.epochs(), 1, "training weights beside a weighted validation file are the training's");
    let e = wgfit::cross_validate_file(2, &file, settings().sample_weight(&w), "val_loss", |_| Ok(model_for(&device)))
        .unwrap_err();
    assert!(e.to_string().contains("carries its own sample weights"), "{e}");
}
