//! libFuzzer entry of the `xattr_request` target (the target itself: `oxrsyncd_fuzz::xattr_request`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| oxrsyncd_fuzz::xattr_request(data));
