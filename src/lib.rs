//! brick
