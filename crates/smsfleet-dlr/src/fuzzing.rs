//! Entry points for the fuzz targets in the repository's `fuzz/` crate
//! (feature `fuzzing`, off in every build that serves traffic): the
//! callback parsers, run as a callback runs them but without a bus. Not an
//! API.

use axum::extract::{Query, Request};
use axum::http::Uri;
use smsfleet_sim_protocol::ReportBatch;

use crate::http::{SingleReport, convert as convert_reports, split};
use crate::mo::{WireMo, convert, read_mo};

/// `POST /dlr/{route}`: the bus messages a JSON body becomes (`budget`
/// JSON bytes each), or `None` when it is refused.
pub fn report_body(route: &str, body: &[u8], budget: usize) -> Option<usize> {
    let parsed: ReportBatch<'_> = serde_json::from_slice(body).ok()?;
    convert_reports(route, parsed.reports).and_then(|b| split(b, budget)).ok().map(|b| b.len())
}

/// `GET /dlr/{route}?id=..&status=..`.
pub fn report_query(route: &str, uri: &Uri) -> bool {
    let Ok(Query(q)) = Query::<SingleReport>::try_from_uri(uri) else {
        return false;
    };
    convert_reports(route, vec![q.into_report()]).is_ok()
}

/// `GET /mo/{route}?from=..`.
pub fn mo_query(route: &str, uri: &Uri) -> bool {
    Query::<WireMo>::try_from_uri(uri).is_ok_and(|Query(mo)| convert(route, mo, 0).is_ok())
}

/// `POST /mo/{route}` with a JSON or form body.
pub async fn mo_body(route: &str, req: Request) -> bool {
    read_mo(req).await.is_ok_and(|mo| convert(route, mo, 0).is_ok())
}
