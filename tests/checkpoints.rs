//! ModelCheckpoint, LearningRateScheduler and Fit::validation_freq (issue 13 item 8), on both
//! devices: files written per epoch and readable back, best-only choices, weights-only files,
//! per-member checkpoints in a sweep, learning rates per epoch in the History, and which epochs
//! carry `val_` keys.

mod common;

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use common::{devices, random_vec, rng};
use wgfit::{
    Adam, Callback, Dense, Device, EarlyStopping, Error, Fit, LearningRateScheduler, Logs, Matrix, Member,
    ModelCheckpoint, ReduceLROnPlateau, Sequential, Sweep, TrainContext,
};

fn data(rows: usize, seed: u64) -> (Matrix, Matrix) {
    let mut r = rng(seed);
    let x = random_vec(&mut r, rows * 3, -1.0, 1.0);
    let y: Vec<f32> = x.chunks(3).map(|c| c[0] - 2.0 * c[1] + 0.5 * c[2] * c[2]).collect();
    (Matrix::new(rows, 3, x).unwrap(), Matrix::new(rows, 1, y).unwrap())
}

fn model(device: &Device, lr: f32) -> Sequential {
    let mut m = Sequential::new(device, vec![Dense::new(8).activation("relu").input_shape(3), Dense::new(1)]).seed(3);
    m.compile(Adam::new(lr), "mse", &["mae"]).unwrap();
    m
}

fn tmp(name: &str, device: &Device) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "wgfit-checkpoints-{name}-{}-{}",
        if device.is_gpu() { "gpu" } else { "cpu" },
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// Records each epoch's logs keys and values (after the callbacks before it).
struct Recorder<'r>(&'r RefCell<Vec<Logs>>);
impl Callback for Recorder<'_> {
    fn on_epoch_end(&mut self, _e: usize, logs: &mut Logs, _c: &mut TrainContext) -> wgfit::Result<()> {
        self.0.borrow_mut().push(logs.clone());
        Ok(())
    }
}

#[test]
fn checkpoint_every_epoch_fills_the_template_and_loads_back() {
    let (x, y) = data(64, 1);
    let (vx, vy) = data(32, 2);
    for device in devices() {
        let dir = tmp("every", &device);
        let template = dir.join("m-{epoch:02d}-{val_loss:.3f}.json");
        let mut m = model(&device, 0.01);
        let mut cb = ModelCheckpoint::new(template.to_str().unwrap());
        let h = m
            .fit(&x, &y, Fit::new().validation_data(&vx, &vy).epochs(3).batch_size(16).callback(&mut cb).verbose(0))
            .unwrap();
        let val = h.get("val_loss").unwrap();
        // Python: "m-{epoch:02d}-{val_loss:.3f}.json".format(epoch=e + 1, val_loss=v)
        let want: Vec<String> = (0..3).map(|e| format!("m-{:02}-{:.3}.json", e + 1, val[e] as f64)).collect();
        assert_eq!(listing(&dir), want, "no temporary files left, one file per epoch");
        assert_eq!(cb.saved().len(), 3);
        // The last epoch's file is the model as fit left it: same predictions, bit for bit.
        let mut loaded = Sequential::load(dir.join(&want[2]), &device).unwrap();
        assert_eq!(loaded.predict(&vx).unwrap(), m.predict(&vx).unwrap());
        assert_eq!(loaded.get_weights().unwrap(), m.get_weights().unwrap());
        // Earlier files hold earlier weights.
        let mut first = Sequential::load(dir.join(&want[0]), &device).unwrap();
        assert_ne!(first.get_weights().unwrap(), m.get_weights().unwrap());
        // A full model file keeps the optimizer state: fitting the loaded model goes on as the
        // original does.
        let more = |mm: &mut Sequential| {
            mm.fit(&x, &y, Fit::new().epochs(1).batch_size(16).shuffle(false).verbose(0)).unwrap();
            mm.get_weights().unwrap()
        };
        if !device.is_gpu() {
            assert_eq!(more(&mut loaded), more(&mut m));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn checkpoint_best_only_keeps_the_best_epochs_weights() {
    let (x, y) = data(64, 3);
    for device in devices() {
        let dir = tmp("best", &device);
        let every = dir.join("all-{epoch}.json");
        let best = dir.join("best.json");
        // A large learning rate so the loss does not only go down.
        let mut m = model(&device, 0.3);
        let mut cb = ModelCheckpoint::new(best.to_str().unwrap()).monitor("loss").save_best_only(true);
        let h = m
            .fit(
                &x,
                &y,
                Fit::new()
                    .epochs(8)
                    .batch_size(8)
                    .callback(ModelCheckpoint::new(every.to_str().unwrap()))
                    .callback(&mut cb)
                    .verbose(0),
            )
            .unwrap();
        let loss = h.get("loss").unwrap();
        let mut improving = Vec::new();
        let mut low = f32::INFINITY;
        for (e, &l) in loss.iter().enumerate() {
            if l < low {
                low = l;
                improving.push(e);
            }
        }
        assert_eq!(cb.saved().len(), improving.len(), "one save per improvement: {loss:?}");
        assert_eq!(cb.best(), Some(low as f64));
        let best_epoch = *improving.last().unwrap();
        let mut kept = Sequential::load(&best, &device).unwrap();
        let mut at_best = Sequential::load(dir.join(format!("all-{}.json", best_epoch + 1)), &device).unwrap();
        assert_eq!(kept.get_weights().unwrap(), at_best.get_weights().unwrap());

        // initial_value_threshold: nothing beats 0 for a loss, so nothing is written.
        let none = dir.join("never.json");
        let mut cb = ModelCheckpoint::new(none.to_str().unwrap())
            .monitor("loss")
            .save_best_only(true)
            .initial_value_threshold(0.0);
        m.fit(&x, &y, Fit::new().epochs(2).callback(&mut cb).verbose(0)).unwrap();
        assert!(cb.saved().is_empty() && !none.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn checkpoint_weights_only_json_and_safetensors() {
    let (x, y) = data(48, 4);
    for device in devices() {
        let dir = tmp("weights", &device);
        let mut m = model(&device, 0.01);
        let json = dir.join("sub/dir/w-{epoch}.json");
        let st = dir.join("w.safetensors");
        m.fit(
            &x,
            &y,
            Fit::new()
                .epochs(2)
                .callback(ModelCheckpoint::new(json.to_str().unwrap()).save_weights_only(true))
                .callback(ModelCheckpoint::new(st.to_str().unwrap()).save_weights_only(true))
                .verbose(0),
        )
        .unwrap();
        let want = m.get_weights().unwrap();
        for file in [dir.join("sub/dir/w-2.json"), st.clone()] {
            // A weights file, not a model file.
            assert!(Sequential::load(&file, &device).is_err());
            let mut fresh = model(&device, 0.01);
            fresh.load_weights(&file).unwrap();
            assert_eq!(fresh.get_weights().unwrap(), want, "{}", file.display());
        }
        assert_eq!(listing(&dir.join("sub/dir")), ["w-1.json", "w-2.json"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn checkpoint_errors_are_typed() {
    let (x, y) = data(16, 5);
    let mut m = model(&Device::cpu(), 0.01);
    for t in ["{nope}.json", "{epoch:d.json", "{loss:d}.json"] {
        let err = m.fit(&x, &y, Fit::new().callback(ModelCheckpoint::new(t)).verbose(0)).unwrap_err();
        assert!(matches!(err, Error::InvalidValue { .. }), "{t}: {err}");
        assert!(err.to_string().contains("ModelCheckpoint filepath"), "{err}");
    }
    // A val_ monitor without validation data fails before training.
    let err =
        m.fit(&x, &y, Fit::new().callback(ModelCheckpoint::new("x.json").save_best_only(true)).verbose(0)).unwrap_err();
    assert!(err.to_string().contains("val_loss"), "{err}");
    // An unwritable place is an I/O error, not a panic.
    let err = m.fit(&x, &y, Fit::new().callback(ModelCheckpoint::new("/proc/nope/x.json")).verbose(0)).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

#[test]
fn checkpoint_per_member_in_a_sweep() {
    let (x, y) = data(64, 6);
    for device in devices() {
        let dir = tmp("sweep", &device);
        let lrs = [0.001f32, 0.01, 0.1];
        let mut sweep = Sweep::from_fn(3, |i| {
            let t = dir.join(format!("member{i}-{{epoch}}.json"));
            Ok(Member::new(model(&device, lrs[i])).seed(i as u64).callback(ModelCheckpoint::new(t.to_str().unwrap())))
        })
        .unwrap();
        sweep.fit(&x, &y, Fit::new().epochs(2).batch_size(16).verbose(0)).unwrap();
        let mut seen = Vec::new();
        for (i, lr) in lrs.iter().enumerate() {
            let mut loaded = Sequential::load(dir.join(format!("member{i}-2.json")), &device).unwrap();
            let w = loaded.get_weights().unwrap();
            assert_eq!(w, sweep.model(i).unwrap().get_weights().unwrap(), "member {i}");
            seen.push(w);
            // Each member's own learning rate is in its file.
            let text = std::fs::read_to_string(dir.join(format!("member{i}-2.json"))).unwrap();
            assert!(text.contains(&format!("\"learning_rate\":{lr}")), "member {i}");
        }
        assert!(seen[0] != seen[1] && seen[1] != seen[2]);
        assert_eq!(listing(&dir).len(), 6);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn learning_rate_scheduler_sets_and_logs_the_rate() {
    let (x, y) = data(64, 7);
    for device in devices() {
        let mut m = model(&device, 0.01);
        let sched = LearningRateScheduler::new(|epoch, lr| if epoch == 0 { lr } else { lr * 0.5 });
        let h = m.fit(&x, &y, Fit::new().epochs(4).callback(sched).verbose(0)).unwrap();
        // Keras logs the rate each epoch trained with.
        common::F32.check("learning_rate", h.get("learning_rate").unwrap(), &[0.01, 0.005, 0.0025, 0.00125]);
        // It stays after fit, as in Keras.
        let saved = std::env::temp_dir().join(format!("wgfit-lrs-{}.json", std::process::id()));
        m.save(&saved).unwrap();
        assert!(std::fs::read_to_string(&saved).unwrap().contains("\"learning_rate\":0.00125"));
        std::fs::remove_file(&saved).unwrap();

        // The rate really trains: a schedule returning 0.02 equals compiling with 0.02.
        let run = |m: &mut Sequential, cb: Option<LearningRateScheduler>| {
            let mut f = Fit::new().epochs(2).batch_size(16).verbose(0);
            if let Some(cb) = cb {
                f = f.callback(cb);
            }
            m.fit(&x, &y, f).unwrap();
            m.get_weights().unwrap().0
        };
        let a = run(&mut model(&device, 0.001), Some(LearningRateScheduler::new(|_, _| 0.02)));
        let b = run(&mut model(&device, 0.02), None);
        common::Tol { rel: 1e-5, abs: 1e-6 }.check("weights", &a, &b);
        // A frozen rate (0) leaves the weights where they were.
        let mut frozen = model(&device, 0.01);
        let before = frozen.get_weights().unwrap().0;
        assert_eq!(run(&mut frozen, Some(LearningRateScheduler::new(|_, _| 0.0))), before);
    }
    let mut m = model(&Device::cpu(), 0.01);
    for bad in [f32::NAN, -0.1, f32::INFINITY] {
        let err = m
            .fit(
                &x,
                &y,
                Fit::new()
                    .epochs(3)
                    .callback(LearningRateScheduler::new(move |e, lr| if e == 1 { bad } else { lr }))
                    .verbose(0),
            )
            .unwrap_err();
        assert!(matches!(err, Error::InvalidValue { .. }), "{bad}: {err}");
        assert!(err.to_string().contains("epoch 1"), "{err}");
    }
}

#[test]
fn validation_freq_validates_every_nth_epoch() {
    let (x, y) = data(64, 8);
    let (vx, vy) = data(24, 9);
    for device in devices() {
        let logs = RefCell::new(Vec::new());
        let mut m = model(&device, 0.01);
        let mut es = EarlyStopping::new().patience(1);
        let h = m
            .fit(
                &x,
                &y,
                Fit::new()
                    .validation_data(&vx, &vy)
                    .validation_freq(2)
                    .epochs(5)
                    .shuffle(false)
                    .callback(&mut es)
                    .callback(ReduceLROnPlateau::new().patience(1))
                    .callback(Recorder(&logs))
                    .verbose(0),
            )
            .unwrap();
        let logs = logs.into_inner();
        assert_eq!(logs.len(), h.epochs());
        for (e, l) in logs.iter().enumerate() {
            let validated = (e + 1) % 2 == 0;
            assert_eq!(l.get("val_loss").is_some(), validated, "epoch {e}: {:?}", l.keys().collect::<Vec<_>>());
            assert_eq!(l.get("val_mae").is_some(), validated);
            assert!(l.get("loss").is_some() && l.get("learning_rate").is_some());
            // The History is a table: NaN where Keras's list has no entry.
            assert_eq!(h.get("val_loss").unwrap()[e].is_nan(), !validated, "epoch {e}");
        }
        // EarlyStopping only judged the validated epochs: its best is one of them.
        assert!(es.best_epoch().is_some_and(|b| b % 2 == 1), "{:?}", es.best_epoch());

        // Validation does not change training; the validated epochs' values equal a fit that
        // validates every epoch.
        let mut every = model(&device, 0.01);
        let h1 = every.fit(&x, &y, Fit::new().validation_data(&vx, &vy).epochs(4).shuffle(false).verbose(0)).unwrap();
        let mut second = model(&device, 0.01);
        let h2 = second
            .fit(&x, &y, Fit::new().validation_data(&vx, &vy).validation_freq(2).epochs(4).shuffle(false).verbose(0))
            .unwrap();
        let tol = common::Tol { rel: 1e-5, abs: 1e-7 };
        tol.check("loss", h2.get("loss").unwrap(), h1.get("loss").unwrap());
        for e in [1usize, 3] {
            tol.check("val_loss", &[h2.get("val_loss").unwrap()[e]], &[h1.get("val_loss").unwrap()[e]]);
        }
        // A validation_freq past the last epoch: no val_ values at all, but no error either.
        let h3 = model(&device, 0.01)
            .fit(&x, &y, Fit::new().validation_data(&vx, &vy).validation_freq(10).epochs(2).verbose(0))
            .unwrap();
        assert!(h3.get("val_loss").is_none_or(|v| v.iter().all(|x| x.is_nan())));
    }
    let err = model(&Device::cpu(), 0.01)
        .fit(&x, &y, Fit::new().validation_data(&x, &y).validation_freq(0).verbose(0))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidValue { .. }), "{err}");
}

/// `wgfit train --checkpoint TEMPLATE`: one model file per epoch, with the preprocessing, so
/// `wgfit predict --model` reads raw CSV rows with it; `--checkpoint-best-only` writes fewer.
#[test]
fn cli_train_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data").join("concrete.csv");
    let template = dir.path().join("ckpt-{epoch:02d}-{val_loss:.4f}.json");
    let out = assert_cmd::Command::cargo_bin("wgfit")
        .unwrap()
        .env("XDG_RUNTIME_DIR", "/tmp")
        .args(["train", "--data", data.to_str().unwrap(), "--layers", "8", "--epochs", "3"])
        .args(["--validation-split", "0.3", "--device", "cpu", "--verbose", "0", "--json"])
        .args(["--checkpoint", template.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let val: Vec<f64> = v["history"]["val_loss"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    let names = listing(dir.path());
    let want: Vec<String> = (0..3).map(|e| format!("ckpt-{:02}-{:.4}.json", e + 1, val[e])).collect();
    assert_eq!(names, want);
    let pred = assert_cmd::Command::cargo_bin("wgfit")
        .unwrap()
        .env("XDG_RUNTIME_DIR", "/tmp")
        .args(["predict", "--model", dir.path().join(&want[2]).to_str().unwrap(), "--data", data.to_str().unwrap()])
        .args(["--device", "cpu"])
        .output()
        .unwrap();
    assert!(pred.status.success(), "{}", String::from_utf8_lossy(&pred.stderr));
    assert_eq!(String::from_utf8_lossy(&pred.stdout).lines().count(), 1031);

    let best = dir.path().join("best.json");
    let out = assert_cmd::Command::cargo_bin("wgfit")
        .unwrap()
        .env("XDG_RUNTIME_DIR", "/tmp")
        .args(["train", "--data", data.to_str().unwrap(), "--layers", "8", "--epochs", "2", "--device", "cpu"])
        .args(["--verbose", "0", "--checkpoint", best.to_str().unwrap(), "--checkpoint-best-only"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(best.exists());
    // A bad template is a one-line error.
    let out = assert_cmd::Command::cargo_bin("wgfit")
        .unwrap()
        .env("XDG_RUNTIME_DIR", "/tmp")
        .args(["train", "--data", data.to_str().unwrap(), "--layers", "8", "--epochs", "1", "--device", "cpu"])
        .args(["--verbose", "0", "--checkpoint", "{bogus}.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bogus") && !stderr.contains("panicked"), "{stderr}");
}
