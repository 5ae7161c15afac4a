//! libFuzzer entry of the `args` target (the target itself: `oxrsyncd_fuzz::args`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| oxrsyncd_fuzz::args(data));
