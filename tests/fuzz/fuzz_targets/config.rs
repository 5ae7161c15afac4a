//! libFuzzer entry of the `config` target (the target itself: `oxrsyncd_fuzz::config`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| oxrsyncd_fuzz::config(data));
