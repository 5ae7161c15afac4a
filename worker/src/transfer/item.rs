//! Item flags (upstream's `ITEM_*`): what the generator says about each
//! file, sent with its index; the client prints them with `-i`.

pub const REPORT_ATIME: u16 = 1 << 0;
pub const REPORT_CHANGE: u16 = 1 << 1;
pub const REPORT_SIZE: u16 = 1 << 2;
pub const REPORT_TIME: u16 = 1 << 3;
pub const REPORT_PERMS: u16 = 1 << 4;
pub const REPORT_OWNER: u16 = 1 << 5;
pub const REPORT_GROUP: u16 = 1 << 6;
/// The extended attributes differ (the client's generator may follow
/// with a request for abbreviated values).
pub const REPORT_XATTR: u16 = 1 << 8;
pub const BASIS_TYPE_FOLLOWS: u16 = 1 << 11;
pub const XNAME_FOLLOWS: u16 = 1 << 12;
pub const IS_NEW: u16 = 1 << 13;
pub const LOCAL_CHANGE: u16 = 1 << 14;
pub const TRANSFER: u16 = 1 << 15;
