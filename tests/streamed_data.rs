//! Data larger than one buffer binding (or than `GpuOptions::max_data_bytes`) streams through a
//! chunk buffer: the same seed gives the same History, weights, evaluation and predictions, bit
//! for bit, as the whole upload; device memory stays bounded; a limit too small for one batch
//! is an error naming the sizes.

mod common;

use common::gpu;
use wgfit::{Dense, Device, Error, Fit, GpuOptions, Matrix, Member, Sequential, Sweep};

/// The binding limit the lowered device asks for: the training x is 10 times larger.
const BINDING: u64 = 128 * 1024;
const COLS: usize = 16;
/// 10 x BINDING bytes of x.
const ROWS: usize = 10 * BINDING as usize / 4 / COLS;

fn device_with(options: GpuOptions) -> Device {
    gpu(); // sets XDG_RUNTIME_DIR, and fails with the install hint when there is no adapter
    Device::gpu_with(options).expect("a GPU adapter")
}

/// Only the storage binding is lowered: an epoch's launch records still fit one buffer.
fn lowered() -> Device {
    device_with(GpuOptions::from_env().max_storage_buffer_binding_size(BINDING))
}

fn data(rows: usize, seed: u64) -> (Matrix, Matrix, Vec<f32>) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let x: Vec<f32> = (0..rows * COLS).map(|_| rng.random_range(-1.0..1.0)).collect();
    let y: Vec<f32> = x.chunks(COLS).map(|r| (r[0] + 0.5 * r[3] - r[7]).tanh()).collect();
    let w: Vec<f32> = (0..rows).map(|_| rng.random_range(0.5..2.0)).collect();
    (Matrix::new(rows, COLS, x).unwrap(), Matrix::column(y), w)
}

fn model(device: &Device) -> Sequential {
    common::small_dropout_batchnorm_model(device, COLS)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

/// Asserts two runs' values are the same bits, naming the first that differs (not printing all).
fn same_bits(what: &str, got: &[u32], want: &[u32]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let differ = got.iter().zip(want).filter(|(a, b)| a != b).count();
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        let (g, w) = (f32::from_bits(got[i]), f32::from_bits(want[i]));
        panic!("{what}: {differ} of {} values differ, the first at {i}: {g} vs {w}", got.len());
    }
}

/// What one run leaves: its History as bits per key, weights, evaluation, predictions.
struct Outcome {
    history: Vec<(String, Vec<u32>)>,
    weights: Vec<u32>,
    evaluation: Vec<(String, u32)>,
    predictions: Vec<u32>,
}

impl Outcome {
    fn assert_same(&self, whole: &Outcome, what: &str) {
        assert_eq!(self.history, whole.history, "{what}: History");
        assert_eq!(self.evaluation, whole.evaluation, "{what}: evaluate");
        same_bits(&format!("{what}: weights"), &self.weights, &whole.weights);
        same_bits(&format!("{what}: predict"), &self.predictions, &whole.predictions);
    }
}

fn train(device: &Device) -> (Outcome, usize) {
    let (x, y, w) = data(ROWS, 1);
    let (vx, vy, vw) = data(ROWS / 4, 2);
    let mut m = model(device);
    let fit = Fit::new()
        .validation_data_weighted(&vx, &vy, &vw)
        .sample_weight(&w)
        .batch_size(64)
        .epochs(2)
        .seed(5)
        .verbose(0);
    let h = m.fit(&x, &y, fit).unwrap();
    let mut history: Vec<(String, Vec<u32>)> = h.keys().map(|k| (k.to_string(), bits(h.get(k).unwrap()))).collect();
    history.sort();
    let (p, s) = m.get_weights().unwrap();
    let evaluation = m.evaluate_weighted(&x, &y, &w).unwrap().into_iter().map(|(k, v)| (k, v.to_bits())).collect();
    let predictions = bits(m.predict(&x).unwrap().data());
    let outcome = Outcome { history, weights: bits(&[p, s].concat()), evaluation, predictions };
    (outcome, m.device_bytes())
}

#[test]
fn data_ten_times_the_binding_trains_as_the_whole_upload_bit_for_bit() {
    let whole_device = device_with(GpuOptions::from_env());
    let (whole, whole_bytes) = train(&whole_device);
    assert_eq!(whole.history.iter().find(|(k, _)| k == "val_loss").unwrap().1.len(), 2);
    let x_bytes = ROWS * COLS * 4;
    assert!(whole_bytes > x_bytes, "the whole upload holds x: {whole_bytes} bytes");

    // The binding lowered: x is 10x the largest binding and streams by itself.
    let small = lowered();
    let before = wgfit::testing::gpu_submissions(&small);
    let (streamed, streamed_bytes) = train(&small);
    let submissions = wgfit::testing::gpu_submissions(&small) - before;
    streamed.assert_same(&whole, "streamed through a lowered binding");
    // Ten or more fills of the training data per epoch, each its own submission.
    assert!(submissions >= 20, "{submissions} submissions: the data did not stream");
    assert!(streamed_bytes < x_bytes / 2, "{streamed_bytes} device bytes for {x_bytes} bytes of x");

    // Data that fits, streamed because max_data_bytes asks: chunks of about a tenth of x.
    let capped = device_with(GpuOptions::from_env().max_data_bytes((x_bytes / 10) as u64));
    let (forced, forced_bytes) = train(&capped);
    forced.assert_same(&whole, "streamed under max_data_bytes");
    assert!(forced_bytes < whole_bytes - x_bytes / 2, "{forced_bytes} device bytes, whole {whole_bytes}");
}

#[test]
fn a_streamed_sweep_trains_each_member_as_the_whole_upload() {
    let (x, y, _) = data(ROWS, 3);
    let (vx, vy, _) = data(ROWS / 8, 4);
    let run = |device: &Device| {
        let mut sweep = Sweep::from_fn(3, |i| {
            let mut member = Member::new(model(device)).seed(i as u64);
            if i == 1 {
                // A bootstrap sample: rows repeated and left out.
                member = member.train_rows((0..ROWS).map(|r| (r * 7 + 3) % ROWS / 2 * 2).collect());
            }
            Ok(member)
        })
        .unwrap();
        let report =
            sweep.fit(&x, &y, Fit::new().validation_data(&vx, &vy).batch_size(128).epochs(2).verbose(0)).unwrap();
        let histories: Vec<Vec<(String, Vec<u32>)>> = report
            .members
            .iter()
            .map(|m| {
                let mut keys: Vec<_> =
                    m.history.keys().map(|k| (k.to_string(), bits(m.history.get(k).unwrap()))).collect();
                keys.sort();
                keys
            })
            .collect();
        let ensemble = bits(sweep.predict_mean(&[0, 1, 2], &vx).unwrap().data());
        (histories, ensemble)
    };
    let whole = run(&device_with(GpuOptions::from_env()));
    let small = lowered();
    let before = wgfit::testing::gpu_submissions(&small);
    let streamed = run(&small);
    let submissions = wgfit::testing::gpu_submissions(&small) - before;
    assert!(submissions >= 20, "{submissions} submissions: the data did not stream");
    assert_eq!(streamed.0, whole.0, "each member's History");
    same_bits("the ensemble's predictions", &streamed.1, &whole.1);
}

#[test]
fn a_chunk_limit_below_one_batch_is_an_error_naming_the_sizes() {
    let device = device_with(GpuOptions::from_env().max_data_bytes(1000));
    let (x, y, _) = data(256, 5);
    let mut m = model(&device);
    let e = m.fit(&x, &y, Fit::new().batch_size(64).verbose(0)).unwrap_err();
    assert!(matches!(e, Error::InvalidValue { .. }), "{e:?}");
    let msg = e.to_string();
    // One batch: 64 rows of 16 x values and 1 target + 1 weight slot.
    for part in ["max_data_bytes", "1000", "64 rows", "18 values", "4608 bytes"] {
        assert!(msg.contains(part), "{msg:?} lacks {part:?}");
    }
    // A batch that fits trains as the whole upload does; evaluate and predict choose their own
    // batch size, which shrinks to the chunk (so their sums may round differently).
    let whole_device = device_with(GpuOptions::from_env());
    let mut whole = model(&whole_device);
    let mut m = model(&device);
    let fit = || Fit::new().batch_size(8).epochs(2).seed(1).verbose(0);
    let (hw, hs) = (whole.fit(&x, &y, fit()).unwrap(), m.fit(&x, &y, fit()).unwrap());
    assert_eq!(bits(hs.get("loss").unwrap()), bits(hw.get("loss").unwrap()));
    let (ew, es) = (whole.evaluate(&x, &y).unwrap(), m.evaluate(&x, &y).unwrap());
    for ((kw, vw), (ks, vs)) in ew.iter().zip(&es) {
        assert_eq!(kw, ks);
        common::F32.check(&format!("evaluate {kw}"), &[*vs], &[*vw]);
    }
    common::F32.check("predict", m.predict(&x).unwrap().data(), whole.predict(&x).unwrap().data());
}

/// One-hot targets of three classes with class weights (the widest y a chunk holds: every output
/// and a weight), and validation_split: streamed as the whole upload, bit for bit.
#[test]
fn class_weighted_softmax_targets_stream_as_the_whole_upload() {
    let (x, _, _) = data(ROWS / 2, 6);
    let onehot: Vec<f32> = x
        .data()
        .chunks(COLS)
        .flat_map(|r| {
            let class = if r[0] > 0.3 {
                0
            } else if r[1] > 0.0 {
                1
            } else {
                2
            };
            (0..3).map(move |c| if c == class { 1.0 } else { 0.0 })
        })
        .collect();
    let y = Matrix::new(ROWS / 2, 3, onehot).unwrap();
    let run = |device: &Device| {
        let mut m = Sequential::new(
            device,
            vec![Dense::new(8).activation("relu").input_shape(COLS), Dense::new(3).activation("softmax")],
        );
        m.compile("adam", "categorical_crossentropy", &["accuracy"]).unwrap();
        let fit = Fit::new()
            .validation_split(0.25)
            .class_weight([(0, 0.5), (2, 3.0)])
            .batch_size(50)
            .epochs(2)
            .seed(3)
            .verbose(0);
        let h = m.fit(&x, &y, fit).unwrap();
        let mut keys: Vec<_> = h.keys().map(|k| (k.to_string(), bits(h.get(k).unwrap()))).collect();
        keys.sort();
        keys
    };
    let whole = run(&device_with(GpuOptions::from_env()));
    assert!(whole.iter().any(|(k, _)| k == "val_accuracy"));
    let small = lowered();
    let before = wgfit::testing::gpu_submissions(&small);
    assert_eq!(run(&small), whole);
    let submissions = wgfit::testing::gpu_submissions(&small) - before;
    assert!(submissions >= 8, "{submissions} submissions: the data did not stream");
}

/// The profiler sees every piece of a streamed epoch: the same dispatches per kernel as the
/// whole upload's epoch.
#[test]
fn a_profiled_streamed_epoch_counts_every_piece() {
    let (x, y, _) = data(ROWS / 2, 7);
    let run = |device: &Device| {
        let mut m = model(device);
        let h = m.fit(&x, &y, Fit::new().batch_size(64).epochs(1).profile(true).verbose(0)).unwrap();
        assert_eq!(h.profile.len(), 1);
        let mut rows: Vec<(String, u64)> =
            h.profile[0].kernels.iter().map(|k| (k.kernel.to_string(), k.dispatches)).collect();
        rows.sort();
        (rows, bits(h.get("loss").unwrap()))
    };
    let whole = run(&device_with(GpuOptions::from_env()));
    assert!(whole.0.iter().any(|(k, n)| k == "gather" && *n == (ROWS / 2).div_ceil(64) as u64), "{:?}", whole.0);
    assert_eq!(run(&lowered()), whole);
}
