//! The bulk HTTP API (Route Mobile style): `/bulksms/bulksms` and
//! `/bulksms/schedulemsg`, GET query or POST form (the body overrides the
//! query). Replies are `text/plain` lines `<code>|<destination>|<id>` joined
//! with commas, always with HTTP 200: the API's own client samples treat any
//! other status as a transport failure.
//!
//! [`codes`] names the reply codes, [`request`] interprets a request
//! (pure), [`state`] holds the settings and caches, [`guards`]
//! authenticates, [`handler`] runs a request through the accept path and
//! renders the reply.

pub mod codes;
mod guards;
mod handler;
pub mod request;
pub(crate) mod state;

pub use handler::{bulksms, schedulemsg};
pub use state::{BulkSettings, BulkState};
