//! placeholder

pub mod soql;
