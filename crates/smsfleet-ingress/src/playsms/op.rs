//! The playSMS ops smsfleet serves, parsed once from `op`. Each op's name
//! is written once, in [`Op::name`]; it is also the metrics label.

use smsfleet_contract::IncomingList;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Pv,
    Ds,
    Cr,
    /// The `credit` extension op: the balance as bare `text/plain`.
    Credit,
    GetToken,
    SetToken,
    AccountBan,
    AccountUnban,
    AccountAdd,
    AccountRemove,
    ParentSet,
    ParentGet,
    AccountPref,
    AccountConf,
    CreditView,
    CreditAdd,
    CreditDeduct,
    LoginKeySet,
    WsLogin,
    Query,
    StopList,
    GetContact,
    GetContactGroup,
    Inject,
    Incoming(IncomingList),
}

impl Op {
    const ALL: [Op; 27] = [
        Op::Pv,
        Op::Ds,
        Op::Cr,
        Op::Credit,
        Op::GetToken,
        Op::SetToken,
        Op::AccountBan,
        Op::AccountUnban,
        Op::AccountAdd,
        Op::AccountRemove,
        Op::ParentSet,
        Op::ParentGet,
        Op::AccountPref,
        Op::AccountConf,
        Op::CreditView,
        Op::CreditAdd,
        Op::CreditDeduct,
        Op::LoginKeySet,
        Op::WsLogin,
        Op::Query,
        Op::StopList,
        Op::GetContact,
        Op::GetContactGroup,
        Op::Inject,
        Op::Incoming(IncomingList::In),
        Op::Incoming(IncomingList::Ix),
        Op::Incoming(IncomingList::Sx),
    ];

    /// The op named by the (already normalised, lower-case) `op` value;
    /// `None` for one playSMS does not know.
    pub fn parse(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Op::Pv => "pv",
            Op::Ds => "ds",
            Op::Cr => "cr",
            Op::Credit => "credit",
            Op::GetToken => "get_token",
            Op::SetToken => "set_token",
            Op::AccountBan => "accountban",
            Op::AccountUnban => "accountunban",
            Op::AccountAdd => "accountadd",
            Op::AccountRemove => "accountremove",
            Op::ParentSet => "parentset",
            Op::ParentGet => "parentget",
            Op::AccountPref => "accountpref",
            Op::AccountConf => "accountconf",
            Op::CreditView => "creditview",
            Op::CreditAdd => "creditadd",
            Op::CreditDeduct => "creditdeduct",
            Op::LoginKeySet => "loginkeyset",
            Op::WsLogin => "ws_login",
            Op::Query => "query",
            Op::StopList => "stoplist",
            Op::GetContact => "get_contact",
            Op::GetContactGroup => "get_contact_group",
            Op::Inject => "inject",
            Op::Incoming(IncomingList::In) => "in",
            Op::Incoming(IncomingList::Ix) => "ix",
            Op::Incoming(IncomingList::Sx) => "sx",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_parses_from_its_own_name() {
        for op in Op::ALL {
            assert_eq!(Op::parse(op.name()), Some(op));
        }
        assert_eq!(Op::parse("PV"), None, "names arrive normalised");
        assert_eq!(Op::parse("nosuchop"), None);
    }
}
