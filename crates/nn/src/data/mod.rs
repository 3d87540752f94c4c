//! Data utilities.
