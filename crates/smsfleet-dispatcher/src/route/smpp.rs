//! The `[route.smpp]` table. A stub in this branch: the SMPP client
//! (branch `w-smpp-core`) replaces this file with the real settings.

/// The settings of an SMPP route.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmppSettings {}

impl SmppSettings {
    pub fn validate(&self, _route: &str) -> Result<(), String> {
        Err("smpp routes are not available in this build".into())
    }
}
