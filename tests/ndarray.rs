//! The `ndarray` feature: Matrix from and into ndarray's 2-D arrays, and fit/evaluate/predict
//! taking them (`cargo test --features ndarray`; scripts/test runs it).
#![cfg(feature = "ndarray")]

use ndarray::{s, Array2, ShapeBuilder};
use wgfit::{data, Dense, Device, Error, Fit, Matrix, Sequential};

#[test]
fn conversions_keep_values_and_skip_copies_where_the_layout_allows() {
    let a = Array2::from_shape_fn((3, 4), |(r, c)| (r * 10 + c) as f32);
    let owned = a.clone();
    let ptr = owned.as_ptr();
    let m = Matrix::from(owned);
    assert_eq!((m.rows(), m.cols()), (3, 4));
    assert_eq!(m.data().as_ptr(), ptr, "standard layout: no copy");
    assert_eq!(m.get(2, 3), Some(23.0));
    // The view of a Matrix shares its buffer; into an Array2 moves it.
    assert_eq!(m.view().as_ptr(), m.data().as_ptr());
    assert_eq!(m.view(), a.view());
    let data_ptr = m.data().as_ptr();
    let back: Array2<f32> = m.into();
    assert_eq!(back.as_ptr(), data_ptr);
    assert_eq!(back, a);
    // Column-major, transposed and sliced views are copied into row-major order.
    let f = Array2::from_shape_vec((3, 4).f(), (0..12).map(|v| v as f32).collect()).unwrap();
    assert_eq!(Matrix::from(f.clone()).get(1, 2), Some(f[[1, 2]]));
    let t = a.t();
    let mt = Matrix::from(t);
    assert_eq!((mt.rows(), mt.cols()), (4, 3));
    assert_eq!(mt.get(3, 1), Some(a[[1, 3]]));
    let sliced = a.slice(s![1.., ..;2]);
    let ms = Matrix::from(sliced);
    assert_eq!(ms.data(), &[10.0, 12.0, 20.0, 22.0]);
}

#[test]
fn fit_evaluate_and_predict_take_arrays_and_match_matrices() {
    let (xt, yt, xv, yv) = data::shipped::concrete().unwrap();
    let (xa, ya): (Array2<f32>, Array2<f32>) = (xt.clone().into(), yt.clone().into());
    let make = || {
        let mut m =
            Sequential::new(&Device::cpu(), vec![Dense::new(8).activation("relu").input_shape(8), Dense::new(1)]);
        m.compile("adam", "mae", &["mae"]).unwrap();
        m
    };
    let fit = || Fit::new().epochs(2).batch_size(64).verbose(0).validation_data(&xv, &yv);
    let (mut a, mut b) = (make(), make());
    let ha = a.fit(&xa, &ya, fit()).unwrap();
    let hb = b.fit(&xt, &yt, fit()).unwrap();
    assert_eq!(ha.get("val_loss"), hb.get("val_loss"));
    let xva: Array2<f32> = xv.clone().into();
    assert_eq!(a.evaluate(&xva.view(), &yv).unwrap(), b.evaluate(&xv, &yv).unwrap());
    assert_eq!(a.predict(&xva).unwrap().data(), b.predict(&xv).unwrap().data());
    // A non-finite value is a typed error naming its row and column.
    let mut bad = xa.clone();
    bad[[5, 2]] = f32::NAN;
    match a.fit(&bad, &ya, Fit::new().epochs(1).verbose(0)) {
        Err(Error::NonFinite { row, col, .. }) => assert_eq!((row, col), (5, 2)),
        other => panic!("{other:?}"),
    }
}
