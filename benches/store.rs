//! Store benchmarks (durable acts per second with group commit; inbox first page at scale).
//! Filled in by the next commit.
fn main() {}
