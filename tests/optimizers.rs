//! RMSprop, AdamW, amsgrad, weight decay, gradient clipping and learning-rate schedules against
//! Keras 3 itself (tests/golden/keras_optimizers.json, written by
//! tools/keras_golden_optimizers.py), on both devices; whole fits on both devices; model files
//! that keep every optimizer's state; and the typed errors of bad settings.

mod common;

use common::{devices, Tol};
use serde_json::Value;
use wgfit::testing::{grad_norms_launch, optimizer_launch, KernelHarness};
use wgfit::{
    data, Adam, AdamW, BatchNormalization, Clip, Dense, Device, Dropout, Error, Fit, LearningRateSchedule, Optimizer,
    ReduceLROnPlateau, Rmsprop, Sequential, Sgd,
};

fn golden() -> Value {
    serde_json::from_str(include_str!("golden/keras_optimizers.json")).expect("golden JSON parses")
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number") as f32).collect()
}

// Keras folds Adam's bias correction in f32 and we in f64, and its pow/cos are XLA's or torch's:
// a few ulps apart, far below what a misplaced epsilon, decay or clip would change.
const TOL: Tol = Tol { rel: 5e-6, abs: 1e-7 };

fn exp_decay() -> LearningRateSchedule {
    LearningRateSchedule::ExponentialDecay {
        initial_learning_rate: 0.1,
        decay_steps: 2,
        decay_rate: 0.5,
        staircase: false,
    }
}

/// Our optimizer for each golden case (the same settings as the script's).
fn cases() -> Vec<(&'static str, Optimizer)> {
    let rms = Rmsprop::new(0.01);
    vec![
        ("rmsprop", rms.clone().into()),
        ("rmsprop_momentum", Rmsprop { momentum: 0.9, ..rms.clone() }.into()),
        ("rmsprop_centered", Rmsprop { centered: true, ..rms.clone() }.into()),
        (
            "rmsprop_centered_momentum",
            Rmsprop { rho: 0.8, momentum: 0.5, centered: true, epsilon: 1e-3, ..rms.clone() }.into(),
        ),
        ("rmsprop_weight_decay", Rmsprop { weight_decay: Some(0.1), ..rms.clone() }.into()),
        ("adamw", AdamW::new(0.01).into()),
        ("adamw_wd01", AdamW { weight_decay: 0.1, ..AdamW::new(0.01) }.into()),
        ("adamw_schedule", AdamW { weight_decay: 0.1, schedule: Some(exp_decay()), ..AdamW::default() }.into()),
        ("adam_amsgrad", Adam { amsgrad: true, ..Adam::new(0.01) }.into()),
        ("adamw_amsgrad", AdamW { amsgrad: true, weight_decay: 0.05, ..AdamW::new(0.01) }.into()),
        (
            "sgd_weight_decay",
            Sgd { learning_rate: 0.1, momentum: 0.9, weight_decay: Some(0.01), ..Sgd::default() }.into(),
        ),
        ("sgd_schedule", Sgd { schedule: Some(exp_decay()), ..Sgd::default() }.into()),
        ("adam_clipnorm", Adam { clip: Clip::Norm(0.5), ..Adam::new(0.01) }.into()),
        ("sgd_clipnorm", Sgd { clip: Clip::Norm(0.5), ..Sgd::new(0.1) }.into()),
        ("sgd_global_clipnorm", Sgd { clip: Clip::GlobalNorm(1.0), ..Sgd::new(0.1) }.into()),
        ("rmsprop_global_clipnorm", Rmsprop { clip: Clip::GlobalNorm(1.0), ..rms.clone() }.into()),
        ("sgd_clipvalue", Sgd { clip: Clip::Value(0.25), ..Sgd::new(0.1) }.into()),
        ("adam_clipvalue", Adam { clip: Clip::Value(0.25), ..Adam::new(0.01) }.into()),
    ]
}

/// Four updates of a 2x3 kernel and a 3-value bias (two weight tensors: offsets 0, 6, 9) by the
/// update kernels, each step's gradient norms first when the optimizer clips by a norm.
#[test]
fn every_optimizer_variant_matches_keras_step_by_step() {
    let g = golden();
    let w0: Vec<f32> =
        floats(&g["kernel0"][0]).into_iter().chain(floats(&g["kernel0"][1])).chain(floats(&g["bias0"])).collect();
    let n = w0.len();
    let offsets: Vec<f32> = [0u32, 6, 9].into_iter().map(f32::from_bits).collect();
    let steps = g["grads"].as_array().unwrap();
    let cases = cases();
    assert_eq!(cases.len(), g["cases"].as_object().unwrap().len(), "every golden case is tested");
    for device in devices() {
        for (case, optimizer) in &cases {
            let want = g["cases"][case].as_array().unwrap_or_else(|| panic!("golden case {case}"));
            let mut h = KernelHarness::new(&device);
            let zeros = vec![0.0; n];
            let [w, m, v, s] = [&w0, &zeros, &zeros, &zeros].map(|d| h.buffer(d).unwrap());
            let norms = h.buffer(&[f32::NAN; 2]).unwrap();
            let offsets = h.shared_buffer(&offsets).unwrap();
            for (t, (grads, want)) in steps.iter().zip(want).enumerate() {
                let grad = h.buffer(&floats(grads)).unwrap();
                let (args, row, lrs) = optimizer_launch(optimizer, t as u64 + 1, n, 2, 1).unwrap();
                let (table, lrs) = (h.buffer(&row).unwrap(), h.buffer(&lrs).unwrap());
                if matches!(optimizer.clip(), Clip::Norm(_) | Clip::GlobalNorm(_)) {
                    let clip_in_place = matches!(optimizer.clip(), Clip::Norm(_));
                    h.run(&[grad, norms, offsets, table], grad_norms_launch(n, 2, clip_in_place)).unwrap();
                }
                h.run(&[w, grad, m, v, table, lrs, s, norms], args).unwrap();
                TOL.check(&format!("{case} step {} on {device:?}", t + 1), &h.read(w).unwrap(), &floats(want));
            }
        }
    }
}

#[test]
fn schedules_match_keras_at_every_step() {
    let g = golden();
    let steps: Vec<u64> = g["schedule_steps"].as_array().unwrap().iter().map(|s| s.as_u64().unwrap()).collect();
    let exp = |staircase| LearningRateSchedule::ExponentialDecay {
        initial_learning_rate: 0.1,
        decay_steps: 3,
        decay_rate: 0.5,
        staircase,
    };
    let inv = |staircase| LearningRateSchedule::InverseTimeDecay {
        initial_learning_rate: 0.1,
        decay_steps: 3,
        decay_rate: 0.5,
        staircase,
    };
    let cosine = |alpha, warmup_target, warmup_steps, initial_learning_rate| LearningRateSchedule::CosineDecay {
        initial_learning_rate,
        decay_steps: 7,
        alpha,
        warmup_target,
        warmup_steps,
    };
    let schedules = [
        ("exponential", exp(false)),
        ("exponential_staircase", exp(true)),
        ("inverse_time", inv(false)),
        ("inverse_time_staircase", inv(true)),
        (
            "piecewise",
            LearningRateSchedule::PiecewiseConstantDecay { boundaries: vec![2, 5], values: vec![0.1, 0.05, 0.01] },
        ),
        ("cosine", LearningRateSchedule::cosine_decay(0.1, 7)),
        ("cosine_alpha", cosine(0.1, None, 0, 0.1)),
        ("cosine_warmup", cosine(0.1, Some(0.2), 3, 0.0)),
    ];
    assert_eq!(schedules.len(), g["schedules"].as_object().unwrap().len());
    for (name, schedule) in schedules {
        schedule.validate().unwrap();
        let got: Vec<f32> = steps.iter().map(|&s| schedule.value(s)).collect();
        Tol { rel: 1e-5, abs: 1e-9 }.check(name, &got, &floats(&g["schedules"][name]));
    }
}

fn small_model(device: &Device) -> Sequential {
    Sequential::new(
        device,
        vec![
            Dense::new(16).activation("relu").input_shape(8),
            BatchNormalization::new(),
            Dropout::new(0.1),
            Dense::new(8).activation("tanh"),
            Dense::new(1),
        ],
    )
}

fn fit_opts() -> Fit<'static> {
    Fit::new().batch_size(64).epochs(3).seed(3).verbose(0)
}

/// Whole fits with each new optimizer on the GPU and the CPU agree epoch by epoch.
#[test]
fn fits_agree_across_devices_with_every_new_optimizer() {
    let (xt, yt, xv, yv) = data::shipped::concrete().unwrap();
    let optimizers: Vec<Optimizer> = vec![
        Rmsprop { momentum: 0.5, centered: true, clip: Clip::GlobalNorm(1.0), ..Rmsprop::default() }.into(),
        AdamW { amsgrad: true, clip: Clip::Norm(0.5), ..AdamW::new(0.01) }.into(),
        Sgd {
            momentum: 0.9,
            weight_decay: Some(0.01),
            clip: Clip::Value(0.5),
            schedule: Some(LearningRateSchedule::CosineDecay {
                initial_learning_rate: 0.0,
                decay_steps: 30,
                alpha: 0.1,
                warmup_target: Some(0.01),
                warmup_steps: 10,
            }),
            ..Sgd::default()
        }
        .into(),
    ];
    for optimizer in optimizers {
        let histories: Vec<_> = devices()
            .iter()
            .map(|device| {
                let mut model = small_model(device);
                model.compile(optimizer.clone(), "mse", &["mae"]).unwrap();
                model.fit(&xt, &yt, fit_opts().validation_data(&xv, &yv)).unwrap()
            })
            .collect();
        let (a, b) = (&histories[0], &histories[1]);
        assert!(a["loss"][2] < a["loss"][0], "{optimizer:?} did not train: {:?}", &a["loss"]);
        for k in a.keys() {
            Tol { rel: 1e-3, abs: 1e-5 }.check(&format!("{optimizer:?} {k}"), &a[k], &b[k]);
        }
    }
}

/// A model saved mid-training continues exactly as the uninterrupted one (moments, the third
/// slot, the iteration count and the schedule all come back from the file).
#[test]
fn saved_optimizer_state_continues_training_identically() {
    let (xt, yt, _, _) = data::shipped::concrete().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let optimizers: Vec<Optimizer> = vec![
        Rmsprop { momentum: 0.9, centered: true, ..Rmsprop::default() }.into(),
        AdamW {
            amsgrad: true,
            clip: Clip::GlobalNorm(2.0),
            schedule: Some(LearningRateSchedule::PiecewiseConstantDecay {
                boundaries: vec![20, 40],
                values: vec![0.01, 0.005, 0.001],
            }),
            ..AdamW::default()
        }
        .into(),
        Adam { amsgrad: true, clip: Clip::Norm(1.0), ..Adam::new(0.01) }.into(),
    ];
    for device in devices() {
        for (i, optimizer) in optimizers.iter().enumerate() {
            let mut model = small_model(&device);
            model.compile(optimizer.clone(), "mae", &[]).unwrap();
            model.fit(&xt, &yt, fit_opts()).unwrap();
            let path = dir.path().join(format!("model-{i}-{}.json", device.is_gpu()));
            model.save(&path).unwrap();
            let text = std::fs::read_to_string(&path).unwrap();
            let file: Value = serde_json::from_str(&text).unwrap();
            let saved: Optimizer = serde_json::from_value(file["compile"]["optimizer"].clone()).unwrap();
            assert_eq!(&saved, optimizer, "the file keeps the optimizer and its schedule");
            assert!(file["optimizer_state"]["s"].is_array(), "{optimizer:?}: the third slot is saved");
            let mut loaded = Sequential::load(&path, &device).unwrap();
            let original = model.fit(&xt, &yt, fit_opts()).unwrap();
            let resumed = loaded.fit(&xt, &yt, fit_opts()).unwrap();
            assert_eq!(original, resumed, "{device:?} {optimizer:?}: training after load diverged");
            assert_eq!(loaded.get_weights().unwrap(), model.get_weights().unwrap());
        }
    }
}

/// Older model files (no third slot, no new fields) still load; an optimizer without a third
/// slot saves none.
#[test]
fn files_without_the_new_fields_still_load() {
    let (xt, yt, _, _) = data::shipped::concrete().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let device = Device::cpu();
    let mut model = small_model(&device);
    model.compile("adam", "mae", &[]).unwrap();
    model.fit(&xt, &yt, fit_opts()).unwrap();
    let path = dir.path().join("adam.json");
    model.save(&path).unwrap();
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(file["optimizer_state"].get("s").is_none(), "plain Adam saves no third slot");
    let optimizer = &file["compile"]["optimizer"];
    let keys: Vec<&str> = optimizer.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 6, "the file of a default Adam keeps the old fields only: {keys:?}");
    let mut loaded = Sequential::load(&path, &device).unwrap();
    assert_eq!(loaded.fit(&xt, &yt, fit_opts()).unwrap(), model.fit(&xt, &yt, fit_opts()).unwrap());
}

#[test]
fn names_compile_with_keras_defaults() {
    let device = Device::cpu();
    for (name, want) in [
        ("rmsprop", Optimizer::from(Rmsprop::default())),
        ("AdamW", Optimizer::from(AdamW::default())),
        ("adam", Optimizer::from(Adam::default())),
    ] {
        let mut model = small_model(&device);
        model.compile(name, "mse", &[]).unwrap();
        assert_eq!(name.parse::<Optimizer>().unwrap(), want);
    }
    let r = Rmsprop::default();
    assert_eq!((r.learning_rate, r.rho, r.momentum, r.epsilon, r.centered), (0.001, 0.9, 0.0, 1e-7, false));
    let a = AdamW::default();
    assert_eq!((a.learning_rate, a.weight_decay, a.beta_1, a.beta_2, a.epsilon), (0.001, 0.004, 0.9, 0.999, 1e-7));
    match "adagrad".parse::<Optimizer>() {
        Err(Error::UnknownName { valid, .. }) => assert!(valid.contains("rmsprop") && valid.contains("adamw")),
        other => panic!("{other:?}"),
    }
}

fn invalid(optimizer: impl Into<Optimizer>) -> String {
    let mut model = small_model(&Device::cpu());
    match model.compile(optimizer.into(), "mse", &[]) {
        Err(Error::InvalidValue { name, .. }) => name,
        other => panic!("expected an invalid value, got {other:?}"),
    }
}

#[test]
fn bad_settings_are_typed_errors() {
    assert_eq!(invalid(Rmsprop { rho: 1.0, ..Rmsprop::default() }), "rho");
    assert_eq!(invalid(Rmsprop { rho: f32::NAN, ..Rmsprop::default() }), "rho");
    assert_eq!(invalid(Rmsprop { momentum: -0.1, ..Rmsprop::default() }), "momentum");
    assert_eq!(invalid(Rmsprop { epsilon: 0.0, ..Rmsprop::default() }), "epsilon");
    assert_eq!(invalid(Rmsprop::new(f32::NAN)), "learning_rate");
    assert_eq!(invalid(AdamW { weight_decay: -0.1, ..AdamW::default() }), "weight_decay");
    assert_eq!(invalid(AdamW { weight_decay: f32::NAN, ..AdamW::default() }), "weight_decay");
    assert_eq!(invalid(Sgd { weight_decay: Some(f32::INFINITY), ..Sgd::default() }), "weight_decay");
    assert_eq!(invalid(Adam { clip: Clip::Norm(0.0), ..Adam::default() }), "clipnorm");
    assert_eq!(invalid(Adam { clip: Clip::GlobalNorm(-1.0), ..Adam::default() }), "global_clipnorm");
    assert_eq!(invalid(Sgd { clip: Clip::Value(f32::NAN), ..Sgd::default() }), "clipvalue");
    let sched = |s| Sgd { schedule: Some(s), ..Sgd::default() };
    let exp = |initial_learning_rate, decay_steps, decay_rate| LearningRateSchedule::ExponentialDecay {
        initial_learning_rate,
        decay_steps,
        decay_rate,
        staircase: false,
    };
    assert_eq!(invalid(sched(exp(-0.1, 10, 0.5))), "initial_learning_rate");
    assert_eq!(invalid(sched(exp(0.1, 0, 0.5))), "decay_steps");
    assert_eq!(invalid(sched(exp(0.1, 10, -0.5))), "decay_rate");
    let piecewise =
        |boundaries: Vec<u64>, values: Vec<f32>| LearningRateSchedule::PiecewiseConstantDecay { boundaries, values };
    assert_eq!(invalid(sched(piecewise(vec![5], vec![0.1]))), "values");
    assert_eq!(invalid(sched(piecewise(vec![5, 5], vec![0.1, 0.05, 0.01]))), "boundaries");
    assert_eq!(invalid(sched(piecewise(vec![5], vec![0.1, -0.01]))), "values");
    let cosine = |alpha, warmup_target| LearningRateSchedule::CosineDecay {
        initial_learning_rate: 0.1,
        decay_steps: 10,
        alpha,
        warmup_target,
        warmup_steps: 5,
    };
    assert_eq!(invalid(sched(cosine(1.5, None))), "alpha");
    assert_eq!(invalid(sched(cosine(0.0, Some(f32::NAN)))), "warmup_target");
}

/// ReduceLROnPlateau cannot set a schedule's rate (Keras raises a TypeError): the fit ends with
/// a typed error naming the schedule, and a constant-rate optimizer still takes the new rate.
#[test]
fn reduce_lr_on_plateau_refuses_a_schedule() {
    let (xt, yt, _, _) = data::shipped::concrete().unwrap();
    let device = Device::cpu();
    let mut model = small_model(&device);
    let schedule = LearningRateSchedule::cosine_decay(0.01, 100);
    model.compile(Adam { schedule: Some(schedule), ..Adam::default() }, "mse", &[]).unwrap();
    // Patience 0 and an impossible min_delta: the first epoch end asks for a lower rate.
    let plateau = || ReduceLROnPlateau::new().monitor("loss").patience(0).min_delta(1e9);
    let result = model.fit(&xt, &yt, fit_opts().callback(plateau()));
    match result {
        Err(Error::State(msg)) => assert!(msg.contains("schedule"), "{msg}"),
        other => panic!("expected a state error, got {other:?}"),
    }
    let mut optimizer =
        Optimizer::from(Adam { schedule: Some(LearningRateSchedule::cosine_decay(0.01, 100)), ..Adam::default() });
    assert_eq!(optimizer.learning_rate(), 0.01);
    assert!(optimizer.set_learning_rate(0.01).is_ok(), "setting the rate it reports changes nothing");
    assert!(matches!(optimizer.set_learning_rate(0.001), Err(Error::State(_))));
    let mut constant = Optimizer::from(Rmsprop::default());
    constant.set_learning_rate(0.01).unwrap();
    assert_eq!(constant.learning_rate(), 0.01);
}
