//! The process allocator, mimalloc, and its purge delay: how long freed memory stays mapped
//! before it goes back to the OS.
//!
//! A query frees and allocates large buffers batch after batch. With mimalloc's default of
//! 1 s, much of that memory is handed back and faulted in again: a scale-10 marts run took
//! 2.4 M page faults and 5.7 s of system time (17.4 s wall). With 10 s it takes 1.2 M faults
//! and 3.4 s (15.9 s wall), for a peak RSS of 4.15 GiB instead of 3.2 GiB. An idle server
//! still returns its memory after 10 s.

use std::ffi::c_long;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `MIMALLOC_PURGE_DELAY` when the environment does not set it, in milliseconds.
const PURGE_DELAY_MS: c_long = 10_000;

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_e` (include/mimalloc.h of the
/// libmimalloc-sys version in Cargo.lock); libmimalloc-sys does not export this constant.
const MI_OPTION_PURGE_DELAY: i32 = 15;

#[allow(unsafe_code)]
mod ffi {
    unsafe extern "C" {
        pub fn mi_option_set(option: i32, value: std::ffi::c_long);
        #[cfg(test)]
        pub fn mi_option_get(option: i32) -> std::ffi::c_long;
    }
}

/// Sets the purge delay unless `MIMALLOC_PURGE_DELAY` chose one (mimalloc read it at start).
pub fn keep_freed_memory_longer() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: mi_option_set stores a value that mimalloc reads on each purge decision; any
    // value is valid for this option, and it is called before the runtime starts threads.
    #[allow(unsafe_code)]
    unsafe {
        ffi::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS)
    };
}

/// mimalloc's current purge delay in milliseconds.
#[cfg(test)]
fn purge_delay_ms() -> c_long {
    // SAFETY: reads an option value.
    #[allow(unsafe_code)]
    unsafe {
        ffi::mi_option_get(MI_OPTION_PURGE_DELAY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_set_is_the_purge_delay() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // 1000 ms is mimalloc 3's default purge delay and no other option's default, so a
        // wrong option index fails here.
        assert_eq!(purge_delay_ms(), 1000);
        keep_freed_memory_longer();
        assert_eq!(purge_delay_ms(), PURGE_DELAY_MS);
    }
}
