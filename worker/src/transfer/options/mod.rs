//! The client's options, parsed once per session: what a transfer does
//! ([`client`]), which of them the module refuses ([`refuse`]), and the
//! values with a grammar of their own ([`size_arg`], [`chmod`]).

pub mod chmod;
pub mod client;
pub mod refuse;
pub mod size_arg;
