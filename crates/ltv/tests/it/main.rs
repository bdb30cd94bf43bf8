//! Integration tests of cdphub-ltv: the CDNOW benchmark against published and `lifetimes`
//! results, and fits of simulated customer bases.

mod cdnow;
mod simulate;
mod simulated;
