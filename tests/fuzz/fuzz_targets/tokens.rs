//! libFuzzer entry of the `tokens` target (the target itself: `oxrsyncd_fuzz::tokens`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| oxrsyncd_fuzz::tokens(data));
