//! Credit as an exact decimal: binary floats cannot hold 0.1, and a ledger
//! that drifts by a fraction per message is wrong after a million messages.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Credit(pub Decimal);

impl Credit {
    pub const ZERO: Credit = Credit(Decimal::ZERO);

    pub fn new(d: Decimal) -> Self {
        Self(d.normalize())
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// A value for playSMS's JSON: the shortest form PHP would print.
    pub fn to_f64(self) -> f64 {
        use rust_decimal::prelude::ToPrimitive;
        self.0.to_f64().unwrap_or(0.0)
    }
}

impl std::ops::Add for Credit {
    type Output = Credit;
    fn add(self, rhs: Credit) -> Credit {
        Credit::new(self.0 + rhs.0)
    }
}

impl std::ops::Sub for Credit {
    type Output = Credit;
    fn sub(self, rhs: Credit) -> Credit {
        Credit::new(self.0 - rhs.0)
    }
}

impl std::ops::Mul<u32> for Credit {
    type Output = Credit;
    fn mul(self, rhs: u32) -> Credit {
        Credit::new(self.0 * Decimal::from(rhs))
    }
}

impl std::iter::Sum for Credit {
    fn sum<I: Iterator<Item = Credit>>(iter: I) -> Credit {
        iter.fold(Credit::ZERO, |a, b| a + b)
    }
}

impl fmt::Display for Credit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.normalize())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a decimal amount: {0:?}")]
pub struct BadAmount(pub String);

impl FromStr for Credit {
    type Err = BadAmount;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Decimal::from_str(s.trim()).map(Credit::new).map_err(|_| BadAmount(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenths_add_up_exactly() {
        let tenth: Credit = "0.1".parse().unwrap();
        let total: Credit = std::iter::repeat_n(tenth, 1_000_000).sum();
        assert_eq!(total, "100000".parse().unwrap());
    }

    #[test]
    fn display_is_normalized() {
        let c: Credit = "87.500".parse().unwrap();
        assert_eq!(c.to_string(), "87.5");
        assert!("abc".parse::<Credit>().is_err());
    }
}
