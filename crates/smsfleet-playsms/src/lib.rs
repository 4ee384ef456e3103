//! smsfleet-playsms: the playSMS webservices *wire format*, with no I/O.
//!
//! The HTTP layer hands raw request parts to [`params`] and gets back a
//! [`Params`] with PHP `$_REQUEST` semantics; op handlers build a [`Node`]
//! tree (ordered, because playSMS key order is on the wire), wrap it with the
//! [`envelope`] helpers and the HTTP layer serialises it with [`render`] in
//! the format the client asked for (JSON, XML or PHP `serialize()`).

pub mod envelope;
pub mod node;
pub mod params;
mod phpnum;
pub mod render;

pub use node::Node;
pub use params::{Format, Params};
pub use phpnum::float_cast;
pub use render::{Rendered, render};
