//! Placeholder: the bare Pingora proxy is being written.
fn main() {}
