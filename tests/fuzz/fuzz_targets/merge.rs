//! libFuzzer entry of the `merge` target (the target itself: `oxrsyncd_fuzz::merge`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| oxrsyncd_fuzz::merge(data));
