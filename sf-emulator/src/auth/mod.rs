//! Authentication.

pub mod jwt;
pub mod soap;
