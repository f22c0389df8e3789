//! Many models at once: each member of a sweep trains exactly like the same model trained alone
//! with the same settings (bit for bit on the CPU path, within float tolerance on the GPU).

mod common;

use common::{devices, random_vec, rng, Tol};
use wgfit::data;
use wgfit::{
    cross_validate, fold_bounds, Adam, AdamW, BatchNormalization, Callback, Clip, Dense, Device, Dropout,
    EarlyStopping, Error, Fit, History, Layer, LearningRateSchedule, Matrix, Member, Optimizer, ReduceLROnPlateau,
    Rmsprop, Sequential, Sgd, Sweep, TerminateOnNaN,
};

/// GPU members against their solo runs: the same kernels in the same order, so only lavapipe's
/// run-to-run ulps separate them.
const GPU_TOL: Tol = Tol { rel: 1e-6, abs: 1e-6 };

/// What one member is: its layers, optimizer and seed.
#[derive(Clone)]
struct Spec {
    layers: Vec<Layer>,
    optimizer: Optimizer,
    seed: u64,
    loss: &'static str,
    metrics: Vec<&'static str>,
}

impl Spec {
    fn model(&self, device: &Device) -> Sequential {
        let mut m = Sequential::new(device, self.layers.clone()).seed(self.seed);
        m.compile(self.optimizer.clone(), self.loss, &self.metrics).unwrap();
        m
    }
}

fn small_net(width: usize, hidden: usize, out_act: &str) -> Vec<Layer> {
    vec![
        Dense::new(hidden).activation("relu").input_shape(width),
        Dense::new(hidden).activation("relu"),
        Dense::new(1).activation(out_act),
    ]
}

fn bn_dropout_net(width: usize, rate: f32) -> Vec<Layer> {
    vec![
        Dense::new(8).activation("relu").input_shape(width),
        BatchNormalization::new(),
        Dropout::new(rate),
        Dense::new(8).activation("relu"),
        Dropout::new(rate / 2.0),
        Dense::new(1),
    ]
}

fn same_history(what: &str, device: &Device, got: &History, want: &History) {
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "{what}: keys");
    assert_eq!(got.epochs(), want.epochs(), "{what}: epochs");
    assert_eq!(
        (got.best_epoch, got.stopped_epoch),
        (want.best_epoch, want.stopped_epoch),
        "{what}: best/stopped epoch"
    );
    for k in want.keys() {
        let (g, w) = (got.get(k).unwrap(), want.get(k).unwrap());
        if device.is_gpu() {
            GPU_TOL.check(&format!("{what} {k} on {device:?}"), g, w);
        } else {
            let same = g.iter().zip(w).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{what} {k} on the CPU: {g:?} vs solo {w:?}");
        }
    }
}

fn same_weights(what: &str, device: &Device, got: &mut Sequential, want: &mut Sequential) {
    let (gp, gs) = got.get_weights().unwrap();
    let (wp, ws) = want.get_weights().unwrap();
    if device.is_gpu() {
        GPU_TOL.check(&format!("{what} weights"), &gp, &wp);
        GPU_TOL.check(&format!("{what} moving statistics"), &gs, &ws);
    } else {
        assert!(gp.iter().zip(&wp).all(|(a, b)| a.to_bits() == b.to_bits()), "{what}: weights differ from solo");
        assert!(gs.iter().zip(&ws).all(|(a, b)| a.to_bits() == b.to_bits()), "{what}: moving statistics differ");
    }
}

/// Fits `specs` as one sweep and each alone; compares histories and final weights.
/// `callbacks(i)` gives member i's callbacks (made twice: for the sweep and for the solo fit).
#[allow(clippy::too_many_arguments)]
fn check_sweep(
    what: &str,
    device: &Device,
    specs: &[Spec],
    x: &Matrix,
    y: &Matrix,
    valid: Option<(&Matrix, &Matrix)>,
    epochs: usize,
    batch: usize,
    callbacks: &dyn Fn(usize) -> Vec<Box<dyn Callback>>,
) -> Sweep<'static> {
    let fit = || {
        let f = Fit::new().epochs(epochs).batch_size(batch).verbose(0);
        match valid {
            Some((vx, vy)) => f.validation_data(vx, vy),
            None => f,
        }
    };
    let members: Vec<Member> = specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut m = Member::new(s.model(device)).label(format!("{i}"));
            for cb in callbacks(i) {
                m = m.callback(cb);
            }
            m
        })
        .collect();
    let mut sweep = Sweep::new(members).unwrap();
    let report = sweep.fit(x, y, fit()).unwrap();
    assert_eq!(report.members.len(), specs.len());
    for (i, s) in specs.iter().enumerate() {
        let mut solo = s.model(device);
        let h = solo.fit(x, y, fit().callbacks(callbacks(i)).seed(s.seed));
        let label = format!("{what}: member {i} of {}", specs.len());
        match (h, report.members[i].diverged) {
            (Ok(h), None) => same_history(&label, device, &report.members[i].history, &h),
            (Err(Error::Diverged { epoch, .. }), Some((e, _))) => assert_eq!(epoch, e, "{label}: diverged at"),
            (h, d) => panic!("{label}: solo {h:?}, member diverged {d:?}"),
        }
        if report.members[i].diverged.is_none() {
            same_weights(&label, device, sweep.model(i).unwrap(), &mut solo);
        }
    }
    sweep
}

fn none(_: usize) -> Vec<Box<dyn Callback>> {
    Vec::new()
}

const LRS: [f32; 4] = [3e-4, 1e-3, 3e-3, 1e-2];

#[test]
fn members_equal_solo_fits_with_adam_learning_rates_and_seeds() {
    let (xt, yt, xv, yv) = data::shipped::ionosphere().unwrap();
    for device in devices() {
        for k in [1usize, 2, 7, 64] {
            // K = 64 on lavapipe: two epochs keep the 64 solo runs short.
            let epochs = if k == 64 && device.is_gpu() { 2 } else { 3 };
            let specs: Vec<Spec> = (0..k)
                .map(|i| Spec {
                    layers: small_net(33, 6, "sigmoid"),
                    optimizer: Adam { learning_rate: LRS[i % 4], beta_1: [0.9, 0.8][i % 2], ..Adam::default() }.into(),
                    seed: (i / 4) as u64,
                    loss: "binary_crossentropy",
                    metrics: vec!["accuracy"],
                })
                .collect();
            check_sweep(&format!("adam K={k}"), &device, &specs, &xt, &yt, Some((&xv, &yv)), epochs, 32, &none);
        }
    }
}

#[test]
fn members_equal_solo_fits_with_sgd_momentum_dropout_and_batchnorm() {
    let (xt, yt, xv, yv) = data::shipped::concrete().unwrap();
    for device in devices() {
        let specs: Vec<Spec> = (0..7)
            .map(|i| Spec {
                layers: bn_dropout_net(8, [0.0, 0.2, 0.5][i % 3]),
                optimizer: Sgd {
                    learning_rate: [0.01, 0.003][i % 2],
                    momentum: [0.0, 0.9, 0.5][i % 3],
                    nesterov: i % 4 == 3,
                    ..Sgd::default()
                }
                .into(),
                seed: 10 + i as u64,
                loss: "mse",
                metrics: vec!["mae"],
            })
            .collect();
        check_sweep("sgd + dropout + batchnorm K=7", &device, &specs, &xt, &yt, Some((&xv, &yv)), 3, 64, &none);
    }
}

/// RMSprop, AdamW and Adam members whose hyperparameters, clipping, weight decay and schedules
/// differ per member (the member table) each equal their solo fit; a sweep groups members of
/// one optimizer kind into a plan.
#[test]
fn members_equal_solo_fits_with_rmsprop_adamw_clipping_and_schedules() {
    let (xt, yt, xv, yv) = data::shipped::concrete().unwrap();
    let clips = [Clip::None, Clip::Norm(0.5), Clip::GlobalNorm(1.0), Clip::Value(0.1)];
    for device in devices() {
        let specs: Vec<Spec> = (0..8)
            .map(|i| {
                let optimizer: Optimizer = match i % 3 {
                    0 => Rmsprop {
                        learning_rate: [0.01, 0.003][i % 2],
                        rho: [0.9, 0.5][i % 2],
                        momentum: [0.0, 0.5][(i / 3) % 2],
                        centered: i % 2 == 1,
                        clip: clips[i % 4],
                        ..Rmsprop::default()
                    }
                    .into(),
                    1 => AdamW {
                        weight_decay: [0.004, 0.1][i % 2],
                        amsgrad: i % 4 == 1,
                        clip: clips[i % 4],
                        schedule: (i == 4).then(|| LearningRateSchedule::cosine_decay(0.01, 20)),
                        ..AdamW::default()
                    }
                    .into(),
                    _ => Adam {
                        amsgrad: i % 2 == 0,
                        weight_decay: (i == 5).then_some(0.05),
                        clip: clips[i % 4],
                        ..Adam::new(0.01)
                    }
                    .into(),
                };
                Spec {
                    layers: bn_dropout_net(8, 0.2),
                    optimizer,
                    seed: 20 + i as u64,
                    loss: "mse",
                    metrics: vec!["mae"],
                }
            })
            .collect();
        check_sweep("rmsprop/adamw/adam K=8", &device, &specs, &xt, &yt, Some((&xv, &yv)), 2, 64, &none);
    }
}

#[test]
fn members_stop_at_their_own_epochs_with_their_own_callbacks() {
    let (xt, yt, xv, yv) = data::shipped::ionosphere().unwrap();
    for device in devices() {
        let specs: Vec<Spec> = (0..6)
            .map(|i| Spec {
                layers: small_net(33, 4, "sigmoid"),
                optimizer: Adam::new([0.05, 0.3, 1e-3][i % 3]).into(),
                seed: i as u64,
                loss: "binary_crossentropy",
                metrics: vec!["accuracy"],
            })
            .collect();
        let callbacks = |i: usize| -> Vec<Box<dyn Callback>> {
            vec![
                Box::new(
                    EarlyStopping::new().monitor("val_loss").patience(i % 3).restore_best_weights(i.is_multiple_of(2)),
                ),
                Box::new(ReduceLROnPlateau::new().monitor("val_loss").patience(1).factor(0.5)),
            ]
        };
        let epochs = 12;
        let mut sweep =
            check_sweep("early stopping", &device, &specs, &xt, &yt, Some((&xv, &yv)), epochs, 32, &callbacks);
        let runs: Vec<usize> =
            (0..specs.len()).map(|i| sweep.model(i).unwrap().get_weights().unwrap().0.len()).collect();
        assert!(runs.iter().all(|&n| n > 0));
    }
}

#[test]
fn epochs_run_differ_and_a_diverging_member_leaves_the_others_unchanged() {
    let (xt, yt, xv, yv) = data::shipped::concrete().unwrap();
    for device in devices() {
        // Member 1's learning rate makes its loss overflow; member 2 also has TerminateOnNaN.
        let specs: Vec<Spec> = (0..4)
            .map(|i| Spec {
                layers: small_net(8, 8, "linear"),
                optimizer: Sgd {
                    learning_rate: if i == 1 || i == 2 { 1e6 } else { 1e-3 },
                    momentum: 0.9,
                    nesterov: false,
                    ..Sgd::default()
                }
                .into(),
                seed: i as u64,
                loss: "mse",
                metrics: vec![],
            })
            .collect();
        let callbacks = |i: usize| -> Vec<Box<dyn Callback>> {
            if i == 2 {
                vec![Box::new(TerminateOnNaN::new())]
            } else {
                Vec::new()
            }
        };
        let members: Vec<Member> = specs
            .iter()
            .enumerate()
            .map(|(i, s)| callbacks(i).into_iter().fold(Member::new(s.model(&device)), |m, cb| m.callback(cb)))
            .collect();
        let mut sweep = Sweep::new(members).unwrap();
        let report =
            sweep.fit(&xt, &yt, Fit::new().epochs(6).batch_size(64).verbose(0).validation_data(&xv, &yv)).unwrap();
        let d = report.members[1].diverged.expect("member 1 diverges");
        assert!(!d.1.is_finite());
        assert!(report.members[1].epochs_run == d.0 + 1, "{:?}", report.members[1]);
        // TerminateOnNaN stopped member 2 (a callback's stop, not a divergence).
        assert!(report.members[2].history.stop_reason.is_some(), "{:?}", report.members[2].history);
        for i in [0, 3] {
            assert_eq!(report.members[i].epochs_run, 6);
            assert!(report.members[i].diverged.is_none());
            let mut solo = specs[i].model(&device);
            let h = solo
                .fit(
                    &xt,
                    &yt,
                    Fit::new().epochs(6).batch_size(64).verbose(0).validation_data(&xv, &yv).seed(specs[i].seed),
                )
                .unwrap();
            same_history(&format!("member {i} beside a diverging one"), &device, &report.members[i].history, &h);
            same_weights(&format!("member {i}"), &device, sweep.model(i).unwrap(), &mut solo);
        }
        let board = report.leaderboard("val_loss").unwrap();
        assert!(board[..2].iter().all(|r| r.best.is_finite()));
    }
}

#[test]
fn different_shapes_in_one_sweep_equal_their_separate_runs() {
    let (xt, yt, xv, yv) = data::shipped::ionosphere().unwrap();
    for device in devices() {
        let shapes = [4usize, 8, 4, 16, 8];
        let specs: Vec<Spec> = shapes
            .iter()
            .enumerate()
            .map(|(i, &h)| Spec {
                layers: small_net(33, h, "sigmoid"),
                optimizer: Adam::new(LRS[i % 4]).into(),
                seed: i as u64,
                loss: "binary_crossentropy",
                metrics: vec!["accuracy"],
            })
            .collect();
        check_sweep("mixed shapes", &device, &specs, &xt, &yt, Some((&xv, &yv)), 3, 32, &none);
    }
}

#[test]
fn kfold_members_equal_solo_fits_on_their_folds() {
    let mut r = rng(3);
    let n = 100;
    let x = Matrix::new(n, 5, random_vec(&mut r, n * 5, -1.0, 1.0)).unwrap();
    let y = Matrix::new(n, 1, random_vec(&mut r, n, -1.0, 1.0)).unwrap();
    let spec = Spec {
        layers: small_net(5, 6, "linear"),
        optimizer: Adam::new(0.01).into(),
        seed: 4,
        loss: "mse",
        metrics: vec!["mae"],
    };
    for device in devices() {
        let fit = || Fit::new().epochs(4).batch_size(16).verbose(0);
        let cv = cross_validate(3, &x, &y, fit(), "val_loss", |_| Ok(spec.model(&device))).unwrap();
        assert_eq!(cv.folds.len(), 3);
        for (f, (lo, hi)) in fold_bounds(n, 3).into_iter().enumerate() {
            let train: Vec<usize> = (0..lo).chain(hi..n).collect();
            let fold: Vec<usize> = (lo..hi).collect();
            let (xt, yt) = (x.select_rows(&train).unwrap(), y.select_rows(&train).unwrap());
            let (xv, yv) = (x.select_rows(&fold).unwrap(), y.select_rows(&fold).unwrap());
            let mut solo = spec.model(&device);
            let h = solo.fit(&xt, &yt, fit().validation_data(&xv, &yv).seed(spec.seed)).unwrap();
            same_history(&format!("fold {f}"), &device, &cv.folds[f].history, &h);
            let best = h.get("val_loss").unwrap().iter().copied().fold(f32::INFINITY, f32::min);
            Tol { rel: 1e-6, abs: 1e-6 }.check("best val_loss", &[cv.best[f]], &[best]);
        }
        let mean = cv.best.iter().sum::<f32>() / 3.0;
        Tol { rel: 1e-5, abs: 1e-6 }.check("mean", &[cv.mean], &[mean]);
        assert!(cv.std > 0.0);
    }
}

#[test]
fn members_come_out_as_ordinary_models_that_keep_training_and_ensemble() {
    let (xt, yt, xv, yv) = data::shipped::ionosphere().unwrap();
    let device = Device::cpu();
    let specs: Vec<Spec> = (0..3)
        .map(|i| Spec {
            layers: small_net(33, 4, "sigmoid"),
            optimizer: Adam::new(LRS[i]).into(),
            seed: i as u64,
            loss: "binary_crossentropy",
            metrics: vec!["accuracy"],
        })
        .collect();
    let mut sweep = check_sweep("take out", &device, &specs, &xt, &yt, Some((&xv, &yv)), 2, 32, &none);
    // A second sweep fit continues each member where the first left it.
    let more = || Fit::new().epochs(2).batch_size(32).verbose(0);
    let mut solos: Vec<Sequential> = specs
        .iter()
        .map(|s| {
            let mut m = s.model(&device);
            m.fit(&xt, &yt, more().validation_data(&xv, &yv).seed(s.seed)).unwrap();
            m
        })
        .collect();
    let mut again = Sweep::new(specs.iter().map(|s| Member::new(s.model(&device))).collect()).unwrap();
    again.fit(&xt, &yt, more().validation_data(&xv, &yv)).unwrap();
    let second = again.fit(&xt, &yt, more()).unwrap();
    for (i, solo) in solos.iter_mut().enumerate() {
        let h = solo.fit(&xt, &yt, more().seed(specs[i].seed)).unwrap();
        same_history(&format!("second fit, member {i}"), &device, &second.members[i].history, &h);
    }
    // A member trained on (optimizer moments and step count came with it) equals the solo model
    // trained on for the same epochs.
    let mut solo = specs[1].model(&device);
    solo.fit(&xt, &yt, Fit::new().epochs(2).batch_size(32).verbose(0).validation_data(&xv, &yv).seed(1)).unwrap();
    let more = || Fit::new().epochs(2).batch_size(32).verbose(0).seed(1);
    let h_member = sweep.model(1).unwrap().fit(&xt, &yt, more()).unwrap();
    let h_solo = solo.fit(&xt, &yt, more()).unwrap();
    same_history("trained on", &device, &h_member, &h_solo);
    // The ensemble's prediction is the mean of its members'.
    let mean = sweep.predict_mean(&[0, 2], &xv).unwrap();
    let p0 = sweep.model(0).unwrap().predict(&xv).unwrap();
    let p2 = sweep.model(2).unwrap().predict(&xv).unwrap();
    let want: Vec<f32> = p0.data().iter().zip(p2.data()).map(|(a, b)| ((*a as f64 + *b as f64) / 2.0) as f32).collect();
    assert_eq!(mean.data(), &want[..]);
}

#[test]
fn plans_split_when_members_exceed_the_limit_and_results_do_not_change() {
    let (xt, yt, xv, yv) = data::shipped::ionosphere().unwrap();
    let device = Device::cpu();
    let make = |limit: Option<usize>| {
        let members: Vec<Member> = (0..5)
            .map(|i| {
                let spec = Spec {
                    layers: small_net(33, 4, "sigmoid"),
                    optimizer: Adam::new(LRS[i % 4]).into(),
                    seed: i as u64,
                    loss: "binary_crossentropy",
                    metrics: vec![],
                };
                Member::new(spec.model(&device))
            })
            .collect();
        let sweep = Sweep::new(members).unwrap();
        match limit {
            Some(k) => sweep.max_members_per_plan(k),
            None => sweep,
        }
    };
    let fit = || Fit::new().epochs(2).batch_size(32).verbose(0).validation_data(&xv, &yv);
    let whole = make(None).fit(&xt, &yt, fit()).unwrap();
    let split = make(Some(2)).fit(&xt, &yt, fit()).unwrap();
    assert_eq!((whole.plans, split.plans), (1, 3));
    assert!(whole.device_bytes > 0);
    for (a, b) in whole.members.iter().zip(&split.members) {
        same_history("split plans", &device, &a.history, &b.history);
    }
}

#[test]
fn bad_sweep_inputs_are_typed_errors() {
    let device = Device::cpu();
    let mut r = rng(1);
    let x = Matrix::new(10, 3, random_vec(&mut r, 30, -1.0, 1.0)).unwrap();
    let y = Matrix::new(10, 1, random_vec(&mut r, 10, -1.0, 1.0)).unwrap();
    let model = || {
        let mut m = Sequential::new(&device, vec![Dense::new(1).input_shape(3)]);
        m.compile("adam", "mse", &[]).unwrap();
        m
    };
    assert!(matches!(Sweep::new(Vec::new()), Err(Error::InvalidValue { .. })));
    let fit = || Fit::new().epochs(1).verbose(0);
    let err = Sweep::new(vec![Member::new(model()).train_rows(vec![0, 10])]).unwrap().fit(&x, &y, fit()).unwrap_err();
    assert!(err.to_string().contains("member 0 train_rows"), "{err}");
    let err = Sweep::new(vec![Member::new(model()).valid_rows(vec![0])]).unwrap().fit(&x, &y, fit()).unwrap_err();
    assert!(err.to_string().contains("no validation data"), "{err}");
    let err =
        Sweep::new(vec![Member::new(model())]).unwrap().fit(&x, &y, fit().callback(TerminateOnNaN::new())).unwrap_err();
    assert!(err.to_string().contains("belong to its members"), "{err}");
    let uncompiled = Sequential::new(&device, vec![Dense::new(1).input_shape(3)]);
    let err = Sweep::new(vec![Member::new(model()), Member::new(uncompiled)]).unwrap().fit(&x, &y, fit()).unwrap_err();
    assert!(err.to_string().contains("member 1"), "{err}");
    let bad_y = Matrix::new(10, 2, vec![0.0; 20]).unwrap();
    let err = Sweep::new(vec![Member::new(model())]).unwrap().fit(&x, &bad_y, fit()).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    let err = cross_validate(11, &x, &y, fit(), "val_loss", |_| Ok(model())).unwrap_err();
    assert!(err.to_string().contains("more folds than the 10 rows"), "{err}");
    let err = cross_validate(1, &x, &y, fit(), "val_loss", |_| Ok(model())).unwrap_err();
    assert!(matches!(err, Error::InvalidValue { .. }), "{err}");
    let mut sweep = Sweep::new(vec![Member::new(model())]).unwrap();
    assert!(sweep.model(3).is_err());
    assert!(sweep.predict_mean(&[], &x).is_err());
    let report = sweep.fit(&x, &y, fit()).unwrap();
    assert!(matches!(report.leaderboard("val_accuracy"), Err(Error::UnknownName { .. })));
}

#[test]
fn ensembles_of_mixed_shapes_average_their_members_in_one_pass_per_shape() {
    let (xt, yt, xv, _) = data::shipped::ionosphere().unwrap();
    for device in devices() {
        let make = || {
            let members: Vec<Member> = [4usize, 8, 4]
                .iter()
                .enumerate()
                .map(|(i, &h)| {
                    let spec = Spec {
                        layers: small_net(33, h, "sigmoid"),
                        optimizer: Adam::new(LRS[i]).into(),
                        seed: i as u64,
                        loss: "binary_crossentropy",
                        metrics: vec![],
                    };
                    Member::new(spec.model(&device))
                })
                .collect();
            Sweep::new(members).unwrap()
        };
        let mut sweep = make();
        // Before any fit: the members' initial weights.
        let before = sweep.predict_mean(&[0, 1, 2], &xv).unwrap();
        sweep.fit(&xt, &yt, Fit::new().epochs(2).batch_size(32).verbose(0)).unwrap();
        let after = sweep.predict_mean(&[2, 0, 1, 1], &xv).unwrap();
        let p: Vec<Matrix> = (0..3).map(|i| sweep.model(i).unwrap().predict(&xv).unwrap()).collect();
        let want: Vec<f32> = (0..xv.rows())
            .map(|r| ((p[2].data()[r] as f64 + p[0].data()[r] as f64 + 2.0 * p[1].data()[r] as f64) / 4.0) as f32)
            .collect();
        let tol = if device.is_gpu() { GPU_TOL } else { Tol { rel: 0.0, abs: 0.0 } };
        tol.check(&format!("ensemble of mixed shapes on {device:?}"), after.data(), &want);
        assert_ne!(before.data(), after.data());
        let err = sweep.predict_mean(&[0], &Matrix::new(2, 5, vec![0.0; 10]).unwrap()).unwrap_err();
        assert!(matches!(err, Error::Shape { .. }), "{err}");
        assert!(sweep.predict_mean(&[3], &xv).is_err());
    }
}

#[test]
fn a_sweep_over_shapes_is_one_submission_per_epoch() {
    let (xt, yt, xv, yv) = data::shipped::ionosphere().unwrap();
    let device = common::gpu();
    let members: Vec<Member> = [4usize, 8, 16, 8, 4]
        .iter()
        .enumerate()
        .map(|(i, &h)| {
            let spec = Spec {
                layers: small_net(33, h, "sigmoid"),
                optimizer: Adam::new(LRS[i % 4]).into(),
                seed: i as u64,
                loss: "binary_crossentropy",
                metrics: vec!["accuracy"],
            };
            Member::new(spec.model(&device))
        })
        .collect();
    let mut sweep = Sweep::new(members).unwrap();
    let epochs = 4;
    let before = wgfit::testing::gpu_submissions(&device);
    let report =
        sweep.fit(&xt, &yt, Fit::new().epochs(epochs).batch_size(32).verbose(0).validation_data(&xv, &yv)).unwrap();
    let made = wgfit::testing::gpu_submissions(&device) - before;
    assert_eq!(report.plans, 3);
    // Each member's starting weights read from its model (5), one submission per epoch for the
    // three plans together, then each plan's weights and moments read back (2 x 3). Plans run
    // one after another would make 3 per epoch.
    assert_eq!(made, 5 + epochs as u64 + 2 * 3, "submissions during the sweep");
}
