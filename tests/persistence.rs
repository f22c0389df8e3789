//! A saved model continues training exactly where the original would have: weights, moving
//! statistics and the optimizer's state (Adam's moments and step count) all survive the file.

mod common;

use common::devices;
use wgfit::{data, BatchNormalization, Dense, Dropout, Fit, Sequential};

#[test]
fn training_continues_identically_after_save_and_load() {
    let (xt, yt, xv, yv) = data::shipped::concrete().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for device in devices() {
        let mut model = Sequential::new(
            &device,
            vec![
                Dense::new(32).activation("relu").input_shape(8),
                BatchNormalization::new(),
                Dropout::new(0.2),
                Dense::new(1),
            ],
        );
        model.compile("adam", "mae", &["mse"]).unwrap();
        let fit = || Fit::new().validation_data(&xv, &yv).batch_size(128).epochs(3).seed(4).verbose(0);
        model.fit(&xt, &yt, fit()).unwrap();
        let path = dir.path().join(format!("model-{}.json", device.is_gpu()));
        model.save(&path).unwrap();
        let mut loaded = Sequential::load(&path, &device).unwrap();
        assert_eq!(loaded.predict(&xv).unwrap(), model.predict(&xv).unwrap());
        let original = model.fit(&xt, &yt, fit()).unwrap();
        let resumed = loaded.fit(&xt, &yt, fit()).unwrap();
        assert_eq!(original, resumed, "{device:?}: training after load diverged from the original");
        assert_eq!(loaded.get_weights().unwrap(), model.get_weights().unwrap());
    }
}
