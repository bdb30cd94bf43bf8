//! End-to-end tests through the `cdphub` binary, on local disk and on s3://.

mod attribution;
mod bad_input;
mod common;
mod identity;
mod marts;
mod pipeline;
mod s3;
mod users;
