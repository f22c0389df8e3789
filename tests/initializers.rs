//! Weight initializers by Keras's names: the distributions Keras's VarianceScaling formulas give
//! (limits, truncation at two standard deviations, the resulting variance), on a 200 x 300 kernel.

use wgfit::{Dense, Device, Error, Initializer, LayerKind, Sequential};

fn kernel_and_bias(kernel: &str, bias: &str) -> (Vec<f32>, Vec<f32>) {
    let layers = vec![Dense::new(300).input_shape(200).kernel_initializer(kernel).bias_initializer(bias)];
    let mut m = Sequential::new(&Device::cpu(), layers).seed(7);
    m.compile("sgd", "mse", &[]).unwrap();
    let (p, _) = m.get_weights().unwrap();
    (p[..200 * 300].to_vec(), p[200 * 300..].to_vec())
}

fn mean_std(v: &[f32]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

#[test]
fn each_initializer_draws_kerass_distribution() {
    let (fan_in, fan_out) = (200.0f64, 300.0f64);
    // (name, the variance Keras targets, uniform (limit) or truncated normal (bound of |v|))
    let cases = [
        ("glorot_uniform", 2.0 / (fan_in + fan_out), true),
        ("glorot_normal", 2.0 / (fan_in + fan_out), false),
        ("he_uniform", 2.0 / fan_in, true),
        ("he_normal", 2.0 / fan_in, false),
        ("lecun_uniform", 1.0 / fan_in, true),
        ("lecun_normal", 1.0 / fan_in, false),
    ];
    for (name, variance, uniform) in cases {
        let (k, b) = kernel_and_bias(name, "zeros");
        assert!(b.iter().all(|&v| v == 0.0), "{name}: bias not zeros");
        let (mean, std) = mean_std(&k);
        let want = variance.sqrt();
        assert!(mean.abs() < 0.02 * want * 10.0 / 3.0, "{name}: mean {mean}");
        assert!((std / want - 1.0).abs() < 0.03, "{name}: std {std}, Keras's formula gives {want}");
        let most = k.iter().map(|v| v.abs() as f64).fold(0.0, f64::max);
        let bound = if uniform { (3.0 * variance).sqrt() } else { 2.0 * want / 0.879_625_661_034_239_8 };
        assert!(most <= bound * (1.0 + 1e-6), "{name}: |v| up to {most}, bound {bound}");
        assert!(most > 0.9 * bound, "{name}: the range is not used ({most} of {bound})");
    }
    let (k, b) = kernel_and_bias("random_normal", "ones");
    let (mean, std) = mean_std(&k);
    assert!(mean.abs() < 0.002 && (std / 0.05 - 1.0).abs() < 0.03, "random_normal: {mean} {std}");
    assert!(b.iter().all(|&v| v == 1.0), "ones bias");
    let (k, b) = kernel_and_bias("random_uniform", "random_uniform");
    assert!(k.iter().chain(&b).all(|v| v.abs() <= 0.05), "random_uniform range");
    assert!((mean_std(&k).1 / (0.05 / 3f64.sqrt()) - 1.0).abs() < 0.03);
    let (k, _) = kernel_and_bias("zeros", "zeros");
    assert!(k.iter().all(|&v| v == 0.0));
    let (k, _) = kernel_and_bias("ones", "zeros");
    assert!(k.iter().all(|&v| v == 1.0));
}

#[test]
fn initializers_are_named_saved_and_checked() {
    let layers =
        vec![Dense::new(3).input_shape(2).kernel_initializer("he_normal").bias_initializer("ones"), Dense::new(1)];
    let mut m = Sequential::new(&Device::cpu(), layers);
    m.compile("adam", "mse", &[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.json");
    m.save(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("he_normal") && text.contains("\"ones\""), "{text}");
    let loaded = Sequential::load(&path, &Device::cpu()).unwrap();
    match loaded.layers()[0].kind() {
        LayerKind::Dense(c) => {
            assert_eq!((c.kernel_initializer(), c.bias_initializer()), (Initializer::HeNormal, Initializer::Ones))
        }
        other => panic!("{other:?}"),
    }
    // A model file written before initializers had names loads with Keras's defaults.
    let mut file: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut removed = 0;
    strip_initializers(&mut file, &mut removed);
    assert_eq!(removed, 4, "two Dense layers, two initializers each: {text}");
    {
        std::fs::write(&path, file.to_string()).unwrap();
        let loaded = Sequential::load(&path, &Device::cpu()).unwrap();
        match loaded.layers()[0].kind() {
            LayerKind::Dense(c) => {
                assert_eq!(
                    (c.kernel_initializer(), c.bias_initializer()),
                    (Initializer::GlorotUniform, Initializer::Zeros)
                )
            }
            other => panic!("{other:?}"),
        }
    }
    let mut bad = Sequential::new(&Device::cpu(), vec![Dense::new(1).input_shape(2).kernel_initializer("xavier")]);
    match bad.compile("adam", "mse", &[]) {
        Err(Error::Model(msg)) => assert!(msg.contains("xavier") && msg.contains("glorot_uniform"), "{msg}"),
        other => panic!("{other:?}"),
    }
    let mut misplaced = Sequential::new(
        &Device::cpu(),
        vec![Dense::new(1).input_shape(2), wgfit::Dropout::new(0.1).kernel_initializer("ones")],
    );
    assert!(misplaced.compile("adam", "mse", &[]).is_err());
}

/// Removes every "kernel_initializer" and "bias_initializer" key, counting them.
fn strip_initializers(v: &mut serde_json::Value, removed: &mut usize) {
    match v {
        serde_json::Value::Object(map) => {
            for key in ["kernel_initializer", "bias_initializer"] {
                if map.remove(key).is_some() {
                    *removed += 1;
                }
            }
            map.values_mut().for_each(|v| strip_initializers(v, removed));
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| strip_initializers(v, removed)),
        _ => {}
    }
}
