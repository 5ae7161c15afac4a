//! libFuzzer entry of the `sums` target (the target itself: `oxrsyncd_fuzz::sums`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| oxrsyncd_fuzz::sums(data));
