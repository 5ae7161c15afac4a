//! libFuzzer entry of the `option_values` target (the target itself: `oxrsyncd_fuzz::option_values`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| oxrsyncd_fuzz::option_values(data));
