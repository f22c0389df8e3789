//! Library-level tests of CSV loading, preprocessing, validation_split, and model files.

use std::path::Path;

use wgfit::data::{CsvOptions, Feature, Preprocessor, RawTable, ScaleKind, Scaler, Table};
use wgfit::{io, BatchNormalization, Dense, Device, Dropout, Error, Fit, Matrix, Sequential};

fn gpu() -> Device {
    std::env::set_var("XDG_RUNTIME_DIR", std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| "/tmp".into()));
    Device::gpu().unwrap_or_else(|e| panic!("GPU tests need a wgpu adapter ({e}); install mesa-vulkan-drivers"))
}

fn parse(text: &str) -> wgfit::Result<RawTable> {
    RawTable::parse_csv(text.as_bytes(), Path::new("t.csv"))
}

fn format_detail(e: Error) -> String {
    match e {
        Error::Format { path, detail } => {
            assert_eq!(path, Path::new("t.csv"));
            detail
        }
        other => panic!("expected Error::Format, got {other:?}"),
    }
}

#[test]
fn csv_errors_are_typed_and_located() {
    let cases: &[(&str, &str)] = &[
        ("", "empty"),
        ("  \n", "empty"),
        ("a,b,y\n", "no data rows"),
        ("a,b,y\n1,2,3\n4,5\n", "line 3: 2 fields, but the header has 3"),
        ("a,a,y\n1,2,3\n", "duplicate column name \"a\""),
        ("a,,y\n1,2,3\n", "empty name"),
    ];
    for (text, want) in cases {
        let d = format_detail(parse(text).unwrap_err());
        assert!(d.contains(want), "{text:?}: {d}");
    }
    let t = parse("a,b,y\n1,x,3\n").unwrap();
    let d = format_detail(t.to_table().unwrap_err());
    assert!(d.contains("line 2, column 2 (\"b\"): \"x\" is not a number"), "{d}");
    let t = parse("a,b,y\n1,inf,3\n").unwrap();
    assert!(format_detail(t.to_table().unwrap_err()).contains("not a finite number"));
    let d =
        format_detail(Preprocessor::fit(&parse("a,y\n1,2\n").unwrap(), &CsvOptions::new().target("q")).unwrap_err());
    assert!(d.contains("target column \"q\" not found; the columns are: a, y"), "{d}");
    match RawTable::read_csv("/definitely/not/here.csv") {
        Err(Error::Io { path, .. }) => assert_eq!(path, Path::new("/definitely/not/here.csv")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_huge_bad_field_is_cut_in_the_error() {
    let huge = "x".repeat(5 * 1024 * 1024);
    let t = parse(&format!("a,b,y\n1,2,3\n4,{huge},6\n")).unwrap();
    let d = format_detail(t.to_table().unwrap_err());
    assert!(d.len() < 1024, "{} bytes: {}", d.len(), &d[..d.len().min(2000)]);
    assert!(d.contains("line 3, column 2 (\"b\")"), "{d}");
    assert!(d.contains(&format!("\"{}…\" ({} bytes)", "x".repeat(40), huge.len())), "{d}");
    // the whole message, with the file name, stays short too.
    let e = Table::parse_csv(format!("a,b,y\n4,{huge},6\n").as_bytes(), Path::new("t.csv")).unwrap_err();
    assert!(e.to_string().len() < 1024 && e.to_string().contains("line 2, column 2"), "{e}");
    // a huge header name or unseen category is cut the same way.
    let t = parse(&format!("a,{huge},y\n1,z,3\n")).unwrap();
    let d = format_detail(t.to_table().unwrap_err());
    assert!(d.len() < 1024 && d.contains("line 2, column 2"), "{}", &d[..d.len().min(2000)]);
    let train = parse("c,y\na,1\n").unwrap();
    let pre = Preprocessor::fit(&train, &CsvOptions::new().categorical(&["c"])).unwrap();
    let d = format_detail(pre.transform_x(&parse(&format!("c\n{huge}\n")).unwrap()).unwrap_err());
    assert!(d.len() < 1024 && d.contains("line 2, column 1"), "{}", &d[..d.len().min(2000)]);
}

#[test]
fn bom_crlf_and_quoted_cells_load() {
    let t = parse("\u{feff}a,\"b\",y\r\n1, 2 ,3\r\n4,5,6\r\n").unwrap();
    assert_eq!(t.columns(), ["a", "b", "y"]);
    assert_eq!(t.lines(), [2, 3]);
    let n = t.to_table().unwrap();
    assert_eq!(n.values().data(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
}

#[test]
fn one_hot_and_unseen_category() {
    let train = parse("x,c,y\n1,b,0\n2,a,1\n3,b,0\n").unwrap();
    let pre = Preprocessor::fit(&train, &CsvOptions::new().categorical(&["c"]).scale(ScaleKind::None)).unwrap();
    assert_eq!(pre.features()[1], Feature::OneHot { column: "c".into(), categories: vec!["a".into(), "b".into()] });
    assert_eq!(pre.input_names(), ["x", "c=a", "c=b"]);
    let (x, y) = pre.transform_xy(&train).unwrap();
    assert_eq!(x.data(), &[1.0, 0.0, 1.0, 2.0, 1.0, 0.0, 3.0, 0.0, 1.0]);
    assert_eq!(y.data(), &[0.0, 1.0, 0.0]);
    // columns are found by name, so another column order works; the target may be absent.
    let other = parse("c,x\na,7\n").unwrap();
    assert_eq!(pre.transform_x(&other).unwrap().data(), &[7.0, 1.0, 0.0]);
    let d = format_detail(pre.transform_x(&parse("x,c\n1,z\n").unwrap()).unwrap_err());
    assert!(d.contains("line 2, column 2 (\"c\"): category \"z\" was not seen") && d.contains("a, b"), "{d}");
}

#[test]
fn scalers_fit_on_training_rows_only() {
    let all = parse("a,y\n0,0\n2,0\n4,0\n6,0\n100,0\n").unwrap();
    let (train, valid) = all.split_last(0.2).unwrap();
    assert_eq!((train.len(), valid.len()), (4, 1));
    let mm = Preprocessor::fit(&train, &CsvOptions::new()).unwrap();
    assert_eq!(mm.transform_x(&train).unwrap().data(), &[0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0]);
    assert_eq!(mm.transform_x(&valid).unwrap().data(), &[100.0 / 6.0]);
    let st = Preprocessor::fit(&train, &CsvOptions::new().scale(ScaleKind::Standard)).unwrap();
    let Scaler::Standard { mean, std } = st.scaler() else { panic!("{:?}", st.scaler()) };
    assert_eq!(mean, &[3.0]);
    assert!((std[0] - 5.0f32.sqrt()).abs() < 1e-6);
    let z = st.transform_x(&train).unwrap();
    let m: f32 = z.data().iter().sum::<f32>() / 4.0;
    assert!(m.abs() < 1e-6);
    // constant columns scale to 0, not NaN.
    let c = parse("a,y\n5,1\n5,2\n").unwrap();
    for kind in [ScaleKind::MinMax, ScaleKind::Standard] {
        let p = Preprocessor::fit(&c, &CsvOptions::new().scale(kind)).unwrap();
        assert_eq!(p.transform_x(&c).unwrap().data(), &[0.0, 0.0]);
    }
    // the scaler survives serde.
    let back: Preprocessor = serde_json::from_str(&serde_json::to_string(&st).unwrap()).unwrap();
    assert_eq!(back, st);
}

#[test]
fn splits() {
    let t = parse(&(0..10).fold(String::from("a,y\n"), |s, i| s + &format!("{i},{i}\n"))).unwrap();
    let (a, b) = t.split_last(0.3).unwrap();
    assert_eq!(a.to_table().unwrap().values().rows(), 7);
    assert_eq!(b.rows()[0][0], "7");
    let (r1, v1) = t.split_random(0.3, 42).unwrap();
    let (r2, v2) = t.split_random(0.3, 42).unwrap();
    assert_eq!((r1.rows(), v1.rows()), (r2.rows(), v2.rows()));
    assert_eq!((r1.len(), v1.len()), (7, 3));
    let (_, v3) = t.split_random(0.3, 43).unwrap();
    assert_ne!(v1.rows(), v3.rows());
    for bad in [0.0, 1.0, -0.5, f32::NAN] {
        assert!(matches!(t.split_last(bad), Err(Error::InvalidValue { .. })), "{bad}");
    }
    let one = parse("a,y\n1,1\n").unwrap();
    assert!(one.split_last(0.5).is_err());
}

#[test]
fn shipped_datasets_still_load() {
    let (xt, yt, xv, yv) = wgfit::data::shipped::concrete().unwrap();
    assert_eq!((xt.rows(), xt.cols(), yt.rows(), xv.rows(), yv.rows()), (721, 8, 721, 309, 309));
    let (xt, _, xv, _) = wgfit::data::shipped::ionosphere().unwrap();
    assert_eq!((xt.rows(), xt.cols(), xv.rows()), (246, 33, 105));
    let t = Table::read_csv(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/concrete.csv")).unwrap();
    assert_eq!(t.values().rows(), 1030);
}

#[test]
fn validation_split_is_keras_last_fraction() {
    let (x, y, _, _) = wgfit::data::shipped::concrete().unwrap();
    let make = || {
        let mut m =
            Sequential::new(&Device::cpu(), vec![Dense::new(8).activation("relu").input_shape(8), Dense::new(1)]);
        m.compile("adam", "mae", &["mae"]).unwrap();
        m
    };
    let h1 = make().fit(&x, &y, Fit::new().epochs(3).validation_split(0.25).verbose(0)).unwrap();
    let at = (721.0f64 * 0.75).ceil() as usize;
    let head: Vec<usize> = (0..at).collect();
    let tail: Vec<usize> = (at..721).collect();
    let (xt, yt) = (x.select_rows(&head).unwrap(), y.select_rows(&head).unwrap());
    let (xv, yv) = (x.select_rows(&tail).unwrap(), y.select_rows(&tail).unwrap());
    let h2 = make().fit(&xt, &yt, Fit::new().epochs(3).validation_data(&xv, &yv).verbose(0)).unwrap();
    assert_eq!(h1.get("val_loss"), h2.get("val_loss"));
    assert_eq!(h1.get("loss"), h2.get("loss"));
    assert!(make().fit(&x, &y, Fit::new().validation_split(1.0).verbose(0)).is_err());
}

fn trained(device: &Device) -> (Sequential, Matrix) {
    let (x, y, xv, yv) = wgfit::data::shipped::concrete().unwrap();
    let mut m = Sequential::new(
        device,
        vec![
            Dense::new(32).activation("relu").input_shape(8),
            BatchNormalization::new(),
            Dropout::new(0.1),
            Dense::new(16).activation("relu"),
            Dense::new(1),
        ],
    )
    .seed(3);
    m.compile("adam", "mae", &["mae", "mse"]).unwrap();
    m.fit(&x, &y, Fit::new().epochs(3).batch_size(64).validation_data(&xv, &yv).verbose(0)).unwrap();
    (m, xv)
}

fn bits(m: &Matrix) -> Vec<u32> {
    m.data().iter().map(|v| v.to_bits()).collect()
}

fn round_trip_exact(device: &Device) {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, xv) = trained(device);
    let before = m.predict(&xv).unwrap();
    let (p, s) = m.get_weights().unwrap();
    let path = dir.path().join("model.json");
    m.save(&path).unwrap();
    let mut loaded = Sequential::load(&path, device).unwrap();
    assert_eq!(bits(&loaded.predict(&xv).unwrap()), bits(&before), "predictions after load, bit for bit");
    let (p2, s2) = loaded.get_weights().unwrap();
    assert_eq!(p.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), p2.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    assert_eq!(s.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), s2.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    assert!(s.iter().any(|v| *v != 0.0 && *v != 1.0), "BN moving statistics were trained and saved");
    assert_eq!(loaded.summary(), m.summary());
    // the loaded model keeps training (compile settings restored: two metrics).
    let (x, y, _, _) = wgfit::data::shipped::concrete().unwrap();
    let h = loaded.fit(&x, &y, Fit::new().epochs(1).verbose(0)).unwrap();
    assert!(h.get("mse").is_some() && h.get("mae").is_some());
    // weights-only: into a fresh model of the same architecture.
    let wpath = dir.path().join("weights.json");
    m.save_weights(&wpath).unwrap();
    let (mut fresh, _) = {
        let mut f = Sequential::new(
            device,
            vec![
                Dense::new(32).activation("relu").input_shape(8),
                BatchNormalization::new(),
                Dropout::new(0.1),
                Dense::new(16).activation("relu"),
                Dense::new(1),
            ],
        );
        f.compile("sgd", "mse", &[]).unwrap();
        (f, ())
    };
    assert_ne!(bits(&fresh.predict(&xv).unwrap()), bits(&before));
    fresh.load_weights(&wpath).unwrap();
    assert_eq!(bits(&fresh.predict(&xv).unwrap()), bits(&before));
    // a weights file is not a model file and the reverse; a different architecture is refused.
    assert!(matches!(Sequential::load(&wpath, device), Err(Error::Format { .. })));
    assert!(matches!(fresh.load_weights(&path), Err(Error::Format { .. })));
    let mut other = Sequential::new(device, vec![Dense::new(4).input_shape(8), Dense::new(1)]);
    other.compile("adam", "mae", &[]).unwrap();
    match other.load_weights(&wpath) {
        Err(Error::Format { detail, .. }) => assert!(detail.contains("layers") || detail.contains("layer"), "{detail}"),
        r => panic!("{:?}", r.err()),
    }
}

#[test]
fn save_load_round_trip_is_bit_exact_cpu() {
    round_trip_exact(&Device::cpu());
}

#[test]
fn save_load_round_trip_is_bit_exact_gpu() {
    round_trip_exact(&gpu());
}

#[test]
fn preprocessor_is_saved_with_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let table = RawTable::read_csv(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/concrete.csv")).unwrap();
    let (train, valid) = table.split_last(0.3).unwrap();
    let pre = Preprocessor::fit(&train, &CsvOptions::new().scale(ScaleKind::Standard)).unwrap();
    let (x, y) = pre.transform_xy(&train).unwrap();
    let mut m = Sequential::new(&Device::cpu(), vec![Dense::new(8).activation("relu"), Dense::new(1)]);
    m.compile("adam", "mae", &[]).unwrap();
    m.fit(&x, &y, Fit::new().epochs(1).verbose(0)).unwrap();
    let path = dir.path().join("m.json");
    m.save_with_preprocessor(&path, &pre).unwrap();
    let loaded = io::load_model(&path, &Device::cpu()).unwrap();
    let pre2 = loaded.preprocessor.expect("saved");
    assert_eq!(pre2, pre);
    let mut lm = loaded.model;
    let a = bits(&lm.predict(&pre2.transform_x(&valid).unwrap()).unwrap());
    let b = bits(&m.predict(&pre.transform_x(&valid).unwrap()).unwrap());
    assert_eq!(a, b);
}

#[test]
fn saving_is_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, _) = trained(&Device::cpu());
    let path = dir.path().join("m.json");
    m.save(&path).unwrap();
    let before = std::fs::read(&path).unwrap();
    // a save that dies half way leaves the previous file as it was and no temporary file behind.
    let err = io::write_atomic_failing_after(&path, b"{\"format\": \"wgfit-model\", \"vers", 10).unwrap_err();
    assert!(matches!(err, Error::Io { .. }));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, [std::ffi::OsString::from("m.json")]);
    Sequential::load(&path, &Device::cpu()).unwrap();
    // saving an unbuilt model is a state error, not a panic.
    let mut unbuilt = Sequential::new(&Device::cpu(), vec![Dense::new(1)]);
    assert!(matches!(unbuilt.save(dir.path().join("u.json")), Err(Error::State(_))));
    // saving into a missing directory is an Io error naming it.
    assert!(matches!(m.save(dir.path().join("no/such/dir/m.json")), Err(Error::Io { .. })));
}

#[test]
fn model_file_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, _) = trained(&Device::cpu());
    let path = dir.path().join("m.json");
    m.save(&path).unwrap();
    let good = std::fs::read_to_string(&path).unwrap();
    let check = |name: &str, text: &str, want: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        match Sequential::load(&p, &Device::cpu()) {
            Err(Error::Format { path, detail }) => {
                assert_eq!(path, p);
                assert!(detail.contains(want), "{name}: {detail}");
            }
            Err(e) => panic!("{name}: expected Format, got {e:?}"),
            Ok(_) => panic!("{name}: loaded"),
        }
    };
    for cut in [1, good.len() / 3, good.len() - 1] {
        check("trunc.json", &good[..cut], "truncated");
    }
    check("empty.json", "", "truncated");
    check("garbage.json", "\u{1}\u{2}binary", "corrupt or not JSON");
    check("array.json", "[1, 2, 3]", "not a JSON object");
    check("foreign.json", "{\"hello\": 1}", "no \"format\"");
    check("v2.json", &good.replacen("\"version\":1", "\"version\":2", 1), "newer");
    check("v0.json", &good.replacen("\"version\":1", "\"version\":0", 1), "unsupported format version 0");
    check("vstr.json", &good.replacen("\"version\":1", "\"version\":\"1\"", 1), "version");
    check("shape.json", &good.replacen("\"shape\":[8,32]", "\"shape\":[8,31]", 1), "shape [8, 31]");
    check("count.json", &good.replacen("\"values\":[", "\"values\":[0.5,", 1), "values, expected");
    check("units.json", &good.replacen("\"units\":32", "\"units\":0", 1), "");
    check("nolayers.json", &good.replacen("\"layers\":[", "\"layers_\":[", 1), "layers");
}

#[test]
fn safetensors_weights_round_trip_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, xv) = trained(&Device::cpu());
    let before = bits(&m.predict(&xv).unwrap());
    let path = dir.path().join("w.safetensors");
    m.save_weights(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
    assert!(header.contains("\"layers.0.kernel\"") && header.contains("\"layers.1.moving_variance\""), "{header}");
    let make = || {
        let mut f = Sequential::new(
            &Device::cpu(),
            vec![
                Dense::new(32).activation("relu").input_shape(8),
                BatchNormalization::new(),
                Dropout::new(0.1),
                Dense::new(16).activation("relu"),
                Dense::new(1),
            ],
        );
        f.compile("adam", "mae", &[]).unwrap();
        f
    };
    let mut fresh = make();
    fresh.load_weights(&path).unwrap();
    assert_eq!(bits(&fresh.predict(&xv).unwrap()), before);
    let trunc = dir.path().join("t.safetensors");
    std::fs::write(&trunc, &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(make().load_weights(&trunc), Err(Error::Format { .. })));
    let mut other = Sequential::new(&Device::cpu(), vec![Dense::new(4).input_shape(8), Dense::new(1)]);
    other.compile("adam", "mae", &[]).unwrap();
    match other.load_weights(&path) {
        Err(Error::Format { detail, .. }) => assert!(detail.contains("tensors"), "{detail}"),
        r => panic!("{:?}", r.err()),
    }
}

/// Mutated model files and CSV bytes: every outcome is Ok or a typed error, never a panic.
#[test]
fn mutated_inputs_never_panic() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let dir = tempfile::tempdir().unwrap();
    let mut m = Sequential::new(
        &Device::cpu(),
        vec![Dense::new(3).activation("relu").input_shape(2), BatchNormalization::new(), Dense::new(1)],
    );
    m.compile("adam", "mae", &["mae"]).unwrap();
    let path = dir.path().join("m.json");
    m.save(&path).unwrap();
    let good = std::fs::read(&path).unwrap();
    let target = dir.path().join("x.json");
    let x = Matrix::from_rows(&[[0.5f32, 0.25]]).unwrap();
    let (mut ok, mut err) = (0, 0);
    for _ in 0..300 {
        let mut bytes = good.clone();
        match rng.random_range(0..3) {
            0 => bytes.truncate(rng.random_range(0..good.len())),
            1 => {
                for _ in 0..rng.random_range(1..4) {
                    let i = rng.random_range(0..bytes.len());
                    bytes[i] = b"0123456789-.,:[]{}\"e9x "[rng.random_range(0..23)];
                }
            }
            _ => {
                let i = rng.random_range(0..bytes.len());
                bytes.insert(i, b"9,[-\""[rng.random_range(0..5)]);
            }
        }
        std::fs::write(&target, &bytes).unwrap();
        match Sequential::load(&target, &Device::cpu()) {
            Ok(mut l) => {
                ok += 1;
                let _ = l.predict(&x);
            }
            Err(Error::Format { .. } | Error::Io { .. }) => err += 1,
            Err(e) => panic!("unexpected error kind: {e:?}"),
        }
    }
    assert!(err > 200, "{ok} loaded, {err} refused");
    let csv = b"a,b,c,y\n1,2,x,0\n3,4,y,1\n5,6,x,0\n";
    for i in 0..400 {
        let bytes: Vec<u8> = if i % 2 == 0 {
            {
                let alphabet = b"ab,\n\r\"1.5-e \xEF\xBB\xBF\xff";
                (0..rng.random_range(0..60)).map(|_| alphabet[rng.random_range(0..alphabet.len())]).collect()
            }
        } else {
            let mut b = csv.to_vec();
            let k = rng.random_range(0..b.len());
            b[k] = b",\n\"x9 "[rng.random_range(0..6)];
            b
        };
        if let Ok(t) = RawTable::parse_csv(&bytes, Path::new("t.csv")) {
            let _ = t.to_table();
            let opts = CsvOptions::new().categorical(&["c"]).scale(ScaleKind::Standard);
            if let Ok(p) = Preprocessor::fit(&t, &opts) {
                let _ = p.transform_xy(&t);
            }
            let _ = t.split_last(0.5);
        }
    }
}
