//! Test harness shared by the integration tests (filled in below).
