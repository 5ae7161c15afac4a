//! libFuzzer entry of the `acls` target (the target itself: `oxrsyncd_fuzz::acls`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| oxrsyncd_fuzz::acls(data));
