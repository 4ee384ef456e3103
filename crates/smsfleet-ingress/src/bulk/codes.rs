//! Reply codes of the bulk API. 1711–1713 are smsfleet extensions for a
//! malformed schedule; the others are the API's own.

pub const SUBMITTED: u16 = 1701;
pub const INVALID_URL: u16 = 1702;
pub const BAD_CREDENTIALS: u16 = 1703;
pub const BAD_TYPE: u16 = 1704;
pub const BAD_MESSAGE: u16 = 1705;
pub const BAD_DESTINATION: u16 = 1706;
pub const BAD_SOURCE: u16 = 1707;
pub const BAD_DLR: u16 = 1708;
pub const USER_VALIDATION: u16 = 1709;
pub const INTERNAL: u16 = 1710;
pub const BAD_DATE: u16 = 1711;
pub const BAD_TIME: u16 = 1712;
pub const BAD_GMT: u16 = 1713;
pub const TIMEOUT: u16 = 1715;
pub const NO_CREDIT: u16 = 1725;
pub const DND: u16 = 1732;
pub const SPAM: u16 = 1028;
pub const TEMPLATE: u16 = 1033;
pub const DUPLICATE: u16 = 1041;
pub const STOP_LIST: u16 = 1042;
pub const IP_BLACKLISTED: u16 = 16;
pub const IP_NOT_WHITELISTED: u16 = 18;
