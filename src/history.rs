//! The per-epoch record fit returns, keyed like Keras's `history.history`.

use crate::error::{Error, Result};

/// Loss and metric values per epoch: `loss`, `<metric>`, `val_loss`, `val_<metric>`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct History {
    keys: Vec<String>,
    values: Vec<Vec<f32>>,
    /// The epoch EarlyStopping judged best (0-based), when it ran.
    pub best_epoch: Option<usize>,
}

impl History {
    pub(crate) fn push(&mut self, key: &str, value: f32) {
        match self.keys.iter().position(|k| k == key) {
            Some(i) => self.values[i].push(value),
            None => {
                self.keys.push(key.to_string());
                self.values.push(vec![value]);
            }
        }
    }

    /// The values of `key`, one per epoch.
    pub fn get(&self, key: &str) -> Option<&[f32]> {
        self.keys.iter().position(|k| k == key).map(|i| self.values[i].as_slice())
    }

    /// The keys, in Keras's order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(String::as_str)
    }

    /// Number of epochs recorded.
    pub fn epochs(&self) -> usize {
        self.values.first().map_or(0, Vec::len)
    }

    /// The last epoch's value of `key`.
    pub fn last(&self, key: &str) -> Option<f32> {
        self.get(key).and_then(|v| v.last().copied())
    }

    /// The values of `key`, or an error naming the keys there are.
    pub fn require(&self, key: &str) -> Result<&[f32]> {
        self.get(key)
            .ok_or_else(|| Error::State(format!("History has no key {key:?}; it has {}", self.keys.join(", "))))
    }
}

impl std::ops::Index<&str> for History {
    type Output = [f32];

    /// Panics on a missing key, like indexing a map; use [`History::get`] to ask.
    fn index(&self, key: &str) -> &[f32] {
        match self.get(key) {
            Some(v) => v,
            None => panic!("History has no key {key:?}; it has {}", self.keys.join(", ")),
        }
    }
}
