//! Images: decoding and verifying the files a split references.
//!
//! Decoding follows the user's PyTorch pipeline (`Image.open(path).convert("RGB")`):
//! grayscale is expanded to three equal channels and alpha is dropped, not composited.

pub mod cache;
pub mod check;
pub mod decode;
pub mod jpeg;
pub mod loader;
pub mod settings;
pub mod transform;
