//! The `[route.smpp]` table: an SMSC reached over SMPP 3.4 (binds, timers,
//! text coding, id matching). Checked at start so a bad value stops it with
//! the field named; the session layer is `smsfleet-smpp`.

use std::time::Duration;

use serde::{Deserialize, Deserializer};
use smsfleet_smpp::{
    BindKind, SessionConfig,
    client::{self, BindConfig, BindConfigError, ClientConfig, Endpoint},
    receipt::IdMatch,
    text::{DataCodingMap, Encoding, SplitMode},
};

use super::http::Secret;

fn default_port() -> u16 {
    2775
}
fn one() -> u32 {
    1
}
fn default_window() -> usize {
    10
}
fn thirty() -> u64 {
    30
}
fn default_reconnect_min() -> u64 {
    1
}
fn default_reconnect_max() -> u64 {
    60
}
fn default_throttle_pause_ms() -> u64 {
    1000
}
fn yes() -> bool {
    true
}
fn international() -> u8 {
    1
}

fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(Secret))
}

/// The settings of an SMPP route, as written in `[route.smpp]`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmppSettings {
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    /// TLS (not in SMPP 3.4, widely deployed): the SMSC's certificate is
    /// checked against `ca_file` and `server_name` (default: `host`).
    #[serde(default)]
    pub tls: Option<SmppTls>,
    pub system_id: String,
    #[serde(default, deserialize_with = "secret")]
    pub password: Option<Secret>,
    /// The name of an environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default)]
    pub system_type: String,
    #[serde(default)]
    pub bind: BindType,
    /// Binds of this route across the whole fleet (leased through the bus).
    #[serde(default = "one")]
    pub binds: u32,
    /// submit_sm awaiting their response, per bind.
    #[serde(default = "default_window")]
    pub window: usize,
    /// Parts per second per bind; absent is unpaced (the route's
    /// `[route.limits] parts_per_second` still applies).
    #[serde(default)]
    pub parts_per_second_per_bind: Option<f64>,
    #[serde(default = "thirty")]
    pub enquire_link_secs: u64,
    #[serde(default = "thirty")]
    pub response_timeout_secs: u64,
    #[serde(default = "default_reconnect_min")]
    pub reconnect_min_secs: u64,
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max_secs: u64,
    /// How long a bind pauses after ESME_RTHROTTLED / ESME_RMSGQFUL before
    /// retrying (doubling while it lasts, up to 30 s).
    #[serde(default = "default_throttle_pause_ms")]
    pub throttle_pause_ms: u64,
    #[serde(default)]
    pub data_coding: DataCodingTable,
    #[serde(default)]
    pub split: Split,
    #[serde(default)]
    pub id_match: IdMatchSetting,
    /// The SMSC recognises a resend (so a submit whose response never came
    /// may be sent again). Off unless said: an SMSC that does not would
    /// deliver it twice.
    #[serde(default)]
    pub resend: bool,
    #[serde(default = "yes")]
    pub registered_delivery: bool,
    #[serde(default)]
    pub service_type: String,
    /// Absent: 1/1 (international, E.164) for a numeric sender, 5/0
    /// (alphanumeric) otherwise.
    #[serde(default)]
    pub source_ton: Option<u8>,
    #[serde(default)]
    pub source_npi: Option<u8>,
    #[serde(default = "international")]
    pub destination_ton: u8,
    #[serde(default = "international")]
    pub destination_npi: u8,
}

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmppTls {
    pub ca_file: std::path::PathBuf,
    #[serde(default)]
    pub server_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BindType {
    Tx,
    Rx,
    #[default]
    Trx,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    #[default]
    Udh,
    Sar,
    Payload,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdMatchSetting {
    #[default]
    AsIs,
    HexToDec,
    DecToHex,
    Normalized,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Alphabet {
    #[default]
    Gsm7,
    Latin1,
}

/// What data_coding the SMSC wants for each alphabet, and what its DCS 0 is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataCodingTable {
    #[serde(default)]
    pub gsm7: u8,
    #[serde(default = "latin1_dcs")]
    pub latin1: u8,
    #[serde(default = "ucs2_dcs")]
    pub ucs2: u8,
    /// What DCS 0 means at this SMSC (in receipts and MOs).
    #[serde(default)]
    pub default_alphabet: Alphabet,
}

fn latin1_dcs() -> u8 {
    3
}
fn ucs2_dcs() -> u8 {
    8
}

impl Default for DataCodingTable {
    fn default() -> Self {
        Self { gsm7: 0, latin1: 3, ucs2: 8, default_alphabet: Alphabet::Gsm7 }
    }
}

impl SmppSettings {
    /// Checks every field; the error names it. The password (or its
    /// environment variable) is resolved here too, so a missing secret
    /// stops the start.
    pub fn validate(&self, _route: &str) -> Result<(), String> {
        if self.host.trim().is_empty() {
            return Err("host: required".into());
        }
        if self.port == 0 {
            return Err("port: must be 1-65535".into());
        }
        self.bind_config()?;
        if self.binds == 0 || self.binds > 64 {
            return Err("binds: must be 1-64".into());
        }
        if self.window == 0 || self.window > 10_000 {
            return Err("window: must be 1-10000".into());
        }
        if let Some(r) = self.parts_per_second_per_bind
            && !(r.is_finite() && r > 0.0)
        {
            return Err("parts_per_second_per_bind: must be > 0".into());
        }
        if self.response_timeout_secs == 0 {
            return Err("response_timeout_secs: must be > 0".into());
        }
        if self.reconnect_min_secs == 0 || self.reconnect_max_secs < self.reconnect_min_secs {
            return Err("reconnect_min_secs / reconnect_max_secs: need 0 < min <= max".into());
        }
        if let Some(tls) = &self.tls {
            let pem =
                std::fs::read(&tls.ca_file).map_err(|e| format!("tls.ca_file: {}: {e}", tls.ca_file.display()))?;
            client::tls_config_from_ca_pem(&pem).map_err(|e| format!("tls.ca_file: {e}"))?;
            let name = tls.server_name.as_deref().unwrap_or(&self.host);
            rustls_name(name).map_err(|e| format!("tls.server_name: {e}"))?;
        }
        if self.service_type.len() > 5 {
            return Err("service_type: at most 5 characters".into());
        }
        Ok(())
    }

    /// The password, from the file or the environment variable it names.
    pub fn password(&self) -> Result<String, String> {
        match (&self.password, &self.password_env) {
            (Some(_), Some(_)) => Err("password and password_env: set only one".into()),
            (Some(p), None) => Ok(p.0.clone()),
            (None, Some(var)) => std::env::var(var).map_err(|_| format!("password_env: {var} is not set")),
            (None, None) => Ok(String::new()),
        }
    }

    pub fn bind_config(&self) -> Result<BindConfig, String> {
        let kind = match self.bind {
            BindType::Tx => BindKind::Transmitter,
            BindType::Rx => BindKind::Receiver,
            BindType::Trx => BindKind::Transceiver,
        };
        let password = self.password()?;
        BindConfig::new(kind, &self.system_id, password, &self.system_type).map_err(|e| match e {
            BindConfigError::SystemId => "system_id: 1 to 15 ASCII characters".to_owned(),
            BindConfigError::Password => "password: at most 8 characters (SMPP 3.4)".to_owned(),
            BindConfigError::SystemType => "system_type: at most 12 characters".to_owned(),
            BindConfigError::AddressRange => "address_range: at most 40 characters".to_owned(),
        })
    }

    pub fn endpoint(&self) -> Result<Endpoint, String> {
        match &self.tls {
            None => Ok(Endpoint::Tcp { host: self.host.clone(), port: self.port }),
            Some(tls) => {
                let pem = std::fs::read(&tls.ca_file).map_err(|e| format!("tls.ca_file: {e}"))?;
                let config = client::tls_config_from_ca_pem(&pem)?;
                let server_name = tls.server_name.clone().unwrap_or_else(|| self.host.clone());
                Ok(Endpoint::Tls { host: self.host.clone(), port: self.port, tls: config, server_name })
            }
        }
    }

    pub fn session_config(&self) -> SessionConfig {
        SessionConfig {
            window: self.window,
            rate_per_sec: self.parts_per_second_per_bind,
            enquire_link_interval: (self.enquire_link_secs > 0).then(|| Duration::from_secs(self.enquire_link_secs)),
            response_timeout: Duration::from_secs(self.response_timeout_secs),
            // Receipts stored side by side before their deliver_sm_resp.
            inbound_window: 512,
            ..SessionConfig::default()
        }
    }

    pub fn client_config(&self) -> Result<ClientConfig, String> {
        Ok(ClientConfig {
            endpoint: self.endpoint()?,
            bind: self.bind_config()?,
            session: self.session_config(),
            connect_timeout: Duration::from_secs(self.response_timeout_secs.clamp(1, 10)),
            reconnect_min: Duration::from_secs(self.reconnect_min_secs),
            reconnect_max: Duration::from_secs(self.reconnect_max_secs),
        })
    }

    pub fn data_coding_map(&self) -> DataCodingMap {
        let d = self.data_coding;
        DataCodingMap {
            gsm7: d.gsm7,
            latin1: d.latin1,
            ucs2: d.ucs2,
            default_alphabet: match d.default_alphabet {
                Alphabet::Gsm7 => Encoding::Gsm7,
                Alphabet::Latin1 => Encoding::Latin1,
            },
        }
    }

    pub fn split_mode(&self) -> SplitMode {
        match self.split {
            Split::Udh => SplitMode::Udh,
            Split::Sar => SplitMode::Sar,
            Split::Payload => SplitMode::Payload,
        }
    }

    pub fn id_match(&self) -> IdMatch {
        match self.id_match {
            IdMatchSetting::AsIs => IdMatch::AsIs,
            IdMatchSetting::HexToDec => IdMatch::HexToDec,
            IdMatchSetting::DecToHex => IdMatch::DecToHex,
            IdMatchSetting::Normalized => IdMatch::Normalized,
        }
    }

    /// Whether the route receives receipts and MOs (RX or TRX binds).
    pub fn receives(&self) -> bool {
        self.bind != BindType::Tx
    }
}

fn rustls_name(name: &str) -> Result<(), String> {
    rustls::pki_types::ServerName::try_from(name.to_owned()).map(|_| ()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn parse(toml_text: &str) -> Result<SmppSettings, String> {
        let table: toml::Table = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        SmppSettings::deserialize(table).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let s = parse("host = \"smsc\"\nsystem_id = \"me\"\npassword = \"pw\"").unwrap();
        assert_eq!((s.port, s.binds, s.window, s.bind), (2775, 1, 10, BindType::Trx));
        assert_eq!(s.split_mode(), SplitMode::Udh);
        assert_eq!(s.id_match(), IdMatch::AsIs);
        assert!(!s.resend);
        assert!(s.validate("r").is_ok());
        assert!(!format!("{s:?}").contains("\"pw\""));
    }

    #[test]
    fn every_field() {
        let s = parse(
            r#"host = "smsc"
port = 2776
system_id = "me"
password_env = "SMSFLEET_TEST_SMPP_PW_SET"
system_type = "VMA"
bind = "tx"
binds = 4
window = 64
parts_per_second_per_bind = 50.0
enquire_link_secs = 15
response_timeout_secs = 5
reconnect_min_secs = 2
reconnect_max_secs = 30
throttle_pause_ms = 500
split = "sar"
id_match = "hex-to-dec"
resend = true
registered_delivery = false
service_type = "CMT"
source_ton = 5
source_npi = 0
destination_ton = 1
destination_npi = 1
[data_coding]
gsm7 = 1
latin1 = 3
ucs2 = 8
default_alphabet = "latin1"
"#,
        )
        .unwrap();
        assert_eq!(s.id_match(), IdMatch::HexToDec);
        assert_eq!(s.data_coding_map().default_alphabet, Encoding::Latin1);
        // SAFETY of the test: a variable name no other test uses.
        assert_eq!(s.validate("r").unwrap_err(), "password_env: SMSFLEET_TEST_SMPP_PW_SET is not set");
    }

    #[test]
    fn refusals_name_the_field() {
        let base = "host = \"smsc\"\nsystem_id = \"me\"\n";
        let err = |extra: &str| parse(&format!("{base}{extra}")).and_then(|s| s.validate("r")).unwrap_err();
        assert!(err("password = \"123456789\"").starts_with("password:"));
        assert!(err("password_env = \"SMSFLEET_TEST_SMPP_PW_MISSING\"").starts_with("password_env:"));
        assert!(err("window = 0").starts_with("window:"));
        assert!(err("binds = 0").starts_with("binds:"));
        assert!(err("colour = \"red\"").contains("unknown field"));
        assert!(err("bind = \"both\"").contains("unknown variant"));
        assert!(err("id_match = \"hex\"").contains("unknown variant"));
        assert!(err("[tls]\nca_file = \"/nonexistent/ca.pem\"").starts_with("tls.ca_file:"));
        assert!(parse("system_id = \"me\"").is_err());
    }
}
