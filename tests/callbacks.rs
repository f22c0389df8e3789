//! Callbacks (EarlyStopping, TerminateOnNaN, ReduceLROnPlateau, CsvLogger), the fit loop's use of
//! them, and the History's plots and serializations.

use wgfit::callbacks::Mode;
use wgfit::{
    data, BatchNormalization, Callback, CsvLogger, Dense, Device, EarlyStopping, Error, Fit, History, Logs,
    ReduceLROnPlateau, Sequential, Sgd, TerminateOnNaN, TrainContext,
};

/// The GPU. These tests never skip: with no adapter they fail and say how to get one.
fn gpu() -> Device {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", "/tmp");
    }
    match Device::gpu() {
        Ok(d) => d,
        Err(e) => panic!(
            "GPU tests need a wgpu adapter and none was found ({e}). On Debian/Ubuntu install Mesa's \
             software Vulkan driver: `sudo apt-get install -y mesa-vulkan-drivers`"
        ),
    }
}

fn devices() -> Vec<(&'static str, Device)> {
    vec![("gpu", gpu()), ("cpu", Device::cpu())]
}

fn tmp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("wgfit-callbacks-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Feeds `values` (one per epoch) to `es` as fit would; returns the epoch it stopped at.
fn run_script(mut es: EarlyStopping, values: &[f32]) -> (Option<usize>, EarlyStopping) {
    es.reset();
    for (epoch, v) in values.iter().enumerate() {
        if es.observe(epoch, *v) {
            return (Some(epoch), es);
        }
    }
    (None, es)
}

// Expected stop epochs below were obtained by running Keras 3's keras.callbacks.EarlyStopping on the
// same sequences (a stub model that only records stop_training).

#[test]
fn early_stopping_patience() {
    let (stop, es) = run_script(EarlyStopping::new().patience(2), &[1.0, 0.9, 0.95, 0.96, 0.5]);
    assert_eq!(stop, Some(3));
    assert_eq!(es.best_epoch(), Some(1));
    // patience 0 stops at the first epoch without improvement, never at epoch 0.
    assert_eq!(run_script(EarlyStopping::new(), &[1.0, 1.1, 0.5]).0, Some(1));
    assert_eq!(run_script(EarlyStopping::new(), &[1.0, 0.9, 0.8, 0.7]).0, None);
    assert_eq!(run_script(EarlyStopping::new().patience(3), &[1.0, 1.0, 1.0, 1.0, 1.0]).0, Some(3));
}

#[test]
fn early_stopping_min_delta() {
    // 0.95 improves by less than 0.1: no improvement.
    assert_eq!(run_script(EarlyStopping::new().min_delta(0.1).patience(1), &[1.0, 0.95, 0.85]).0, Some(1));
    // The delta's sign is ignored, as Keras's abs().
    assert_eq!(run_script(EarlyStopping::new().min_delta(-0.1).patience(1), &[1.0, 0.95, 0.85]).0, Some(1));
    // Gains below min_delta do not count, but they are measured from the best, so they add up.
    assert_eq!(run_script(EarlyStopping::new().min_delta(0.01).patience(3), &[1.0, 0.995, 0.99, 0.985, 0.98]).0, None);
    let (stop, es) = run_script(EarlyStopping::new().min_delta(0.01).patience(3), &[1.0, 0.995, 0.993, 0.992, 0.991]);
    assert_eq!(stop, Some(3));
    assert_eq!(es.best_epoch(), Some(0));
    // ... and an improvement by more than min_delta does.
    let v = [1.0, 0.98, 0.975, 0.96, 0.959, 0.958, 0.957];
    assert_eq!(run_script(EarlyStopping::new().min_delta(0.01).patience(3), &v).0, Some(6));
}

#[test]
fn early_stopping_baseline() {
    // Improving but never beating the baseline: the counter is not reset, and the stop comes at
    // the first epoch that does not improve once wait >= patience.
    let v = [1.0, 0.9, 0.8, 0.85];
    assert_eq!(run_script(EarlyStopping::new().patience(3).baseline(0.5), &v).0, Some(3));
    assert_eq!(run_script(EarlyStopping::new().patience(3), &v).0, None);
    // Beating the baseline resets the counter.
    let v = [1.0, 0.4, 0.45, 0.46, 0.47];
    assert_eq!(run_script(EarlyStopping::new().patience(3).baseline(0.5), &v).0, Some(4));
    // Improvement always wins over the stop check (Keras returns early on an improvement).
    let v = [1.0, 0.9, 0.8, 0.7, 0.6];
    assert_eq!(run_script(EarlyStopping::new().patience(1).baseline(0.1), &v).0, None);
}

#[test]
fn early_stopping_start_from_epoch() {
    // Epochs before start_from_epoch are ignored entirely.
    let v = [5.0, 4.0, 3.0, 9.0, 9.0, 9.0];
    let (stop, es) = run_script(EarlyStopping::new().patience(1).start_from_epoch(3), &v);
    assert_eq!(stop, Some(4));
    assert_eq!(es.best_epoch(), Some(3));
    assert_eq!(run_script(EarlyStopping::new().patience(1), &v).0, Some(3));
}

#[test]
fn early_stopping_mode() {
    // auto: accuracy-like keys are maximized.
    let v = [0.5, 0.6, 0.6, 0.55];
    let es = EarlyStopping::new().monitor("val_binary_accuracy").patience(2);
    assert_eq!(run_script(es, &v).0, Some(3));
    assert_eq!(run_script(EarlyStopping::new().monitor("val_loss").patience(2), &v).0, Some(2));
    assert_eq!(run_script(EarlyStopping::new().monitor("accuracy").mode(Mode::Min).patience(1), &v).0, Some(1));
    assert_eq!(run_script(EarlyStopping::new().monitor("val_loss").mode(Mode::Max).patience(1), &v).0, Some(2));
    assert!(Mode::Auto.maximizes("val_accuracy") && Mode::Auto.maximizes("binary_accuracy"));
    assert!(!Mode::Auto.maximizes("val_mae") && !Mode::Auto.maximizes("loss"));
    assert_eq!("max".parse::<Mode>().unwrap(), Mode::Max);
    assert!("upward".parse::<Mode>().is_err());
}

fn concrete_model(device: &Device, bn: bool) -> Sequential {
    let mut layers = vec![Dense::new(16).activation("relu").input_shape(8)];
    if bn {
        layers.push(BatchNormalization::new());
    }
    layers.push(Dense::new(16).activation("relu"));
    layers.push(Dense::new(1));
    Sequential::new(device, layers).seed(3)
}

#[test]
fn restore_best_weights_gives_the_best_epochs_val_loss() {
    let (xt, yt, xv, yv) = data::shipped::concrete().unwrap();
    for (name, device) in devices() {
        for bn in [false, true] {
            let mut model = concrete_model(&device, bn);
            model.compile("adam", "mae", &["mse"]).unwrap();
            // Max mode on val_loss: the first epoch (highest loss) is "best", so the restore must
            // bring back weights (and BatchNormalization's moving statistics) many epochs old.
            let mut es = EarlyStopping::new().mode(Mode::Max).patience(4).restore_best_weights(true);
            let h = model
                .fit(
                    &xt,
                    &yt,
                    Fit::new().validation_data(&xv, &yv).batch_size(64).epochs(30).verbose(0).callback(&mut es),
                )
                .unwrap();
            let best = h.best_epoch.expect("best_epoch is set when EarlyStopping ran");
            assert_eq!(Some(best), es.best_epoch());
            assert_eq!(h.stopped_epoch, es.stopped_epoch());
            assert!(h.epochs() > best + 2, "{name}: the best epoch should be well before the last");
            let want = h["val_loss"][best];
            let last = *h["val_loss"].last().unwrap();
            assert!((want - last).abs() > 0.5, "{name}: test needs the best and last epochs to differ");
            let got = model.evaluate(&xv, &yv).unwrap();
            assert_eq!(got[0].0, "loss");
            let rel = ((got[0].1 - want) / want).abs();
            assert!(rel < 1e-5, "{name} bn={bn}: evaluate after restore {} != val_loss at best epoch {want}", got[0].1);
            let mse = got.iter().find(|(k, _)| k == "mse").unwrap().1;
            assert!(((mse - h["val_mse"][best]) / h["val_mse"][best]).abs() < 1e-5);
        }
    }
}

#[test]
fn restore_best_weights_at_train_end_without_stopping() {
    // Keras 3 restores at train end whenever a best snapshot exists, also when all epochs ran.
    let (xt, yt, xv, yv) = data::shipped::concrete().unwrap();
    for (name, device) in devices() {
        let mut model = concrete_model(&device, false);
        model.compile("adam", "mae", &[]).unwrap();
        let mut es = EarlyStopping::new().mode(Mode::Max).patience(1000).restore_best_weights(true);
        let h = model
            .fit(&xt, &yt, Fit::new().validation_data(&xv, &yv).batch_size(128).epochs(8).verbose(0).callback(&mut es))
            .unwrap();
        assert_eq!(h.epochs(), 8);
        assert_eq!(h.stopped_epoch, None);
        let best = h.best_epoch.unwrap();
        let got = model.evaluate(&xv, &yv).unwrap()[0].1;
        let want = h["val_loss"][best];
        assert!(((got - want) / want).abs() < 1e-5, "{name}: {got} vs {want}");
    }
}

fn ionosphere_run(device: &Device, callbacks: bool) -> (History, f64) {
    let (xt, yt, xv, yv) = data::shipped::ionosphere().unwrap();
    let mut model = Sequential::new(
        device,
        vec![
            Dense::new(4).activation("relu").input_shape(33),
            Dense::new(4).activation("relu"),
            Dense::new(1).activation("sigmoid"),
        ],
    );
    model.compile("adam", "binary_crossentropy", &["binary_accuracy"]).unwrap();
    let mut fit = Fit::new().validation_data(&xv, &yv).batch_size(512).epochs(1000).verbose(0);
    if callbacks {
        fit = fit.callback(EarlyStopping::new().patience(10).min_delta(0.001).restore_best_weights(true));
    }
    let t = std::time::Instant::now();
    let h = model.fit(&xt, &yt, fit).unwrap();
    let ms = t.elapsed().as_secs_f64() * 1e3 / h.epochs() as f64;
    if callbacks {
        let best = h.best_epoch.unwrap();
        let got = model.evaluate(&xv, &yv).unwrap();
        assert!(((got[0].1 - h["val_loss"][best]) / h["val_loss"][best]).abs() < 1e-5);
    }
    (h, ms)
}

#[test]
fn ionosphere_early_stopping_stops_well_before_1000_epochs() {
    for (name, device) in devices() {
        let (h, ms) = ionosphere_run(&device, true);
        let stopped = h.stopped_epoch.expect("EarlyStopping should stop the 1000-epoch run");
        let best = h.best_epoch.unwrap();
        assert!(stopped < 900, "{name}: stopped at epoch {stopped}");
        assert!(stopped >= best + 10);
        assert!(h.stop_reason.as_deref().unwrap().contains("EarlyStopping"));
        eprintln!(
            "[ionosphere {name}] stopped at epoch {} (1-based), best epoch {}, best val_loss {:.4}, \
             val_binary_accuracy {:.4}, {ms:.2} ms/epoch",
            stopped + 1,
            best + 1,
            h["val_loss"][best],
            h["val_binary_accuracy"][best]
        );
    }
}

/// Not a correctness test: the per-epoch cost of the callback machinery, printed for the notes.
/// Run with `cargo test --release --test callbacks -- --ignored --nocapture`.
/// 1. Whole fits of 300 ionosphere epochs with and without EarlyStopping(restore_best_weights:
///    a device-side snapshot copy after every improvement) + TerminateOnNaN + ReduceLROnPlateau,
///    interleaved, 5 runs each, min and median ms/epoch.
/// 2. The hooks alone (host side): the three callbacks' on_epoch_end over 100k scripted epochs.
#[test]
#[ignore]
fn callback_overhead_figures() {
    let (xt, yt, xv, yv) = data::shipped::ionosphere().unwrap();
    for (name, device) in devices() {
        let mut times: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        for round in 0..10 {
            let with = round % 2 == 1;
            let mut model = Sequential::new(
                &device,
                vec![
                    Dense::new(4).activation("relu").input_shape(33),
                    Dense::new(4).activation("relu"),
                    Dense::new(1).activation("sigmoid"),
                ],
            );
            model.compile("adam", "binary_crossentropy", &["binary_accuracy"]).unwrap();
            let mut fit = Fit::new().validation_data(&xv, &yv).batch_size(512).epochs(300).verbose(0);
            if with {
                // Never stops (patience > epochs), improves often: the worst case for snapshot copies.
                fit = fit
                    .callback(EarlyStopping::new().patience(10_000).restore_best_weights(true))
                    .callback(TerminateOnNaN::new())
                    .callback(ReduceLROnPlateau::new().patience(10_000));
            }
            let t = std::time::Instant::now();
            let h = model.fit(&xt, &yt, fit).unwrap();
            times[usize::from(with)].push(t.elapsed().as_secs_f64() * 1e3 / h.epochs() as f64);
        }
        for (with, t) in times.iter_mut().enumerate() {
            t.sort_by(f64::total_cmp);
            eprintln!(
                "[overhead {name}] callbacks={}: min {:.3} median {:.3} ms/epoch (5 fits of 300 epochs)",
                with == 1,
                t[0],
                t[t.len() / 2]
            );
        }
    }
    let mut cbs: Vec<Box<dyn Callback>> = vec![
        Box::new(EarlyStopping::new().patience(10_000).restore_best_weights(true)),
        Box::new(TerminateOnNaN::new()),
        Box::new(ReduceLROnPlateau::new().patience(10_000)),
    ];
    let ctx_keys = ["loss", "binary_accuracy", "val_loss", "val_binary_accuracy"];
    let n = 100_000;
    let t = std::time::Instant::now();
    let mut total = 0usize;
    for cb in cbs.iter_mut() {
        let mut ctx = TrainContext::detached(n, &ctx_keys, 1e-3);
        cb.on_train_begin(&mut ctx).unwrap();
        for e in 0..n {
            let mut logs = Logs::new();
            for (i, k) in ctx_keys.iter().enumerate() {
                logs.insert(k, 1.0 / (e + i + 1) as f32);
            }
            cb.on_epoch_end(e, &mut logs, &mut ctx).unwrap();
            total += logs.len();
        }
    }
    eprintln!(
        "[overhead hooks] {:.3} us/epoch for the three callbacks' on_epoch_end, logs included ({total})",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
}

#[test]
fn terminate_on_nan_stops_a_diverging_fit_and_names_the_epoch() {
    let (xt, yt, _, _) = data::shipped::concrete().unwrap();
    for (name, device) in devices() {
        let mut model = concrete_model(&device, false);
        model.compile(Sgd::new(1e12), "mse", &[]).unwrap();
        let mut t = TerminateOnNaN::new();
        let h = model.fit(&xt, &yt, Fit::new().batch_size(32).epochs(50).verbose(0).callback(&mut t)).unwrap();
        let e = h.stopped_epoch.expect("TerminateOnNaN should stop");
        assert_eq!(Some(e), t.stopped_epoch());
        assert!(e < 49, "{name}: stopped at {e}");
        assert_eq!(h.epochs(), e + 1);
        assert!(!h["loss"][e].is_finite());
        assert!(h["loss"][..e].iter().all(|v| v.is_finite()));
        let reason = h.stop_reason.unwrap();
        assert!(reason.contains(&format!("Epoch {}", e + 1)), "{name}: {reason}");

        // Without the callback, the same fit is an error naming the epoch.
        let mut model = concrete_model(&device, false);
        model.compile(Sgd::new(1e12), "mse", &[]).unwrap();
        match model.fit(&xt, &yt, Fit::new().batch_size(32).epochs(50).verbose(0)) {
            Err(Error::Diverged { epoch, .. }) => assert_eq!(epoch, e, "{name}"),
            other => panic!("{name}: expected Diverged, got {other:?}"),
        }
    }
}

#[test]
fn reduce_lr_on_plateau_lowers_the_learning_rate() {
    let (xt, yt, _, _) = data::shipped::concrete().unwrap();
    let mut model = concrete_model(&Device::cpu(), false);
    model.compile("adam", "mae", &[]).unwrap();
    // min_delta so large nothing after the first epoch counts as an improvement.
    let cb = ReduceLROnPlateau::new().monitor("loss").min_delta(1e9).patience(2).factor(0.5).cooldown(1).min_lr(1e-4);
    let h = model.fit(&xt, &yt, Fit::new().batch_size(256).epochs(12).verbose(0).callback(cb)).unwrap();
    let lr = h.require("learning_rate").unwrap();
    // Logged before each epoch's decision, as in Keras 3. Epoch 0 improves (from +inf); 1, 2 wait;
    // reduce at 2; epoch 3 ends the cooldown and already counts (Keras decrements the cooldown
    // before the check); reduce at 4, 6, 8 (to min_lr), then no more.
    let want = [1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4, 1.25e-4, 1.25e-4, 1e-4, 1e-4, 1e-4];
    for (i, (g, w)) in lr.iter().zip(want).enumerate() {
        assert!((g - w).abs() < 1e-9, "epoch {i}: lr {g}, want {w} (all: {lr:?})");
    }
    assert_eq!(h.epochs(), 12);
    // The next fit starts from the reduced rate (min_lr reached after the last reduction).
    let h = model
        .fit(
            &xt,
            &yt,
            Fit::new().batch_size(256).epochs(1).verbose(0).callback(ReduceLROnPlateau::new().monitor("loss")),
        )
        .unwrap();
    assert!((h["learning_rate"][0] - 1e-4).abs() < 1e-9);
}

#[test]
fn missing_monitor_key_is_an_error_before_training() {
    let (xt, yt, _, _) = data::shipped::concrete().unwrap();
    let mut model = concrete_model(&Device::cpu(), false);
    model.compile("adam", "mae", &[]).unwrap();
    let before = model.get_weights().unwrap();
    let err = model.fit(&xt, &yt, Fit::new().epochs(5).verbose(0).callback(EarlyStopping::new())).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("val_loss") && msg.contains("validation_data"), "{msg}");
    assert_eq!(model.get_weights().unwrap(), before, "no epoch should have run");
    // A typo is caught at the end of the first epoch, naming the keys there are.
    let (xv, yv) = (xt.clone(), yt.clone());
    let fit = Fit::new().validation_data(&xv, &yv).epochs(5).verbose(0);
    let err = model.fit(&xt, &yt, fit.callback(EarlyStopping::new().monitor("val_los"))).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("\"val_los\"") && msg.contains("val_loss"), "{msg}");
    let fit = Fit::new().validation_data(&xv, &yv).epochs(5).verbose(0);
    let err = model.fit(&xt, &yt, fit.callback(ReduceLROnPlateau::new().monitor("mae"))).unwrap_err();
    assert!(err.to_string().contains("ReduceLROnPlateau monitors \"mae\""), "{err}");
}

/// A user callback: counts hooks, stops at epoch 2, adds a log key.
#[derive(Default)]
struct Counter {
    begins: usize,
    ends: usize,
    train: (usize, usize),
}

impl Callback for Counter {
    fn on_train_begin(&mut self, _ctx: &mut TrainContext) -> wgfit::Result<()> {
        self.train.0 += 1;
        Ok(())
    }
    fn on_epoch_begin(&mut self, _epoch: usize, _ctx: &mut TrainContext) -> wgfit::Result<()> {
        self.begins += 1;
        Ok(())
    }
    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, ctx: &mut TrainContext) -> wgfit::Result<()> {
        self.ends += 1;
        assert!(logs.get("loss").is_some() && logs.get("val_loss").is_some());
        logs.insert("double_loss", 2.0 * logs.get("loss").unwrap());
        if epoch == 2 {
            ctx.stop_training("enough");
        }
        Ok(())
    }
    fn on_train_end(&mut self, _logs: &Logs, _ctx: &mut TrainContext) -> wgfit::Result<()> {
        self.train.1 += 1;
        Ok(())
    }
}

#[test]
fn user_callbacks_see_every_hook_and_can_stop() {
    let (xt, yt, xv, yv) = data::shipped::concrete().unwrap();
    let dir = tmp_dir("csv");
    let csv = dir.join("log.csv");
    let mut model = concrete_model(&Device::cpu(), false);
    model.compile("adam", "mae", &["mse"]).unwrap();
    let mut c = Counter::default();
    let h = model
        .fit(
            &xt,
            &yt,
            Fit::new()
                .validation_data(&xv, &yv)
                .epochs(10)
                .verbose(0)
                .callback(&mut c)
                .callbacks(vec![Box::new(CsvLogger::new(&csv))]),
        )
        .unwrap();
    assert_eq!((c.begins, c.ends, c.train), (3, 3, (1, 1)));
    assert_eq!(h.epochs(), 3);
    assert_eq!(h.stopped_epoch, Some(2));
    assert_eq!(h.stop_reason.as_deref(), Some("enough"));
    assert_eq!(h["double_loss"][1], 2.0 * h["loss"][1]);
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "epoch,double_loss,loss,mse,val_loss,val_mse");
    assert_eq!(lines.len(), 4);
    assert!(lines[3].starts_with("2,"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn history_plots_svg_and_png_and_serializes() {
    let (xt, yt, xv, yv) = data::shipped::concrete().unwrap();
    let mut model = concrete_model(&Device::cpu(), false);
    model.compile("adam", "mae", &["mse"]).unwrap();
    let h = model
        .fit(
            &xt,
            &yt,
            Fit::new()
                .validation_data(&xv, &yv)
                .batch_size(128)
                .epochs(12)
                .verbose(0)
                .callback(EarlyStopping::new().patience(3).restore_best_weights(true)),
        )
        .unwrap();
    assert!(h.best_epoch.is_some());
    let dir = tmp_dir("plot");
    let svg = dir.join("curves.svg");
    h.plot(&svg).unwrap();
    let text = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("the SVG is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let lines = doc.descendants().filter(|n| matches!(n.tag_name().name(), "polyline" | "path")).count();
    // loss, val_loss, mse, val_mse: a curve each (plus legend samples and best-epoch markers).
    assert!(lines >= 4, "{lines} polylines/paths");
    let texts: Vec<&str> =
        doc.descendants().filter(|n| n.tag_name().name() == "text").filter_map(|n| n.text()).map(str::trim).collect();
    for want in ["loss", "val_loss", "mse", "val_mse", "epoch"] {
        assert!(texts.contains(&want), "no {want:?} label in {texts:?}");
    }
    assert!(texts.iter().any(|t| t.starts_with("best epoch")), "best epoch not marked: {texts:?}");
    // No temporary file left beside it.
    let names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names, vec!["curves.svg".to_string()]);

    let png = dir.join("curves.png");
    h.plot(&png).unwrap();
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 1000);
    assert!(h.plot(dir.join("curves.bmp2")).is_err());

    let back = History::from_json(&h.to_json()).unwrap();
    assert_eq!(back, h);
    assert!(History::from_json("{\"keys\": [\"loss\"], \"values\": []}").is_err());
    let csv = h.to_csv();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "epoch,loss,mse,val_loss,val_mse");
    assert_eq!(rows.len(), h.epochs() + 1);
    assert_eq!(rows[1].split(',').nth(1).unwrap().parse::<f32>().unwrap(), h["loss"][0]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn two_callbacks_keep_separate_weight_snapshots() {
    // B (val_mse, min) keeps improving late; A (val_loss, max) keeps epoch 0. Restores run in
    // callback order at train end, so the model ends with A's weights, which only holds if the two
    // snapshots live in different buffers.
    let (xt, yt, xv, yv) = data::shipped::concrete().unwrap();
    for (name, device) in devices() {
        for _ in 0..2 {
            let mut model = concrete_model(&device, true);
            model.compile("adam", "mae", &["mse"]).unwrap();
            let mut a = EarlyStopping::new().mode(Mode::Max).patience(100).restore_best_weights(true);
            let mut b = EarlyStopping::new().monitor("val_mse").patience(100).restore_best_weights(true);
            let h = model
                .fit(
                    &xt,
                    &yt,
                    Fit::new()
                        .validation_data(&xv, &yv)
                        .batch_size(64)
                        .epochs(10)
                        .verbose(0)
                        .callback(&mut b)
                        .callback(&mut a),
                )
                .unwrap();
            assert_eq!(a.best_epoch(), Some(0));
            assert!(b.best_epoch().unwrap() > 3, "{name}: val_mse should improve past epoch 3");
            let got = model.evaluate(&xv, &yv).unwrap()[0].1;
            let want = h["val_loss"][0];
            assert!(((got - want) / want).abs() < 1e-5, "{name}: {got} vs val_loss at epoch 0 {want}");
        }
    }
}

#[test]
fn csv_logger_appends_without_a_second_header_and_json_keeps_nan() {
    let (xt, yt, _, _) = data::shipped::concrete().unwrap();
    let dir = tmp_dir("append");
    let path = dir.join("log.csv");
    let mut model = concrete_model(&Device::cpu(), false);
    model.compile("adam", "mae", &[]).unwrap();
    for append in [false, true] {
        let fit = Fit::new().batch_size(256).epochs(2).verbose(0);
        model.fit(&xt, &yt, fit.callback(CsvLogger::new(&path).append(append))).unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().collect::<Vec<_>>().len(), 5, "{text}");
    assert_eq!(text.lines().filter(|l| l.starts_with("epoch")).count(), 1, "{text}");
    assert!(model.fit(&xt, &yt, Fit::new().verbose(0).callback(CsvLogger::new(dir.join("no/such/dir.csv")))).is_err());

    // A diverged History round-trips through JSON (NaN as null) and CSV.
    let mut model = concrete_model(&Device::cpu(), false);
    model.compile(Sgd::new(1e12), "mse", &[]).unwrap();
    let h = model.fit(&xt, &yt, Fit::new().epochs(20).verbose(0).callback(TerminateOnNaN::new())).unwrap();
    let back = History::from_json(&h.to_json()).unwrap();
    assert_eq!(back.stopped_epoch, h.stopped_epoch);
    assert_eq!(back.stop_reason, h.stop_reason);
    let (a, b) = (&h["loss"], &back["loss"]);
    assert!(a.iter().zip(b).all(|(x, y)| x == y || (!x.is_finite() && y.is_nan())));
    h.plot(dir.join("diverged.svg")).unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
