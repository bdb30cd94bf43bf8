//! Integration tests of the model runner's crate: the repository's mart models run on the
//! hand-made fixture in `tests/marts/fixture.sql`, then `tests/marts/*.slt` check the
//! values (worked out by hand in their comments).

mod marts;
