//! libFuzzer entry of the `proxy_header` target (the target itself: `oxrsyncd_fuzz::proxy_header`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| oxrsyncd_fuzz::proxy_header(data));
