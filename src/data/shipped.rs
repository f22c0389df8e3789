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
