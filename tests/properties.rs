//! Property tests (issue 7): the CSV loader and the model-file loader never panic on any input and
//! refuse what is invalid; well-formed numeric tables round-trip exactly; the GPU matmul equals its
//! CPU twin on random shapes, layouts and modes. Case counts are kept small enough for two cores
//! and lavapipe; raise them with `PROPTEST_CASES=N` for a longer local run.

mod common;

use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::sample::Index;
use wgfit::data::{CsvOptions, Preprocessor, RawTable, ScaleKind, Table};
use wgfit::testing::{Args, KernelHarness, MatmulArgs, Ones};
use wgfit::{BatchNormalization, Dense, Device, Dropout, Error, Matrix, Sequential};

fn cases(n: u32) -> ProptestConfig {
    // PROPTEST_CASES, when set, overrides the default of each block.
    let n = std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(n);
    ProptestConfig { cases: n, failure_persistence: None, ..ProptestConfig::default() }
}

// ---------------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------------

/// Everything a user can do with a parsed table; none of it may panic.
fn exercise_table(t: &RawTable) {
    let _ = t.to_table().map(|tab| tab.features_target(None));
    let _ = t.split_last(0.5);
    let _ = t.split_random(0.3, 1);
    if let Some(first) = t.columns().first() {
        let opts = CsvOptions::new().categorical(&[first.as_str()]).scale(ScaleKind::Standard);
        if let Ok(p) = Preprocessor::fit(t, &opts) {
            let _ = p.transform_xy(t);
        }
    }
    let _ = Preprocessor::fit(t, &CsvOptions::new()).map(|p| p.transform_xy(t));
}

/// Bytes that look like CSV often enough to reach past the header checks.
fn csvish_bytes() -> impl Strategy<Value = Vec<u8>> {
    const ALPHABET: &[u8] = b"0123456789.,,,-+eE\n\n\r\"  abxNnIiaf\t\xEF\xBB\xBF\xff\x00";
    prop::collection::vec(prop::sample::select(ALPHABET), 0..300)
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn csv_random_bytes_never_panic(bytes in prop_oneof![prop::collection::vec(any::<u8>(), 0..400), csvish_bytes()]) {
        let path = Path::new("random.csv");
        match RawTable::parse_csv(&bytes, path) {
            Ok(t) => {
                prop_assert!(!t.columns().is_empty() && !t.rows().is_empty());
                prop_assert!(t.rows().iter().all(|r| r.len() == t.columns().len()));
                prop_assert_eq!(t.rows().len(), t.lines().len());
                exercise_table(&t);
            }
            Err(Error::Format { path: p, detail }) => {
                prop_assert_eq!(p, path.to_path_buf());
                prop_assert!(!detail.is_empty());
            }
            Err(e) => prop_assert!(false, "unexpected error kind {e:?}"),
        }
        let _ = Table::parse_csv(&bytes, path);
    }
}

/// A finite f32 of any magnitude: normal, subnormal, zero (either sign).
fn finite_f32() -> impl Strategy<Value = f32> {
    use proptest::num::f32 as f;
    prop_oneof![
        (f::POSITIVE | f::NEGATIVE | f::NORMAL | f::SUBNORMAL | f::ZERO),
        -1000.0f32..1000.0,
        (-100i32..100).prop_map(|i| i as f32),
    ]
}

#[derive(Clone, Debug)]
struct TableCase {
    names: Vec<String>,
    rows: Vec<Vec<f32>>,
    crlf: bool,
    bom: bool,
    trailing_newline: bool,
    padded: bool,
    quoted: bool,
    exponent: bool,
}

fn table_case() -> impl Strategy<Value = TableCase> {
    (1usize..7, 1usize..25).prop_flat_map(|(cols, rows)| {
        (
            prop::collection::vec(prop::collection::vec(prop::sample::select(b"abcxyz_019 ,\"".to_vec()), 0..6), cols),
            prop::collection::vec(prop::collection::vec(finite_f32(), cols), rows),
            any::<[bool; 6]>(),
        )
            .prop_map(|(raw_names, rows, [crlf, bom, trailing_newline, padded, quoted, exponent])| {
                // Unique non-empty names: a random stem (maybe with spaces, commas and quotes,
                // which the writer quotes) made unique by its index.
                let names = raw_names
                    .into_iter()
                    .enumerate()
                    .map(|(i, stem)| format!("{}{i}", String::from_utf8(stem).unwrap().trim()))
                    .collect();
                TableCase { names, rows, crlf, bom, trailing_newline, padded, quoted, exponent }
            })
    })
}

/// Writes the case as a CSV file (RFC 4180 quoting where a name needs it).
fn write_csv(c: &TableCase) -> Vec<u8> {
    let nl = if c.crlf { "\r\n" } else { "\n" };
    let field = |s: &str| {
        if c.quoted || s.contains([',', '"']) || s.starts_with(' ') || s.ends_with(' ') {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let mut out = String::new();
    if c.bom {
        out.push('\u{feff}');
    }
    out += &c.names.iter().map(|n| field(n)).collect::<Vec<_>>().join(",");
    for row in &c.rows {
        out += nl;
        let cells: Vec<String> = row
            .iter()
            .map(|v| {
                // `{}` and `{:e}` both print the shortest decimal that reads back to the same f32.
                let s = if c.exponent { format!("{v:e}") } else { format!("{v}") };
                if c.padded {
                    format!(" {s} ")
                } else {
                    s
                }
            })
            .collect();
        out += &cells.join(",");
    }
    if c.trailing_newline {
        out += nl;
    }
    out.into_bytes()
}

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn csv_numeric_tables_round_trip_exactly(c in table_case()) {
        let bytes = write_csv(&c);
        let path = Path::new("table.csv");
        let raw = RawTable::parse_csv(&bytes, path).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(raw.columns(), &c.names);
        prop_assert_eq!(raw.rows().len(), c.rows.len());
        // Data row r starts on line r + 2 (the header is line 1).
        prop_assert_eq!(raw.lines().to_vec(), (2..c.rows.len() + 2).collect::<Vec<_>>());
        let t = Table::parse_csv(&bytes, path).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(t.columns(), &c.names);
        prop_assert_eq!((t.values().rows(), t.values().cols()), (c.rows.len(), c.names.len()));
        for (r, want) in c.rows.iter().enumerate() {
            let got = t.values().row(r).unwrap();
            for (col, (g, w)) in got.iter().zip(want).enumerate() {
                prop_assert_eq!(g.to_bits(), w.to_bits(), "row {} column {}: {} read back as {}", r, col, w, g);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Model files
// ---------------------------------------------------------------------------------------------

/// A small valid model file (Dense, BatchNormalization, Dropout, Dense; Adam with its state;
/// one-hot and standard-scaled preprocessing) and a table its preprocessing reads.
fn valid_model_file() -> &'static (Vec<u8>, RawTable) {
    static FILE: OnceLock<(Vec<u8>, RawTable)> = OnceLock::new();
    FILE.get_or_init(|| {
        let csv = b"a,b,city,y\n1,2,x,0.5\n3,4,y,1.5\n5,7,x,0.25\n2,1,z,2\n";
        let table = RawTable::parse_csv(csv, Path::new("t.csv")).unwrap();
        let pre =
            Preprocessor::fit(&table, &CsvOptions::new().categorical(&["city"]).scale(ScaleKind::Standard)).unwrap();
        let mut m = Sequential::new(
            &Device::cpu(),
            vec![
                Dense::new(3).activation("relu").input_shape(pre.input_width()),
                BatchNormalization::new(),
                Dropout::new(0.25),
                Dense::new(1).activation("sigmoid"),
            ],
        )
        .seed(9);
        m.compile("adam", "mse", &["mae"]).unwrap();
        // Trained for an epoch, so the file also holds the optimizer's state.
        let (x, y) = pre.transform_xy(&table).unwrap();
        m.fit(&x, &y, wgfit::Fit::new().epochs(1).batch_size(2).verbose(0)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        m.save_with_preprocessor(&path, &pre).unwrap();
        (std::fs::read(&path).unwrap(), table)
    })
}

/// One change to a valid file. `invalid()` says whether the result must be refused.
#[derive(Clone, Debug)]
enum Mutation {
    /// Keep a strict prefix.
    Truncate(Index),
    /// XOR one byte with a non-zero mask.
    Flip(Index, u8),
    /// Delete a run of bytes.
    Delete(Index, usize),
    /// Insert bytes from JSON's alphabet.
    Insert(Index, Vec<u8>),
    /// Replace the version number with another token.
    Version(String),
    /// Replace the dimensions of the i-th "shape" array.
    Shape(Index, Vec<u64>),
    /// Replace the i-th number token with another token.
    Number(Index, String),
    /// Drop the first element of the i-th array of numbers (weights, scaler statistics).
    ShortenArray(Index),
    /// Replace the i-th string value with another string.
    Text(Index, String),
}

fn json_alphabet() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(b"0123456789-+.eE,:[]{}\" nulltrefas\\".to_vec()), 1..8)
}

fn number_token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("-1".to_string()),
        Just("0".to_string()),
        Just("1e39".to_string()),
        Just("-1e39".to_string()),
        Just("NaN".to_string()),
        Just("Infinity".to_string()),
        Just("18446744073709551616".to_string()),
        Just("4294967297".to_string()),
        Just("1.5".to_string()),
        Just("null".to_string()),
        Just("\"3\"".to_string()),
        Just("[]".to_string()),
        any::<u32>().prop_map(|v| v.to_string()),
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:e}")),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), 1u8..=255).prop_map(|(i, m)| Mutation::Flip(i, m)),
        (any::<Index>(), 1usize..40).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<Index>(), json_alphabet()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        number_token().prop_filter("a different version", |t| t != "1").prop_map(Mutation::Version),
        (any::<Index>(), prop::collection::vec(0u64..6, 0..4)).prop_map(|(i, d)| Mutation::Shape(i, d)),
        (any::<Index>(), number_token()).prop_map(|(i, t)| Mutation::Number(i, t)),
        any::<Index>().prop_map(Mutation::ShortenArray),
        (
            any::<Index>(),
            prop_oneof![
                Just(String::new()),
                Just("Dense".to_string()),
                Just("BatchNormalization".to_string()),
                Just("sgd".to_string()),
                Just("tanh".to_string()),
                Just("wgfit-weights".to_string()),
                "[a-z_]{0,12}".prop_map(|s| s),
            ]
        )
            .prop_map(|(i, s)| Mutation::Text(i, s)),
    ]
}

/// Byte ranges of the JSON number tokens of `text` outside strings.
fn number_spans(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let (mut out, mut i, mut in_str) = (Vec::new(), 0, false);
    while i < b.len() {
        match b[i] {
            b'"' => in_str = !in_str,
            b'\\' if in_str => i += 1,
            c if !in_str && (c == b'-' || c.is_ascii_digit()) => {
                let start = i;
                while i < b.len() && matches!(b[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                    i += 1;
                }
                out.push((start, i));
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Byte ranges of the contents of the JSON string values (after a ':' or inside arrays).
fn string_value_spans(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'"' {
            let start = i + 1;
            let mut j = start;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            let is_key = b.get(j + 1) == Some(&b':');
            if !is_key {
                out.push((start, j.min(b.len())));
            }
            i = j + 1;
        } else {
            i += 1;
        }
    }
    out
}

/// Applies the mutation; returns the new bytes and whether the loader must refuse them
/// (`None` = it may load them if they still describe a valid model).
fn mutate(good: &[u8], m: &Mutation) -> (Vec<u8>, Option<&'static str>) {
    let text = std::str::from_utf8(good).unwrap();
    let mut out = good.to_vec();
    match m {
        Mutation::Truncate(i) => {
            out.truncate(i.index(good.len()));
            (out, Some("a truncated file"))
        }
        Mutation::Flip(i, mask) => {
            out[i.index(good.len())] ^= mask;
            (out, None)
        }
        Mutation::Delete(i, n) => {
            let at = i.index(good.len());
            out.drain(at..(at + n).min(good.len()));
            (out, None)
        }
        Mutation::Insert(i, bytes) => {
            let at = i.index(good.len() + 1);
            out.splice(at..at, bytes.iter().copied());
            (out, None)
        }
        Mutation::Version(tok) => {
            let s = text.replacen("\"version\":1", &format!("\"version\":{tok}"), 1);
            assert_ne!(s, text, "the file has a version field");
            (s.into_bytes(), Some("another version"))
        }
        Mutation::Shape(i, dims) => {
            let starts: Vec<usize> = text.match_indices("\"shape\":[").map(|(p, s)| p + s.len()).collect();
            let at = starts[i.index(starts.len())];
            let end = at + text[at..].find(']').unwrap();
            let old: Vec<u64> =
                text[at..end].split(',').filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
            let new = dims.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
            let s = format!("{}{new}{}", &text[..at], &text[end..]);
            (s.into_bytes(), (old != *dims).then_some("a changed shape"))
        }
        Mutation::Number(i, tok) => {
            let spans = number_spans(text);
            let (a, b) = spans[i.index(spans.len())];
            let s = format!("{}{tok}{}", &text[..a], &text[b..]);
            // (2^64 is a finite f32, so float fields may take it; 1e39 is not.)
            let must_fail = ["NaN", "Infinity", "null", "\"3\"", "[]", "1e39", "-1e39"].contains(&tok.as_str())
                || tok.starts_with("inf")
                || tok.starts_with("-inf")
                || tok.starts_with("NaN");
            (s.into_bytes(), must_fail.then_some("a number that is no finite f32 or count"))
        }
        Mutation::ShortenArray(i) => {
            // Arrays of numbers: `[` directly followed by a number.
            let starts: Vec<usize> = text
                .match_indices('[')
                .map(|(p, _)| p + 1)
                .filter(|&p| text[p..].starts_with(|c: char| c == '-' || c.is_ascii_digit()))
                .collect();
            let at = starts[i.index(starts.len())];
            let end = at + text[at..].find([',', ']']).unwrap();
            let cut = if text.as_bytes()[end] == b',' { end + 1 } else { end };
            let s = format!("{}{}", &text[..at], &text[cut..]);
            (s.into_bytes(), Some("an array one element short"))
        }
        Mutation::Text(i, new) => {
            let spans = string_value_spans(text);
            let (a, b) = spans[i.index(spans.len())];
            let s = format!("{}{new}{}", &text[..a], &text[b..]);
            (s.into_bytes(), None)
        }
    }
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn model_loader_never_panics_and_refuses_invalid_files(m in mutation()) {
        let (good, table) = valid_model_file();
        let (bytes, must_fail) = mutate(good, &m);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mutated.json");
        std::fs::write(&path, &bytes).unwrap();
        match wgfit::io::load_model(&path, &Device::cpu()) {
            Ok(loaded) => {
                prop_assert!(must_fail.is_none(), "{:?} loaded although it is {}", m, must_fail.unwrap());
                // Whatever loads must work: predict on its input width, apply its preprocessing.
                let mut model = loaded.model;
                // Its input width: the one predict accepts (the valid file's is 5).
                let outcomes: Vec<_> = (1..=12)
                    .map(|w| model.predict(&Matrix::new(3, w, (0..3 * w).map(|i| i as f32 / 7.0).collect()).unwrap()))
                    .collect();
                let ok = outcomes.iter().filter(|o| o.is_ok()).count();
                prop_assert!(ok == 1, "{:?}: predict accepted {} input widths: {:?}", m, ok, outcomes);
                for o in &outcomes {
                    prop_assert!(o.is_ok() || matches!(o, Err(Error::Shape { .. })), "{:?}: {:?}", m, o);
                }
                if let Some(pre) = loaded.preprocessor {
                    if let Ok(xp) = pre.transform_x(table) {
                        let _ = model.predict(&xp);
                    }
                    let _ = pre.transform_y(table);
                }
                let _ = model.save(dir.path().join("again.json"));
            }
            Err(Error::Format { detail, .. }) => prop_assert!(!detail.is_empty()),
            Err(e) => prop_assert!(false, "{:?}: unexpected error kind {:?}", m, e),
        }
        // The same bytes through the other loaders of the crate.
        let _ = Sequential::load(&path, &Device::cpu());
        let mut target = Sequential::new(&Device::cpu(), vec![Dense::new(1).input_shape(4)]);
        target.compile("sgd", "mse", &[]).unwrap();
        let _ = target.load_weights(&path);
    }
}

#[test]
fn the_valid_model_file_loads() {
    let (good, table) = valid_model_file();
    let text = std::str::from_utf8(good).unwrap();
    for key in ["\"optimizer_state\"", "\"preprocessing\"", "\"std\"", "\"BatchNormalization\""] {
        assert!(text.contains(key), "the file the mutations start from has no {key}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.json");
    std::fs::write(&path, good).unwrap();
    let loaded = wgfit::io::load_model(&path, &Device::cpu()).unwrap();
    let pre = loaded.preprocessor.unwrap();
    let mut model = loaded.model;
    assert_eq!(model.predict(&pre.transform_x(table).unwrap()).unwrap().rows(), 4);
}

// ---------------------------------------------------------------------------------------------
// Matmul shapes: GPU against the CPU twin
// ---------------------------------------------------------------------------------------------

fn gpu() -> &'static Device {
    static GPU: OnceLock<Device> = OnceLock::new();
    GPU.get_or_init(common::gpu)
}

/// A random matmul launch: C (m x n, at c_off) = A (m x k) · B (k x n) with any of the layouts a
/// Dense layer uses (A and B row- or column-major, leading dimensions padded or not, 4-aligned
/// offsets or not, so every vec4 variant and the scalar fallback run), every `aug`, `act`, `dact`.
#[derive(Clone, Debug)]
struct MatmulCase {
    m: usize,
    k: usize,
    n: usize,
    a_t: bool,
    b_t: bool,
    pad_a: usize,
    pad_b: usize,
    a_off: usize,
    b_off: usize,
    c_off: usize,
    aug: u32,
    act: u32,
    dact: u32,
    seed: u64,
}

fn offset() -> impl Strategy<Value = usize> {
    prop_oneof![Just(0usize), Just(4), Just(8), 0usize..7]
}

fn matmul_case() -> impl Strategy<Value = MatmulCase> {
    let dim = prop_oneof![1usize..=8, 1usize..=200];
    (
        (dim.clone(), dim.clone(), dim),
        (any::<bool>(), any::<bool>(), prop_oneof![Just(0usize), 0usize..6], prop_oneof![Just(0usize), 0usize..6]),
        (offset(), offset(), 0usize..5),
        (0u32..3, 0u32..3, 0u32..3, any::<u64>()),
    )
        .prop_map(|((m, k, n), (a_t, b_t, pad_a, pad_b), (a_off, b_off, c_off), (aug, act, dact, seed))| {
            // aug 1 makes A's last column ones, aug 2 its last row: they need k >= 2, m >= 2.
            let aug = match aug {
                1 if k < 2 => 0,
                2 if m < 2 => 0,
                a => a,
            };
            MatmulCase { m, k, n, a_t, b_t, pad_a, pad_b, a_off, b_off, c_off, aug, act, dact, seed }
        })
}

fn run_matmul(device: &Device, inputs: &[Vec<f32>], p: MatmulArgs) -> Vec<f32> {
    let mut h = KernelHarness::new(device);
    let ids: Vec<_> = inputs.iter().map(|d| h.buffer(d).unwrap()).collect();
    h.run(&ids, Args::Matmul(p)).unwrap();
    h.read(ids[2]).unwrap()
}

proptest! {
    #![proptest_config(cases(64))]

    #[test]
    fn matmul_gpu_equals_cpu_on_random_shapes(c in matmul_case()) {
        let mut r = common::rng(c.seed);
        let (m, k, n) = (c.m, c.k, c.n);
        // A is m x k: row-major (a_rs = lda, a_cs = 1) or column-major (a_rs = 1, a_cs = lda).
        let (a_rs, a_cs, a_len) = if c.a_t {
            let lda = m + c.pad_a;
            (1, lda, c.a_off + lda * k)
        } else {
            let lda = k + c.pad_a;
            (lda, 1, c.a_off + lda * m)
        };
        let (b_rs, b_cs, b_len) = if c.b_t {
            let ldb = k + c.pad_b;
            (1, ldb, c.b_off + ldb * n)
        } else {
            let ldb = n + c.pad_b;
            (ldb, 1, c.b_off + ldb * k)
        };
        let a = common::random_vec(&mut r, a_len, -1.0, 1.0);
        let b = common::random_vec(&mut r, b_len, -1.0, 1.0);
        // The activation's output below, for the derivative: sigmoid outputs lie in (0, 1).
        let aux = if c.dact == 0 { vec![0.0] } else { common::random_vec(&mut r, m * n, if c.dact == 2 { 0.0 } else { -0.5 }, 1.0) };
        let p = MatmulArgs {
            m: m as u32,
            n: n as u32,
            k: k as u32,
            a_off: c.a_off as u32,
            a_rs: a_rs as u32,
            a_cs: a_cs as u32,
            b_off: c.b_off as u32,
            b_rs: b_rs as u32,
            b_cs: b_cs as u32,
            c_off: c.c_off as u32,
            ones: Ones::ALL[c.aug as usize],
            activation: wgfit::Activation::ALL[c.act as usize],
            derivative: wgfit::Activation::ALL[c.dact as usize],
        };
        let c_init = vec![f32::NAN; c.c_off + m * n];
        let inputs = [a.clone(), b.clone(), c_init, aux.clone()];
        let cpu = run_matmul(&Device::cpu(), &inputs, p);
        let gpu_out = run_matmul(gpu(), &inputs, p);
        // An f64 reference from the kernel's definition, independent of both devices.
        let mut want = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f64;
                for kk in 0..k {
                    let av = if (c.aug == 1 && kk == k - 1) || (c.aug == 2 && i == m - 1) {
                        1.0
                    } else {
                        a[c.a_off + i * a_rs + kk * a_cs] as f64
                    };
                    s += av * b[c.b_off + kk * b_rs + j * b_cs] as f64;
                }
                let mut v = match c.act {
                    1 => s.max(0.0),
                    2 => 1.0 / (1.0 + (-s).exp()),
                    _ => s,
                };
                let y = aux.get(i * n + j).copied().unwrap_or(0.0) as f64;
                v *= match c.dact {
                    1 => f64::from(u8::from(y > 0.0)),
                    2 => y * (1.0 - y),
                    _ => 1.0,
                };
                want[i * n + j] = v as f32;
            }
        }
        let tol = common::Tol { rel: 1e-4, abs: 4e-7 * k as f64 };
        let what = format!("{c:?}");
        tol.check(&format!("{what}: cpu vs f64"), &cpu[c.c_off..], &want);
        tol.check(&format!("{what}: gpu vs cpu"), &gpu_out[c.c_off..], &cpu[c.c_off..]);
        prop_assert!(gpu_out[..c.c_off].iter().all(|v| v.is_nan()), "{}: the GPU wrote before c_off", what);
        prop_assert!(cpu[..c.c_off].iter().all(|v| v.is_nan()), "{}: the CPU wrote before c_off", what);
    }
}

// ---------------------------------------------------------------------------------------------
// History files (History::from_json, then everything a History does)
// ---------------------------------------------------------------------------------------------

fn history_value() -> impl Strategy<Value = Option<f32>> {
    prop_oneof![
        4 => (-10.0f32..10.0).prop_map(Some),
        1 => Just(None),
        1 => Just(Some(f32::MAX)),
        1 => Just(Some(-f32::MAX)),
        1 => Just(Some(0.0)),
        1 => (proptest::num::f32::NORMAL | proptest::num::f32::SUBNORMAL).prop_map(Some),
    ]
}

proptest! {
    #![proptest_config(cases(48))]

    #[test]
    fn history_json_of_any_shape_never_panics(
        keys in prop::collection::vec(prop::sample::select(vec!["loss", "val_loss", "mae", "val_mae", "lr", "a,b"]), 0..5),
        lens in prop::collection::vec(0usize..6, 5),
        values in prop::collection::vec(history_value(), 30),
        best in prop::option::of(0usize..8),
        png in any::<bool>(),
    ) {
        // Ragged value lists (different lengths per key), NaNs (null), extremes, duplicates keys.
        let lists: Vec<Vec<Option<f32>>> =
            keys.iter().enumerate().map(|(i, _)| values[i * 6..i * 6 + lens[i]].to_vec()).collect();
        let json = serde_json::json!({ "keys": keys, "values": lists, "best_epoch": best }).to_string();
        let h = match wgfit::History::from_json(&json) {
            Ok(h) => h,
            Err(e) => return Err(TestCaseError::fail(format!("{json}: {e}"))),
        };
        let _ = h.to_csv();
        let back = wgfit::History::from_json(&h.to_json());
        prop_assert!(back.is_ok(), "{json}: {:?}", back.err());
        for k in &keys {
            let _ = h.get(k);
            let _ = h.last(k);
        }
        let dir = tempfile::tempdir().unwrap();
        let _ = h.plot(dir.path().join(if png { "h.png" } else { "h.svg" }));
    }
}
