//! Faults during training (issue 7): a loss that turns NaN/inf, the GPU's timeout, requests larger
//! than the GPU allows, sizes that overflow. Each comes back as an `Error` (or a callback's stop),
//! never a panic or a hang, and leaves the model usable.
//!
//! The tests run one at a time (a lock): the timeout test lowers its device's GPU timeout
//! (`WGFIT_GPU_TIMEOUT_S`, read once when a device opens) while it runs.

mod common;

use std::sync::Mutex;

use wgfit::{data, Dense, Device, EarlyStopping, Error, Fit, Matrix, Sequential, Sgd, TerminateOnNaN, TrainContext};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn devices() -> Vec<(&'static str, Device)> {
    vec![("gpu", common::gpu()), ("cpu", Device::cpu())]
}

/// Sets the learning rate to `lr` at the start of epoch `at`: training is sane until then and
/// diverges after.
struct BlowUpAt {
    at: usize,
    lr: f32,
}

impl wgfit::Callback for BlowUpAt {
    fn on_epoch_begin(&mut self, epoch: usize, ctx: &mut TrainContext) -> wgfit::Result<()> {
        if epoch == self.at {
            ctx.set_learning_rate(self.lr)?;
        }
        Ok(())
    }
}

fn model(device: &Device) -> Sequential {
    let mut m = Sequential::new(device, vec![Dense::new(16).activation("relu").input_shape(8), Dense::new(1)]).seed(4);
    m.compile(Sgd::new(0.01), "mse", &["mae"]).unwrap();
    m
}

fn all_finite(m: &mut Sequential) -> bool {
    let (p, s) = m.get_weights().unwrap();
    p.iter().chain(&s).all(|v| v.is_finite())
}

#[test]
fn a_diverging_fit_is_an_error_naming_the_epoch() {
    let _g = serial();
    let (x, y, _, _) = data::shipped::concrete().unwrap();
    // Targets up to ~80 (concrete strength, unscaled): SGD at 1e10 overflows within an epoch or two.
    for (name, device) in devices() {
        let mut m = model(&device);
        let fit = Fit::new().epochs(30).batch_size(64).verbose(0).callback(BlowUpAt { at: 3, lr: 1e10 });
        match m.fit(&x, &y, fit) {
            Err(e @ Error::Diverged { .. }) => {
                let Error::Diverged { ref what, epoch, value } = e else { unreachable!() };
                assert_eq!(what, "loss", "{name}");
                assert!((3..30).contains(&epoch), "{name}: diverged at epoch {epoch}");
                assert!(!value.is_finite(), "{name}: {value}");
                assert!(e.to_string().contains(&format!("epoch {epoch}")), "{name}: {e}");
            }
            other => panic!("{name}: expected Error::Diverged, got {:?}", other.map(|h| h["loss"].to_vec())),
        }
        // From the start (no sane epoch at all): epoch 0.
        let mut m = model(&device);
        let (p0, s0) = m.get_weights().unwrap();
        m.compile(Sgd::new(1e10), "mse", &[]).unwrap();
        match m.fit(&x, &y, Fit::new().epochs(5).batch_size(64).verbose(0)) {
            Err(Error::Diverged { epoch, .. }) => assert!(epoch <= 1, "{name}: {epoch}"),
            other => panic!("{name}: expected Error::Diverged, got {:?}", other.map(|h| h["loss"].to_vec())),
        }
        // The model is not broken for good: with finite weights put back (compile keeps the
        // weights, as in Keras), it trains again.
        assert!(!all_finite(&mut m), "{name}: the diverged weights are not finite");
        m.set_weights(&p0, &s0).unwrap();
        m.compile(Sgd::new(0.01), "mse", &[]).unwrap();
        let h = m.fit(&x, &y, Fit::new().epochs(2).batch_size(64).verbose(0)).unwrap();
        assert!(h["loss"].iter().all(|v| v.is_finite()), "{name}");
    }
}

#[test]
fn early_stopping_keeps_finite_best_weights_when_the_loss_turns_nan() {
    let _g = serial();
    let (x, y, xv, yv) = data::shipped::concrete().unwrap();
    for (name, device) in devices() {
        // With TerminateOnNaN: training stops at the NaN epoch, EarlyStopping restores the best
        // epoch's weights, which the NaN epochs never replaced.
        let mut m = model(&device);
        let mut es = EarlyStopping::new().monitor("loss").patience(100).restore_best_weights(true);
        let mut stop = TerminateOnNaN::new();
        let fit = Fit::new()
            .epochs(40)
            .batch_size(64)
            .verbose(0)
            .callback(BlowUpAt { at: 4, lr: 1e10 })
            .callback(&mut es)
            .callback(&mut stop);
        let h = m.fit(&x, &y, fit).unwrap();
        let stopped = h.stopped_epoch.expect("TerminateOnNaN stops");
        assert!(stopped >= 4, "{name}: stopped at {stopped}");
        assert!(!h["loss"][stopped].is_finite(), "{name}");
        let best = es.best_epoch().unwrap();
        assert!(best < stopped, "{name}: best epoch {best}, stopped {stopped}");
        assert!(all_finite(&mut m), "{name}: the restored weights have NaNs");
        let p = m.predict(&xv).unwrap();
        assert!(p.data().iter().all(|v| v.is_finite()), "{name}");
        let val_loss = m.evaluate(&xv, &yv).unwrap()[0].1;
        assert!(val_loss.is_finite() && val_loss < 1e4, "{name}: {val_loss}");

        // Without TerminateOnNaN, fit ends with Error::Diverged, and EarlyStopping has still put
        // back the best (finite) weights rather than leaving the NaNs in the model.
        let mut m = model(&device);
        let mut es = EarlyStopping::new().monitor("loss").patience(100).restore_best_weights(true);
        let fit =
            Fit::new().epochs(40).batch_size(64).verbose(0).callback(BlowUpAt { at: 4, lr: 1e10 }).callback(&mut es);
        assert!(matches!(m.fit(&x, &y, fit), Err(Error::Diverged { .. })), "{name}");
        assert!(all_finite(&mut m), "{name}: weights after Diverged with restore_best_weights have NaNs");
        assert!(m.predict(&xv).unwrap().data().iter().all(|v| v.is_finite()), "{name}");
    }
}

#[test]
fn gpu_wait_timeout_is_an_error_and_the_model_recovers() {
    let _g = serial();
    let device = common::gpu();
    let x = Matrix::new(4096, 256, (0..4096 * 256).map(|i| (i % 13) as f32 / 13.0).collect()).unwrap();
    let y = Matrix::column((0..4096).map(|i| (i % 5) as f32).collect());
    let mut m = Sequential::new(&device, vec![Dense::new(512).activation("relu").input_shape(256), Dense::new(1)]);
    m.compile(Sgd::new(1e-3), "mse", &[]).unwrap();
    wgfit::testing::set_gpu_timeout(&device, std::time::Duration::ZERO);
    let started = std::time::Instant::now();
    let timed_out = m.fit(&x, &y, Fit::new().epochs(4).batch_size(256).verbose(0));
    let predicted = m.predict(&x);
    wgfit::testing::set_gpu_timeout(&device, std::time::Duration::from_secs(600));
    assert!(started.elapsed().as_secs() < 60, "a zero timeout must not wait");
    // A fast GPU may finish inside a zero timeout; lavapipe never does. Either way, no panic.
    for r in [timed_out.map(|_| ()), predicted.map(|_| ())] {
        if let Err(e) = r {
            assert!(matches!(e, Error::Gpu(_)), "{e:?}");
            assert!(e.to_string().contains("WGFIT_GPU_TIMEOUT_S"), "{e}");
        }
    }
    // With the default timeout again, the same model trains and predicts: the timed-out
    // readback left nothing mapped behind.
    let h = m.fit(&x, &y, Fit::new().epochs(1).batch_size(256).verbose(0)).unwrap();
    assert!(h["loss"][0].is_finite());
    assert_eq!(m.predict(&x).unwrap().rows(), 4096);
}

#[test]
fn requests_beyond_the_device_are_errors() {
    let _g = serial();
    for (name, device) in devices() {
        // 2^31 weights: more than any storage binding of a GPU (on the CPU, 8 GiB might be
        // granted and then filled: not tried here).
        if name == "gpu" {
            let mut m = Sequential::new(&device, vec![Dense::new(1 << 15).input_shape(1 << 16)]);
            match m.compile("sgd", "mse", &[]) {
                Err(Error::Gpu(msg)) => assert!(msg.contains("parameters") && msg.contains("bytes"), "{msg}"),
                other => panic!("{name}: {other:?}"),
            }
        }
        // Sizes whose product overflows: an error, not an overflow or a wrapped size.
        for (units, input) in [(usize::MAX / 2, 3usize), (1 << 40, 1 << 40)] {
            let mut m = Sequential::new(&device, vec![Dense::new(units).input_shape(input)]);
            match m.compile("sgd", "mse", &[]) {
                Err(Error::InvalidValue { name: n, .. }) => assert_eq!(n, "units", "{name}"),
                other => panic!("{name}: {units} x {input}: {other:?}"),
            }
        }
        // A model one layer over what the host can hold.
        let mut m = Sequential::new(&device, vec![Dense::new(1 << 30).input_shape(1 << 30)]);
        assert!(matches!(m.compile("sgd", "mse", &[]), Err(Error::Gpu(_))), "{name}");
    }
}
