//! libFuzzer entry of the `filter` target (the target itself: `oxrsyncd_fuzz::filter`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| oxrsyncd_fuzz::filter(data));
