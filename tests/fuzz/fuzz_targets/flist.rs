//! libFuzzer entry of the `flist` target (the target itself: `oxrsyncd_fuzz::flist`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| oxrsyncd_fuzz::flist(data));
