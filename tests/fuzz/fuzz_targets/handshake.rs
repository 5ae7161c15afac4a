//! libFuzzer entry of the `handshake` target (the target itself: `oxrsyncd_fuzz::handshake`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| oxrsyncd_fuzz::handshake(data));
