//! Whole fits: the GPU and the CPU paths agree epoch by epoch, and the model-level semantics
//! (history keys, evaluate, predict, BatchNormalization's moving statistics) hold on both.

mod common;

use common::{concrete_model, devices, dropout_batchnorm_model, gpu, ionosphere_model, random_vec, rng, Tol};
use wgfit::{data, BatchNormalization, Dense, Device, Fit, Matrix, Sequential};

fn assert_histories_agree(a: &wgfit::History, b: &wgfit::History, rel: f64) {
    let keys: Vec<&str> = a.keys().collect();
    assert_eq!(keys, b.keys().collect::<Vec<_>>());
    for k in keys {
        Tol { rel, abs: 1e-6 }.check(&format!("history[{k}]"), &a[k], &b[k]);
    }
}

#[test]
fn concrete_fit_gpu_and_cpu_histories_agree_for_20_epochs() {
    let (xt, yt, xv, yv) = data::shipped::concrete().unwrap();
    let mut histories = Vec::new();
    for device in devices() {
        let mut model = concrete_model(&device);
        model.compile("adam", "mae", &["mae"]).unwrap();
        let fit = Fit::new().validation_data(&xv, &yv).batch_size(256).epochs(20).seed(0).verbose(0);
        histories.push(model.fit(&xt, &yt, fit).unwrap());
    }
    let h = &histories[0];
    assert_eq!(h.keys().collect::<Vec<_>>(), ["loss", "mae", "val_loss", "val_mae"]);
    assert_eq!(h["loss"].len(), 20);
    assert!(h["loss"][19] < h["loss"][0] * 0.7, "training did not progress: {:?}", &h["loss"]);
    assert_histories_agree(&histories[0], &histories[1], 1e-3);
}

#[test]
fn binary_fit_with_accuracy_and_evaluate_matches_last_val_epoch() {
    let (xt, yt, xv, yv) = data::shipped::ionosphere().unwrap();
    let mut histories = Vec::new();
    for device in devices() {
        let mut model = ionosphere_model(&device);
        model.compile("adam", "binary_crossentropy", &["accuracy"]).unwrap();
        let h = model
            .fit(&xt, &yt, Fit::new().validation_data(&xv, &yv).batch_size(64).epochs(15).seed(1).verbose(0))
            .unwrap();
        assert_eq!(h.keys().collect::<Vec<_>>(), ["loss", "accuracy", "val_loss", "val_accuracy"]);
        let eval = model.evaluate(&xv, &yv).unwrap();
        assert_eq!(eval[0].0, "loss");
        Tol { rel: 1e-5, abs: 1e-7 }.check(
            "evaluate vs last val_loss",
            &[eval[0].1],
            &[*h["val_loss"].last().unwrap()],
        );
        Tol { rel: 1e-6, abs: 0.0 }.check("evaluate accuracy", &[eval[1].1], &[*h["val_accuracy"].last().unwrap()]);
        assert!(h["val_accuracy"].iter().all(|a| (0.0..=1.0).contains(a)));
        let p = model.predict(&xv).unwrap();
        assert_eq!((p.rows(), p.cols()), (xv.rows(), 1));
        assert!(p.data().iter().all(|v| (0.0..=1.0).contains(v)));
        histories.push(h);
    }
    assert_histories_agree(&histories[0], &histories[1], 1e-3);
}

/// Batch losses are averaged with batch-size weights: with a partial last batch (10 rows in
/// batches of 4), the epoch's loss is the mean per-sample loss, which with a learning rate too
/// small to move the weights equals evaluate() before the epoch. An unweighted mean of the three
/// batch means would differ.
#[test]
fn epoch_loss_weights_partial_batches_by_size() {
    let mut r = rng(5);
    let x = Matrix::new(10, 3, random_vec(&mut r, 30, -1.0, 1.0)).unwrap();
    let y = Matrix::new(10, 1, random_vec(&mut r, 10, -1.0, 1.0)).unwrap();
    for device in devices() {
        let mut model = Sequential::new(&device, vec![Dense::new(4).activation("relu").input_shape(3), Dense::new(1)]);
        // Plain SGD with a tiny rate: the weights barely move during the epoch.
        model.compile(wgfit::Sgd::new(1e-9), "mse", &[]).unwrap();
        let before = model.evaluate(&x, &y).unwrap()[0].1;
        let h = model.fit(&x, &y, Fit::new().batch_size(4).epochs(1).verbose(0)).unwrap();
        Tol { rel: 1e-5, abs: 1e-7 }.check("epoch loss", &h["loss"], &[before]);
    }
}

#[test]
fn dropout_batchnorm_model_trains_and_agrees_across_devices() {
    let mut r = rng(11);
    let (rows, width) = (300, 16);
    let x = Matrix::new(rows, width, random_vec(&mut r, rows * width, -1.0, 1.0)).unwrap();
    let y = Matrix::column((0..rows).map(|i| x.row(i).unwrap()[..4].iter().sum::<f32>().sin()).collect());
    let (xv, yv) =
        (x.select_rows(&(0..50).collect::<Vec<_>>()).unwrap(), y.select_rows(&(0..50).collect::<Vec<_>>()).unwrap());
    let mut histories = Vec::new();
    let mut preds = Vec::new();
    for device in devices() {
        let mut model = dropout_batchnorm_model(&device, width);
        model.compile("adam", "mse", &["mae"]).unwrap();
        // 300 rows in batches of 64: a partial batch of 44 every epoch.
        let h = model
            .fit(&x, &y, Fit::new().validation_data(&xv, &yv).batch_size(64).epochs(4).seed(3).verbose(0))
            .unwrap();
        assert!(h["loss"][3] < h["loss"][0], "did not learn: {:?}", &h["loss"]);
        preds.push(model.predict(&xv).unwrap());
        histories.push(h);
    }
    assert_histories_agree(&histories[0], &histories[1], 1e-3);
    Tol { rel: 1e-3, abs: 1e-5 }.check("predictions", preds[0].data(), preds[1].data());
}

#[test]
fn batchnorm_moving_statistics_follow_keras_formula_and_drive_inference() {
    let mut r = rng(21);
    let (rows, width, batch, epochs) = (12usize, 3usize, 5usize, 2usize);
    let x = Matrix::new(rows, width, random_vec(&mut r, rows * width, -2.0, 3.0)).unwrap();
    let y = Matrix::new(rows, width, random_vec(&mut r, rows * width, -1.0, 1.0)).unwrap();
    for device in devices() {
        // BatchNormalization first: its input is the raw data, so the statistics are computable here.
        let mut model = Sequential::new(
            &device,
            vec![BatchNormalization::new().input_shape(width).momentum(0.9), Dense::new(width)],
        );
        model.compile("sgd", "mse", &[]).unwrap();
        model.fit(&x, &y, Fit::new().batch_size(batch).epochs(epochs).shuffle(false).verbose(0)).unwrap();
        let (_, state) = model.get_weights().unwrap();
        let (mut mean, mut var) = (vec![0.0f64; width], vec![1.0f64; width]);
        for _ in 0..epochs {
            for start in (0..rows).step_by(batch) {
                let end = (start + batch).min(rows);
                let n = (end - start) as f64;
                for j in 0..width {
                    let col: Vec<f64> = (start..end).map(|i| x.get(i, j).unwrap() as f64).collect();
                    let m = col.iter().sum::<f64>() / n;
                    let v = col.iter().map(|c| (c - m).powi(2)).sum::<f64>() / n;
                    mean[j] = mean[j] * 0.9 + m * 0.1;
                    var[j] = var[j] * 0.9 + v * 0.1;
                }
            }
        }
        let want: Vec<f64> = mean.iter().chain(&var).copied().collect();
        Tol { rel: 1e-5, abs: 1e-6 }.check64(&format!("moving statistics on {device:?}"), &state, &want);
        // Inference uses them: a row's prediction does not depend on the rest of the batch.
        let all = model.predict(&x).unwrap();
        let one = model.predict(&x.select_rows(&[7]).unwrap()).unwrap();
        let other = model.predict(&x.select_rows(&[7, 0, 1]).unwrap()).unwrap();
        assert_eq!(one.row(0), all.row(7));
        assert_eq!(other.row(0), all.row(7));
    }
}

#[test]
fn same_seed_same_model_on_both_devices() {
    let mut a = concrete_model(&gpu());
    let mut b = concrete_model(&Device::cpu());
    a.compile("adam", "mae", &[]).unwrap();
    b.compile("adam", "mae", &[]).unwrap();
    assert_eq!(a.get_weights().unwrap(), b.get_weights().unwrap());
    let mut c = concrete_model(&Device::cpu()).seed(1);
    c.compile("adam", "mae", &[]).unwrap();
    assert_ne!(a.get_weights().unwrap().0, c.get_weights().unwrap().0);
}
