//! Serde for `Vec<f32>` that round-trips bit for bit through JSON: written as serde_json writes
//! f32 (the shortest decimal that reads back to the same f32), read back with Rust's correctly
//! rounded `str::parse::<f32>` (serde_json itself reads through f64, which can round twice).
//! Reading needs serde_json's own deserializer (`from_str`/`from_slice`/`from_reader`).

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

pub fn serialize<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
    if let Some(x) = v.iter().find(|x| !x.is_finite()) {
        return Err(serde::ser::Error::custom(format!("cannot save the non-finite value {x}")));
    }
    v.serialize(s)
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
    let raw = Box::<RawValue>::deserialize(d)?;
    parse(raw.get()).map_err(D::Error::custom)
}

/// Parses a JSON array of numbers to f32 exactly.
pub fn parse(text: &str) -> Result<Vec<f32>, String> {
    let inner = text
        .trim()
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .ok_or_else(|| "expected an array of numbers".to_string())?;
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    inner
        .split(',')
        .enumerate()
        .map(|(i, s)| {
            let s = s.trim();
            match s.parse::<f32>() {
                Ok(v) if v.is_finite() && !s.starts_with(['+', 'i', 'I', 'n', 'N']) => Ok(v),
                _ => Err(format!("element {i} of a number array is {s:?}, not a finite number")),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    #[test]
    fn exact_f32_round_trips_random_bits() {
        use rand::Rng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut v: Vec<f32> = (0..200_000).map(|_| f32::from_bits(rng.random())).filter(|x| x.is_finite()).collect();
        v.extend([0.0, -0.0, f32::MIN_POSITIVE, f32::MAX, f32::MIN, 1e-45, 0.1, 1.0 / 3.0]);
        #[derive(serde::Serialize, serde::Deserialize)]
        struct W(#[serde(with = "crate::io::exact_f32")] Vec<f32>);
        let text = serde_json::to_string(&W(v.clone())).unwrap();
        let back: W = serde_json::from_str(&text).unwrap();
        assert_eq!(v.len(), back.0.len());
        for (a, b) in v.iter().zip(&back.0) {
            assert_eq!(a.to_bits(), b.to_bits(), "{a} came back as {b}");
        }
    }
}
