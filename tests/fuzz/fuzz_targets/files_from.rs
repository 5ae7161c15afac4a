//! libFuzzer entry of the `files_from` target (the target itself: `oxrsyncd_fuzz::files_from`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| oxrsyncd_fuzz::files_from(data));
