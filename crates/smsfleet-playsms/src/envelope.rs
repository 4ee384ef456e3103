//! The playSMS response envelope around every op result.
//!
//! `webservices.php` appends `error_string` (looked up from the op's `error`
//! code, null when none) and `timestamp` after the op's own keys, so these
//! helpers always put them last. Timestamps are passed in so callers (and
//! tests) control the clock.

use crate::node::Node;

/// The `$ws_error_string` table from `webservices.php`, verbatim. Codes
/// without an entry (`0`, and `627` which stoplist emits) give `None`,
/// which is rendered as null.
pub fn error_string(code: u16) -> Option<&'static str> {
    Some(match code {
        100 => "authentication failed",
        101 => "type of action is invalid or unknown",
        102 => "one or more field empty",
        103 => "not enough credit for this operation",
        104 => "webservice token is not available",
        105 => "webservice token not enable for this user",
        106 => "webservice token not allowed from this IP address",
        200 => "send message failed",
        201 => "destination number or message is empty",
        400 => "no delivery status available",
        401 => "no delivery status retrieved and SMS still in queue",
        402 => "no delivery status retrieved and SMS has been processed from queue",
        501 => "no data returned or result is empty",
        600 => "admin level authentication failed",
        601 => "inject message failed",
        602 => "sender id or message is empty",
        603 => "account addition failed due to missing data",
        604 => "fail to add account",
        605 => "account removal failed due to unknown username",
        606 => "fail to remove account",
        607 => "set parent failed due to unknown username",
        608 => "fail to set parent",
        609 => "get parent failed due to unknown username",
        610 => "fail to get parent",
        611 => "account ban failed due to unknown username",
        612 => "fail to ban account",
        613 => "account unban failed due to unknown username",
        614 => "fail to unban account",
        615 => "editing account preferences failed due to missing data",
        616 => "fail to edit account preferences",
        617 => "editing account configuration failed due to missing data",
        618 => "fail to edit account configuration",
        619 => "viewing credit failed due to missing data",
        620 => "fail to view credit",
        621 => "adding credit failed due to missing data",
        622 => "fail to add credit",
        623 => "deducting credit failed due to missing data",
        624 => "fail to deduct credit",
        625 => "setting login key failed due to missing data",
        626 => "fail to set login key",
        _ => return None,
    })
}

/// Append the trailing `error_string` and `timestamp` keys.
fn finish(mut entries: Vec<(String, Node)>, code: Option<u16>, timestamp: i64) -> Node {
    let text = code.and_then(error_string);
    entries.push(("error_string".into(), text.into()));
    entries.push(("timestamp".into(), Node::Int(timestamp)));
    Node::Map(entries)
}

/// `{"status":"ERR","error":"<code>","error_string":…,"timestamp":N}`;
/// `error` is a string on the wire.
pub fn err(code: u16, timestamp: i64) -> Node {
    err_with(code, Vec::new(), timestamp)
}

/// An ERR reply with op-specific keys (e.g. `info`) between `error` and
/// `error_string`, as accountadd/accountremove do.
pub fn err_with(code: u16, extra: Vec<(String, Node)>, timestamp: i64) -> Node {
    let mut entries = vec![("status".into(), Node::from("ERR")), ("error".into(), Node::Str(code.to_string()))];
    entries.extend(extra);
    finish(entries, Some(code), timestamp)
}

/// `{"status":"OK","error":"0", payload…, "error_string":null,"timestamp":N}`.
pub fn ok(payload: Vec<(String, Node)>, timestamp: i64) -> Node {
    let mut entries = vec![("status".into(), Node::from("OK")), ("error".into(), Node::from("0"))];
    entries.extend(payload);
    finish(entries, None, timestamp)
}

/// Successful list ops (pv, ds, in, ix, sx) have no status/error keys.
pub fn list(data: Vec<Node>, timestamp: i64) -> Node {
    finish(vec![("data".into(), Node::List(data))], None, timestamp)
}

/// No op, empty op, or nothing set by the op: only the trailer keys.
pub fn bare(timestamp: i64) -> Node {
    finish(Vec::new(), None, timestamp)
}

/// playSMS returns a zero balance as the string `"0"` but any other
/// balance as a float, so clients see `"credit":"0"` vs `"credit":50.25`.
pub fn credit_value(credit: f64) -> Node {
    if credit == 0.0 { Node::from("0") } else { Node::Float(credit) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::to_json;

    #[test]
    fn table() {
        assert_eq!(error_string(100), Some("authentication failed"));
        assert_eq!(error_string(626), Some("fail to set login key"));
        assert_eq!(error_string(0), None);
        assert_eq!(error_string(627), None);
        assert_eq!(error_string(300), None);
        let known = (0..=1000u16).filter(|c| error_string(*c).is_some()).count();
        assert_eq!(known, 7 + 2 + 3 + 1 + 27);
    }

    #[test]
    fn shapes() {
        assert_eq!(
            to_json(&err(100, 7)),
            r#"{"status":"ERR","error":"100","error_string":"authentication failed","timestamp":7}"#
        );
        assert_eq!(
            to_json(&ok(vec![("credit".into(), credit_value(0.0))], 7)),
            r#"{"status":"OK","error":"0","credit":"0","error_string":null,"timestamp":7}"#
        );
        assert_eq!(to_json(&list(vec![], 7)), r#"{"data":[],"error_string":null,"timestamp":7}"#);
        assert_eq!(to_json(&bare(7)), r#"{"error_string":null,"timestamp":7}"#);
        assert_eq!(credit_value(50.25), Node::Float(50.25));
    }
}
