//! The shipped datasets of the course, with their fixed splits (compiled into the library).

use std::path::Path;

use super::{split_scaled, Table};
use crate::error::Result;
use crate::matrix::Matrix;

/// Concrete strength regression (1030 x 8), split 721 / 309.
pub fn concrete() -> Result<(Matrix, Matrix, Matrix, Matrix)> {
    let t = Table::parse_csv(include_bytes!("../../data/concrete.csv"), Path::new("data/concrete.csv"))?;
    split_scaled(&t, include_str!("../../data/concrete.json"))
}

/// Ionosphere binary classification (351 x 33), split 246 / 105.
pub fn ionosphere() -> Result<(Matrix, Matrix, Matrix, Matrix)> {
    let t = Table::parse_csv(include_bytes!("../../data/ionosphere.csv"), Path::new("data/ionosphere.csv"))?;
    split_scaled(&t, include_str!("../../data/ionosphere.json"))
}

/// Handwritten digits, 10 classes (1797 x 64 pixel intensities 0..16; scikit-learn's copy of the
/// UCI set), split 1258 / 539 (`df.sample(frac=0.7, random_state=0)`, as the course's splits).
/// The target is the digit 0..9, one column: the class index sparse_categorical_crossentropy takes.
pub fn digits() -> Result<(Matrix, Matrix, Matrix, Matrix)> {
    let t = Table::parse_csv(include_bytes!("../../data/digits.csv"), Path::new("data/digits.csv"))?;
    split_scaled(&t, include_str!("../../data/digits.json"))
}
