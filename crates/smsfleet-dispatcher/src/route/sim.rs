//! The `[route.sim]` table: smsfleet's own simulator over its JSON protocol.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimSettings {
    /// e.g. `http://127.0.0.1:8090/submit`.
    #[serde(rename = "url")]
    pub submit_url: String,
    /// The dlr role's base URL, e.g. `http://127.0.0.1:8081`; the upstream
    /// posts reports to [`smsfleet_contract::dlr_callback_url`] of it. In a
    /// routes file it may be left to the file's top-level `dlr_base_url`.
    #[serde(default)]
    pub dlr_base_url: String,
    /// The upstream dedupes by our reference, so a message whose earlier
    /// attempt has an unknown outcome (crash or timeout) may be sent again.
    /// The simulator does; `false` makes it stand in for one that does not
    /// (such messages are failed instead: at most once).
    #[serde(default = "yes", rename = "resend")]
    pub dedupes_by_reference: bool,
}

fn yes() -> bool {
    true
}
