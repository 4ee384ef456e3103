//! Delivery status as playSMS reports it in `ds`, and the rule that merges
//! status events arriving out of order.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

// Named `Status` in the bus schemas (`proto/`); the variants' notes are
// plain comments so the schema stays a bare string enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(rename = "Status")]
pub enum DeliveryStatus {
    // Accepted, not yet handed to an upstream SMSC.
    Pending,
    // Accepted by the upstream SMSC.
    Sent,
    // Rejected, expired or reported undeliverable.
    Failed,
    // The handset received it.
    Delivered,
}

impl DeliveryStatus {
    /// The number playSMS puts in `ds` items.
    pub fn playsms_code(self) -> i16 {
        match self {
            Self::Pending => 0,
            Self::Sent => 1,
            Self::Failed => 2,
            Self::Delivered => 3,
        }
    }

    pub fn from_playsms_code(code: i16) -> Option<Self> {
        Some(match code {
            0 => Self::Pending,
            1 => Self::Sent,
            2 => Self::Failed,
            3 => Self::Delivered,
            _ => return None,
        })
    }

    /// Events race (a delivery report can overtake the "sent" event), so
    /// the projection keeps the status with the highest rank: terminal
    /// states beat `Sent`, which beats `Pending`.
    pub fn rank(self) -> u8 {
        match self {
            Self::Pending => 0,
            Self::Sent => 1,
            Self::Failed | Self::Delivered => 2,
        }
    }

    pub fn is_final(self) -> bool {
        self.rank() == 2
    }

    /// The status to keep when `incoming` arrives while `self` is stored.
    pub fn merge(self, incoming: Self) -> Self {
        if incoming.rank() > self.rank() { incoming } else { self }
    }
}

#[cfg(test)]
mod tests {
    use super::DeliveryStatus::*;

    #[test]
    fn codes_round_trip() {
        for s in [Pending, Sent, Failed, Delivered] {
            assert_eq!(super::DeliveryStatus::from_playsms_code(s.playsms_code()), Some(s));
        }
    }

    #[test]
    fn late_sent_event_does_not_undo_delivery() {
        assert_eq!(Delivered.merge(Sent), Delivered);
        assert_eq!(Pending.merge(Sent), Sent);
        assert_eq!(Sent.merge(Failed), Failed);
        assert_eq!(Failed.merge(Delivered), Failed);
    }
}
