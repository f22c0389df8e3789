//! The profiler (issue 15 item 2): `Fit::profile`, `GpuOptions::profile` / `WGFIT_PROFILE=1`,
//! `History::profile`. On lavapipe the GPU profile comes from timestamp queries; the numbers are
//! checked against an epoch time the test measures itself, never against a speed.

mod common;

use wgfit::testing::EpochTimes;
use wgfit::{Dense, Device, EpochProfile, Fit, GpuOptions, Matrix, ProfileClock, Sequential};

const ROWS: usize = 3200;
const VALID: usize = 800;
const BATCH: usize = 8;

fn data(rows: usize, seed: u64) -> (Matrix, Matrix) {
    let mut rng = common::rng(seed);
    let x = common::random_vec(&mut rng, rows * 8, -1.0, 1.0);
    let y: Vec<f32> = x.chunks(8).map(|r| r.iter().sum::<f32>().sin()).collect();
    (Matrix::new(rows, 8, x).unwrap(), Matrix::column(y))
}

fn model(device: &Device) -> Sequential {
    let mut m = Sequential::new(
        device,
        vec![Dense::new(32).activation("relu").input_shape(8), Dense::new(32).activation("tanh"), Dense::new(1)],
    );
    m.compile("adam", "mse", &["mae"]).unwrap();
    m
}

/// Fits 2 epochs of 400 steps and 100 validation batches (over 4096 dispatches: several query
/// sets), returning the History and the epoch times a callback measured.
fn profiled_fit(device: &Device, profile: Option<bool>) -> (wgfit::History, Vec<f64>) {
    let (x, y) = data(ROWS, 1);
    let (vx, vy) = data(VALID, 2);
    let mut clock = EpochTimes::default();
    let mut fit = Fit::new().validation_data(&vx, &vy).batch_size(BATCH).epochs(2).verbose(0).callback(&mut clock);
    if let Some(on) = profile {
        fit = fit.profile(on);
    }
    let history = model(device).fit(&x, &y, fit).unwrap();
    (history, clock.ms)
}

/// What every profile of [`profiled_fit`] must show: every kernel family that ran with a
/// positive time, the exact gather count, and times that add up to the measured epoch.
fn check(p: &EpochProfile, measured_ms: f64, clock: ProfileClock) {
    eprintln!("{p}");
    assert_eq!(p.clock, clock, "{p}");
    let steps = (ROWS / BATCH + VALID / BATCH) as u64;
    assert_eq!(p.kernel("gather").map(|k| k.dispatches), Some(steps), "one gather per batch:\n{p}");
    // The families this model runs (its activations are fused into the products' epilogues).
    for family in ["gather", "dense", "loss", "optim"] {
        let rows: Vec<_> = p.kernels.iter().filter(|k| k.family == family).collect();
        assert!(!rows.is_empty(), "no {family} kernel in\n{p}");
        for k in rows {
            assert!(k.dispatches > 0 && k.ms > 0.0, "{} has no time in\n{p}", k.kernel);
        }
    }
    for k in ["loss", "adam"] {
        assert!(p.kernel(k).is_some(), "no {k} row in\n{p}");
    }
    assert!(p.kernels.iter().all(|k| ["gather", "dense", "loss", "optim", "(copies)"].contains(&k.family)), "{p}");
    assert!(p.kernels.iter().filter(|k| k.family == "dense").map(|k| k.dispatches).sum::<u64>() > steps);
    // The table adds up: kernels + remainder is the wall time, which is the epoch's as the test
    // measured it (within 10%), and the device's clock fits inside it.
    assert!((p.kernel_ms() + p.remainder_ms() - p.wall_ms).abs() < 1e-9);
    assert!(
        (p.wall_ms - measured_ms).abs() <= 0.1 * measured_ms,
        "wall {} ms, measured {measured_ms} ms\n{p}",
        p.wall_ms
    );
    assert!(p.kernel_ms() > 0.0 && p.remainder_ms() >= 0.0, "{p}");
    assert!(p.span_ms <= p.wall_ms && p.kernel_ms() <= p.span_ms * (1.0 + 1e-9), "{p}");
    assert!(p.host_ms > 0.0 && p.host_ms < p.wall_ms, "{p}");
}

#[test]
fn gpu_profile_adds_up_to_the_epoch() {
    let _ = common::gpu();
    let device = Device::gpu_with(GpuOptions::from_env().profile(true)).unwrap();
    let clock = if wgfit::testing::gpu_timestamps(&device) {
        ProfileClock::Timestamps
    } else {
        eprintln!("{} has no timestamp queries: checking the fallback", device.info().adapter);
        ProfileClock::DispatchesAlone
    };
    let before = wgfit::testing::gpu_submissions(&device);
    let (history, measured) = profiled_fit(&device, None);
    assert_eq!(history.profile.len(), 2);
    for (e, p) in history.profile.iter().enumerate() {
        assert_eq!(p.epoch, e);
        check(p, measured[e], clock);
        if clock == ProfileClock::Timestamps {
            assert!(p.kernels.iter().map(|k| k.dispatches).sum::<u64>() > 4096, "one query set would do:\n{p}");
        }
    }
    if clock == ProfileClock::Timestamps {
        // Timestamps ride on the epoch's own submission (and the last copies' one at the end).
        assert!(wgfit::testing::gpu_submissions(&device) - before <= 3);
    }
    // The profiled fit trains as the unprofiled one (the profiler only watches).
    let (plain, _) = profiled_fit(&device, Some(false));
    assert!(plain.profile.is_empty());
    assert_eq!(plain.get("loss"), history.get("loss"));
    assert_eq!(plain.get("val_mae"), history.get("val_mae"));
}

#[test]
fn without_timestamps_each_dispatch_is_timed_alone() {
    let _ = common::gpu();
    // Opened without the profiler: no timestamp features asked for, so Fit::profile falls back.
    let device = Device::gpu_with(GpuOptions::from_env().profile(false)).unwrap();
    assert!(!wgfit::testing::gpu_timestamps(&device));
    let before = wgfit::testing::gpu_submissions(&device);
    let (history, measured) = profiled_fit(&device, Some(true));
    assert!(wgfit::testing::gpu_submissions(&device) - before > 4096, "each dispatch a submission of its own");
    assert_eq!(history.profile.len(), 2);
    for (e, p) in history.profile.iter().enumerate() {
        check(p, measured[e], ProfileClock::DispatchesAlone);
    }
    assert!(history.profile[0].to_string().contains("no timestamp queries"));
    let (plain, _) = profiled_fit(&device, None);
    assert!(plain.profile.is_empty(), "off unless asked for");
    assert_eq!(plain.get("loss"), history.get("loss"));
}

#[test]
fn cpu_profile_times_each_kernel_call() {
    let (history, measured) = profiled_fit(&Device::cpu(), Some(true));
    assert_eq!(history.profile.len(), 2);
    for (e, p) in history.profile.iter().enumerate() {
        assert_eq!(p.device, "cpu reference");
        check(p, measured[e], ProfileClock::Host);
    }
    let (plain, _) = profiled_fit(&Device::cpu(), None);
    assert!(plain.profile.is_empty());
    assert_eq!(plain.get("loss"), history.get("loss"));
}

#[test]
fn a_sweep_of_two_architectures_is_one_profile() {
    let _ = common::gpu();
    let device = Device::gpu_with(GpuOptions::from_env().profile(true)).unwrap();
    let (x, y) = data(256, 3);
    // Two widths: two plans of two members each, recorded into one submission per epoch.
    let mut sweep = wgfit::Sweep::from_fn(4, |i| {
        let mut m = Sequential::new(
            &device,
            vec![Dense::new(8 + 8 * (i % 2)).activation("relu").input_shape(8), Dense::new(1)],
        );
        m.compile("sgd", "mse", &[])?;
        Ok(wgfit::Member::new(m))
    })
    .unwrap();
    let report = sweep.fit(&x, &y, Fit::new().batch_size(32).epochs(2).verbose(0)).unwrap();
    assert_eq!(report.plans, 2);
    let first = &report.members[0].history.profile;
    assert_eq!(first.len(), 2);
    for member in &report.members {
        assert_eq!(&member.history.profile, first, "every member holds the fit's profile");
    }
    // 8 steps per epoch in each plan: one gather per step and plan, whatever the members.
    for p in first {
        eprintln!("{p}");
        assert_eq!(p.kernel("gather").map(|k| k.dispatches), Some(16), "{p}");
        assert_eq!(p.kernel("sgd").map(|k| k.dispatches), Some(16), "{p}");
        assert!(p.kernel_ms() > 0.0 && p.remainder_ms() >= 0.0 && p.span_ms <= p.wall_ms, "{p}");
    }
    // Fit::profile(false) overrides the device.
    let again = sweep.fit(&x, &y, Fit::new().batch_size(32).epochs(1).verbose(0).profile(false)).unwrap();
    assert!(again.members.iter().all(|m| m.history.profile.is_empty()));
}
