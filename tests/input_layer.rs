//! Keras 3's `Input(shape)` as the first entry of a Sequential model (issue 13 item 9).

use wgfit::{Dense, Device, Error, Input, Matrix, Sequential};

#[test]
fn input_fixes_the_width_like_input_shape() {
    let device = Device::cpu();
    let mut with_input = Sequential::new(&device, vec![Input::new(3), Dense::new(4).activation("relu"), Dense::new(1)]);
    let mut with_shape = Sequential::new(&device, vec![Dense::new(4).activation("relu").input_shape(3), Dense::new(1)]);
    for m in [&mut with_input, &mut with_shape] {
        m.compile("adam", "mse", &[]).unwrap();
    }
    // Built at compile, as with input_shape: the same weights, layers, summary.
    assert_eq!(with_input.input_shape(), Some(3));
    assert_eq!(with_input.layers().len(), 2);
    assert_eq!(with_input.get_weights().unwrap(), with_shape.get_weights().unwrap());
    assert_eq!(with_input.summary(), with_shape.summary());
    // Data of another width is a typed error.
    let x = Matrix::new(2, 5, vec![0.0; 10]).unwrap();
    let err = with_input.predict(&x).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    // Saved and loaded as a model of input width 3.
    let path = std::env::temp_dir().join(format!("wgfit-input-{}.json", std::process::id()));
    with_input.save(&path).unwrap();
    assert_eq!(Sequential::load(&path, &device).unwrap().input_shape(), Some(3));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn misplaced_or_conflicting_input_is_a_typed_error() {
    let device = Device::cpu();
    let cases = [
        vec![Dense::new(4).input_shape(3), Input::new(3), Dense::new(1)],
        vec![Input::new(3)],
        vec![Input::new(0), Dense::new(1)],
        vec![Input::new(3), Dense::new(1).input_shape(4)],
        vec![Input::new(3).activation("relu"), Dense::new(1)],
    ];
    for layers in cases {
        let mut m = Sequential::new(&device, layers);
        let err = m.compile("adam", "mse", &[]).unwrap_err();
        assert!(matches!(err, Error::Model(_) | Error::InvalidValue { .. }), "{err}");
    }
    // Agreeing widths are fine.
    let mut m = Sequential::new(&device, vec![Input::new(3), Dense::new(1).input_shape(3)]);
    m.compile("adam", "mse", &[]).unwrap();
}
