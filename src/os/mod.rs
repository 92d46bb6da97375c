pub mod untrusted;
