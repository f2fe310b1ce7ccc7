//! The reference integration end to end, in-process on port 0: the gateway, the insurer and the
//! clinic as `vestnik demo` wires them.

mod crosscheck;
mod story;
