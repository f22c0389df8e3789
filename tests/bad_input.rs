//! Bad input to the library: each case returns a typed error whose message says what and where;
//! none panics. (CSV and model-file cases are in tests/data.rs and tests/cli.rs.)

mod common;

use wgfit::{Adam, BatchNormalization, Dense, Device, Dropout, Error, Fit, Matrix, Sequential, Sgd};

fn model(device: &Device) -> Sequential {
    Sequential::new(device, vec![Dense::new(4).activation("relu").input_shape(3), Dense::new(1)])
}

fn compiled(device: &Device) -> Sequential {
    let mut m = model(device);
    m.compile("adam", "mse", &["mae"]).unwrap();
    m
}

fn xy(rows: usize, cols: usize) -> (Matrix, Matrix) {
    let x = Matrix::new(rows, cols, (0..rows * cols).map(|i| (i % 7) as f32 / 7.0).collect()).unwrap();
    let y = Matrix::column((0..rows).map(|i| (i % 2) as f32).collect());
    (x, y)
}

/// Asserts the error's variant (by a predicate) and that its message contains every fragment.
fn expect_err<T: std::fmt::Debug>(what: &str, r: wgfit::Result<T>, kind: fn(&Error) -> bool, fragments: &[&str]) {
    let e = r.expect_err(what);
    assert!(kind(&e), "{what}: unexpected error kind {e:?}");
    let msg = e.to_string();
    for f in fragments {
        assert!(msg.contains(f), "{what}: message {msg:?} lacks {f:?}");
    }
}

fn shape(e: &Error) -> bool {
    matches!(e, Error::Shape { .. })
}
fn invalid(e: &Error) -> bool {
    matches!(e, Error::InvalidValue { .. })
}
fn unknown(e: &Error) -> bool {
    matches!(e, Error::UnknownName { .. })
}

#[test]
fn shapes_that_do_not_fit() {
    for device in common::devices() {
        let mut m = compiled(&device);
        let (x, y) = xy(10, 3);
        let (_, y9) = xy(9, 3);
        expect_err("rows differ", m.fit(&x, &y9, Fit::new().verbose(0)), shape, &["10 rows", "9"]);
        let (x4, y4) = xy(10, 4);
        expect_err("input width", m.fit(&x4, &y4, Fit::new().verbose(0)), shape, &["3 input features", "4 columns"]);
        expect_err("predict width", m.predict(&x4), shape, &["3 input features"]);
        let y2 = Matrix::new(10, 2, vec![0.0; 20]).unwrap();
        expect_err(
            "two target columns",
            m.fit(&x, &y2, Fit::new().verbose(0)),
            shape,
            &["2 columns", "1 values per row"],
        );
        let empty = Matrix::new(0, 3, vec![]).unwrap();
        let empty_y = Matrix::new(0, 1, vec![]).unwrap();
        expect_err("empty x", m.fit(&empty, &empty_y, Fit::new().verbose(0)), shape, &["no rows"]);
        expect_err("empty predict", m.predict(&empty), shape, &["no rows"]);
        let zero_width = Matrix::new(5, 0, vec![]).unwrap();
        let mut unbuilt = Sequential::new(&device, vec![Dense::new(2)]);
        unbuilt.compile("sgd", "mae", &[]).unwrap();
        expect_err(
            "zero-width data",
            unbuilt.fit(&zero_width, &Matrix::column(vec![0.0; 5]), Fit::new()),
            shape,
            &["no columns"],
        );
        let (vx, vy) = xy(4, 5);
        expect_err(
            "validation width",
            m.fit(&x, &y, Fit::new().validation_data(&vx, &vy).verbose(0)),
            shape,
            &["validation_data"],
        );
        // The model still works after all of that.
        assert_eq!(m.fit(&x, &y, Fit::new().epochs(2).verbose(0)).unwrap()["loss"].len(), 2);
    }
    expect_err("matrix length", Matrix::new(2, 3, vec![0.0; 5]), shape, &["2 x 3", "5"]);
    expect_err("ragged rows", Matrix::from_rows(&[vec![1.0f32, 2.0], vec![3.0]]), shape, &["row 1"]);
}

#[test]
fn non_finite_values_are_located() {
    for device in common::devices() {
        let mut m = compiled(&device);
        for (bad, r, c) in [(f32::NAN, 3usize, 2usize), (f32::INFINITY, 0, 0), (f32::NEG_INFINITY, 9, 1)] {
            let (mut xd, y) = (xy(10, 3).0.into_data(), xy(10, 3).1);
            xd[r * 3 + c] = bad;
            let x = Matrix::new(10, 3, xd).unwrap();
            let row = format!("row {r}");
            let col = format!("column {c}");
            let is_nonfinite = |e: &Error| matches!(e, Error::NonFinite { .. });
            expect_err("x", m.fit(&x, &y, Fit::new().verbose(0)), is_nonfinite, &["x", &row, &col]);
            expect_err("predict", m.predict(&x), is_nonfinite, &[&row, &col]);
            let (x, mut yd) = (xy(10, 3).0, xy(10, 3).1.into_data());
            yd[r] = bad;
            expect_err("y", m.fit(&x, &Matrix::column(yd), Fit::new().verbose(0)), is_nonfinite, &["y", &row]);
        }
        let mut b = Sequential::new(&device, vec![Dense::new(1).activation("sigmoid").input_shape(3)]);
        b.compile("adam", "binary_crossentropy", &["binary_accuracy"]).unwrap();
        let (x, _) = xy(10, 3);
        let y = Matrix::column(vec![0.0, 1.0, 2.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]);
        expect_err("bce target", b.fit(&x, &y, Fit::new().verbose(0)), invalid, &["row 2", "[0, 1]"]);
    }
}

#[test]
fn hyperparameters_out_of_range() {
    let device = Device::cpu();
    let (x, y) = xy(10, 3);
    let mut m = compiled(&device);
    expect_err("batch 0", m.fit(&x, &y, Fit::new().batch_size(0)), invalid, &["batch_size"]);
    // Keras allows epochs=0: nothing is trained and the History is empty.
    let h = m.fit(&x, &y, Fit::new().epochs(0).verbose(0)).unwrap();
    assert_eq!(h.epochs(), 0);
    for lr in [0.0f32, -1.0, f32::NAN, f32::INFINITY] {
        expect_err("adam lr", model(&device).compile(Adam::new(lr), "mse", &[]), invalid, &["learning_rate"]);
        expect_err("sgd lr", model(&device).compile(Sgd::new(lr), "mse", &[]), invalid, &["learning_rate"]);
    }
    for beta in [-0.1f32, 1.0, f32::NAN] {
        let a = Adam { beta_1: beta, ..Adam::default() };
        expect_err("beta_1", model(&device).compile(a, "mse", &[]), invalid, &["beta_1", "[0, 1)"]);
        let a = Adam { beta_2: beta, ..Adam::default() };
        expect_err("beta_2", model(&device).compile(a, "mse", &[]), invalid, &["beta_2"]);
    }
    for momentum in [-0.5f32, 1.5, f32::NAN] {
        let s = Sgd { momentum, ..Sgd::default() };
        expect_err("momentum", model(&device).compile(s, "mse", &[]), invalid, &["momentum", "[0, 1]"]);
    }
    for rate in [-0.1f32, 1.0, 2.0, f32::NAN] {
        let mut d = Sequential::new(&device, vec![Dense::new(2).input_shape(3), Dropout::new(rate), Dense::new(1)]);
        expect_err("dropout rate", d.compile("adam", "mse", &[]), invalid, &["layer 1", "Dropout rate", "[0, 1)"]);
    }
    let mut z = Sequential::new(&device, vec![Dense::new(0).input_shape(3)]);
    expect_err("units 0", z.compile("adam", "mse", &[]), invalid, &["units"]);
    let mut bn = Sequential::new(&device, vec![BatchNormalization::new().momentum(1.5).input_shape(3), Dense::new(1)]);
    expect_err("bn momentum", bn.compile("adam", "mse", &[]), invalid, &["momentum"]);
}

#[test]
fn misuse_and_unknown_names() {
    let device = Device::cpu();
    let (x, y) = xy(10, 3);
    let before = |e: &Error| matches!(e, Error::State(_));
    expect_err("fit before compile", model(&device).fit(&x, &y, Fit::new()), before, &["compile"]);
    expect_err("evaluate before compile", model(&device).evaluate(&x, &y), before, &["compile"]);
    expect_err("predict before compile", model(&device).predict(&x), before, &["compile"]);
    expect_err(
        "optimizer",
        model(&device).compile("adagrad", "mse", &[]),
        unknown,
        &["adagrad", "adam, adamw, rmsprop, sgd"],
    );
    expect_err("loss", model(&device).compile("adam", "hinge", &[]), unknown, &["hinge", "binary_crossentropy"]);
    expect_err(
        "metric",
        model(&device).compile("adam", "mse", &["f1_score"]),
        unknown,
        &["f1_score", "binary_accuracy", "pr_auc"],
    );
    let mut bad_act = Sequential::new(&device, vec![Dense::new(2).activation("tanhh").input_shape(3)]);
    expect_err(
        "activation",
        bad_act.compile("adam", "mse", &[]),
        |e| matches!(e, Error::Model(_)),
        &["tanhh", "relu, sigmoid"],
    );
    let model_err = |e: &Error| matches!(e, Error::Model(_));
    expect_err(
        "accuracy with mae",
        model(&device).compile("adam", "mae", &["accuracy"]),
        model_err,
        &["accuracy", "binary_crossentropy"],
    );
    let mut misuse = Sequential::new(&device, vec![Dropout::new(0.2).activation("relu").input_shape(3), Dense::new(1)]);
    expect_err("activation on dropout", misuse.compile("adam", "mse", &[]), model_err, &["Dropout"]);
    let mut late = Sequential::new(&device, vec![Dense::new(2), Dense::new(1).input_shape(2)]);
    expect_err("input_shape on layer 1", late.compile("adam", "mse", &[]), model_err, &["first layer"]);
    let mut none = Sequential::new(&device, vec![]);
    expect_err("no layers", none.compile("adam", "mse", &[]), model_err, &["at least one layer"]);
    let mut no_weights = Sequential::new(&device, vec![Dropout::new(0.1).input_shape(3)]);
    expect_err("no trainable layer", no_weights.compile("adam", "mse", &[]), model_err, &["no trainable layer"]);
}

#[test]
fn a_batch_too_large_for_a_gpu_binding_is_an_error_not_a_panic() {
    let options = wgfit::GpuOptions::from_env().max_storage_buffer_binding_size(64 * 1024).max_buffer_size(64 * 1024);
    let device = match Device::gpu_with(options) {
        Ok(d) => d,
        Err(e) => panic!("GPU tests need an adapter ({e}); install mesa-vulkan-drivers"),
    };
    let mut m = Sequential::new(&device, vec![Dense::new(8).activation("relu").input_shape(64), Dense::new(1)]);
    m.compile("adam", "mse", &[]).unwrap();
    let (x, y) = xy(1000, 64); // 256 KB of x: four times the largest binding
    let gpu_err = |e: &Error| matches!(e, Error::Gpu(_));
    expect_err("oversized batch", m.fit(&x, &y, Fit::new().batch_size(1000).verbose(0)), gpu_err, &["batch"]);
    // Data larger than a binding streams in chunks (tests/streamed_data.rs); small data trains.
    assert!(m.fit(&x, &y, Fit::new().batch_size(32).verbose(0)).is_ok());
    let (x, y) = xy(100, 64);
    assert!(m.fit(&x, &y, Fit::new().batch_size(32).epochs(2).verbose(0)).is_ok());
}
