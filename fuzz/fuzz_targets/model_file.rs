//! The model-file loaders on arbitrary bytes: `load_model` (JSON model files), and
//! `load_weights` for JSON and safetensors weights files. A file that loads must then predict
//! (and apply its preprocessing) without panicking; anything else must be an `Err`.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use wgfit::{Dense, Device, Matrix, Sequential};

/// One scratch directory per fuzzing process (the loaders read files).
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("wgfit-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        dir
    })
}

fuzz_target!(|bytes: &[u8]| {
    let device = Device::cpu();
    let json = scratch().join("model.json");
    std::fs::write(&json, bytes).expect("write the input");
    if let Ok(loaded) = wgfit::io::load_model(&json, &device) {
        let mut model = loaded.model;
        // Its input width is the one predict accepts (every other width is an Err).
        for width in 1..=16 {
            let x = Matrix::new(2, width, vec![0.5; 2 * width]).expect("a matrix");
            let _ = model.predict(&x);
        }
        if let Some(pre) = loaded.preprocessor {
            let names: Vec<String> = pre.features().iter().map(|f| f.column().to_string()).collect();
            let header = names.iter().map(String::as_str).chain([pre.target()]).collect::<Vec<_>>().join(",");
            let row = vec!["1"; names.len() + 1].join(",");
            let csv = format!("{header}\n{row}\n");
            if let Ok(t) = wgfit::data::RawTable::parse_csv(csv.as_bytes(), &json) {
                if let Ok(x) = pre.transform_x(&t) {
                    let _ = model.predict(&x);
                }
            }
        }
    }
    // The same bytes as weights files for a small fixed model.
    let mut target = Sequential::new(&device, vec![Dense::new(3).activation("relu").input_shape(2), Dense::new(1)]);
    if target.compile("sgd", "mse", &[]).is_ok() {
        let _ = target.load_weights(&json);
        let st = scratch().join("weights.safetensors");
        std::fs::write(&st, bytes).expect("write the input");
        let _ = target.load_weights(&st);
    }
});
