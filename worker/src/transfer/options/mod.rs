//! The client's options, parsed once per session: what a transfer does
//! ([`client`]), which of them the module refuses ([`refuse`]), and the
//! values with a grammar of their own ([`size_arg`], [`chmod`]).

pub(crate) mod chmod;
pub(crate) mod client;
pub(crate) mod refuse;
pub(crate) mod size_arg;
