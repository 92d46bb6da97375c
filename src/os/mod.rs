//! What differs between operating systems, behind small portable APIs; nothing else in
//! `src/` names an OS.

pub mod untrusted;
