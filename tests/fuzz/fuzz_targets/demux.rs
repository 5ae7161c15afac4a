//! libFuzzer entry of the `demux` target (the target itself: `oxrsyncd_fuzz::demux`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| oxrsyncd_fuzz::demux(data));
