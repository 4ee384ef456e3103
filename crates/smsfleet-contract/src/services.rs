//! Request/reply services (core NATS, queue groups, no persistence). A
//! [`Service`] binds a subject to its request and reply types, so the bus
//! serves and calls it only with that pair: asking the `ds` service for a
//! credit reply does not compile.

use std::marker::PhantomData;

use crate::{
    AccountCommand, AccountReply, BusMessage, CreditChangeReply, CreditChangeRequest, CreditReply, CreditRequest,
    DsReply, DsRequest, IncomingReply, IncomingRequest, LastIdsReply, LastIdsRequest, Namespace, PhonebookReply,
    PhonebookRequest, SmppSessionsReply, SmppSessionsRequest,
};

/// One service: `<namespace>.svc.<path>`, answered by the replicas of one
/// role in queue group `group`.
pub struct Service<Req, Rep> {
    path: &'static str,
    group: &'static str,
    types: PhantomData<fn(Req) -> Rep>,
}

// Derived impls would require `Req: Clone` and `Rep: Clone`.
impl<Req, Rep> Clone for Service<Req, Rep> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<Req, Rep> Copy for Service<Req, Rep> {}

impl<Req: BusMessage, Rep: BusMessage> Service<Req, Rep> {
    const fn new(path: &'static str, group: &'static str) -> Self {
        Self { path, group, types: PhantomData }
    }

    /// A service every replica answers (no queue group): the caller gathers
    /// the replies for a while (`Bus::gather`).
    const fn everyone(path: &'static str) -> Self {
        Self { path, group: "", types: PhantomData }
    }

    /// Whether every replica answers, rather than one of the queue group.
    pub fn is_broadcast(&self) -> bool {
        self.group.is_empty()
    }

    pub fn subject(&self, ns: &Namespace) -> String {
        format!("{}.svc.{}", ns.as_str(), self.path)
    }

    /// The queue group the serving role's replicas share.
    pub fn group(&self) -> &'static str {
        self.group
    }
}

/// `op=ds`, answered by the query role.
pub const DS: Service<DsRequest, DsReply> = Service::new("query.ds", "query");
/// `op=cr`, answered by the query role.
pub const CREDIT: Service<CreditRequest, CreditReply> = Service::new("query.credit", "query");
/// `get_contact` and `get_contact_group`, answered by the query role.
pub const PHONEBOOK: Service<PhonebookRequest, PhonebookReply> = Service::new("query.phonebook", "query");
/// `op=query`'s last ids, answered by the query role.
pub const LAST_IDS: Service<LastIdsRequest, LastIdsReply> = Service::new("query.last_ids", "query");
/// `in`, `ix` and `sx`: incoming messages and inboxes, answered by the query role.
pub const INCOMING: Service<IncomingRequest, IncomingReply> = Service::new("query.incoming", "query");
/// Account-changing commands, answered by the accounts role.
pub const ACCOUNTS: Service<AccountCommand, AccountReply> = Service::new("accounts", "accounts");
/// `smsfleet smpp sessions`: every ingress replica lists its live SMPP binds.
pub const SMPP_SESSIONS: Service<SmppSessionsRequest, SmppSessionsReply> = Service::everyone("smpp.sessions");
/// Admin credit changes, answered by the ledger role (the only writer of balances).
pub const LEDGER_CREDIT: Service<CreditChangeRequest, CreditChangeReply> = Service::new("ledger.credit", "ledger");
