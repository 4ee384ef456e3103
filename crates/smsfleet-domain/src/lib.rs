//! The pure core of smsfleet: what a message, a destination, a charge and a
//! delivery status are, with no I/O. Every role and both HTTP APIs build on
//! these types, so a rule (segment counting, number cleaning, rate lookup)
//! is written once and unit-tested here.

pub mod account;
pub mod charge;
pub mod clock;
pub mod ids;
pub mod ipallow;
pub mod keyword;
pub mod money;
pub mod msisdn;
pub mod schedule;
pub mod status;
pub mod template;
pub mod text;

pub use charge::{RateTable, charge_for};
pub use ids::{QueueCode, SmsLogId, SnowflakeGenerator};
pub use money::Credit;
pub use msisdn::Msisdn;
pub use status::DeliveryStatus;
pub use text::{Encoding, SegmentCount};
