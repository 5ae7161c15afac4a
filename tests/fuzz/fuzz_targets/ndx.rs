//! libFuzzer entry of the `ndx` target (the target itself: `oxrsyncd_fuzz::ndx`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| oxrsyncd_fuzz::ndx(data));
