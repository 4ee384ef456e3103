//! `op=query`'s `last_id` block: the newest row ids of the caller.

use smsfleet_contract::{LastIdsReply, LastIdsRequest};
use smsfleet_store::PgPool;

/// A failed lookup answers 0 (playSMS's value for "none") rather than
/// leaving the ingress to time out; the error is logged.
#[tracing::instrument(skip_all, fields(uid = req.uid))]
pub async fn last_ids_reply(pool: &PgPool, req: &LastIdsRequest) -> LastIdsReply {
    let user_outgoing = smsfleet_store::projection::last_outgoing_id(pool, req.uid, smsfleet_domain::ids::MAX_ID)
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "last outgoing id lookup failed");
            0
        });
    let (user_inbox, user_incoming) = smsfleet_store::incoming::last_ids(pool, req.uid).await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "last incoming ids lookup failed");
        (0, 0)
    });
    LastIdsReply { user_inbox, user_incoming, user_outgoing }
}
