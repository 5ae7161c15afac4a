//! libFuzzer entry of the `config_toml` target (the target itself: `oxrsyncd_fuzz::config_toml`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| oxrsyncd_fuzz::config_toml(data));
