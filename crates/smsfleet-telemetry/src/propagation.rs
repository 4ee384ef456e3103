//! W3C trace context across the bus. Publishers put `traceparent`/`tracestate` into NATS
//! message headers; consumers make their processing span a child of it, so one SMS is a
//! single trace from HTTP ingress through ledger, dispatcher and DLR.
//!
//! Uses the global text-map propagator, which [`crate::init`] sets to W3C TraceContext.

use std::collections::HashMap;

use opentelemetry::trace::TraceContextExt as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

const TRACEPARENT: &str = "traceparent";

/// Writes the current span's context into `carrier` as `traceparent` (and `tracestate` when
/// non-empty). Writes nothing when there is no valid context (no OpenTelemetry layer, or
/// outside any span).
pub fn inject_current(carrier: &mut HashMap<String, String>) {
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&cx, carrier);
    });
}

/// The current span's `traceparent`, for carriers that only have room for one value.
/// `None` when there is no valid context.
pub fn current_traceparent() -> Option<String> {
    let mut carrier = HashMap::new();
    inject_current(&mut carrier);
    carrier.remove(TRACEPARENT)
}

/// Makes the remote context in `carrier` the parent of `span`.
///
/// A missing or malformed `traceparent` leaves the span as a new root rather than failing:
/// a message from an older publisher or a hand-made test message must still be processed.
/// Call before the span is first entered; tracing-opentelemetry ignores later changes.
pub fn set_parent_from(span: &tracing::Span, carrier: &HashMap<String, String>) {
    let cx = opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(carrier));
    if cx.span().span_context().is_valid() {
        // Err means the span is disabled or not known to an OpenTelemetry layer: nothing to link.
        let _ = span.set_parent(cx);
    }
}

/// [`set_parent_from`] for a bare `traceparent` value.
pub fn set_parent_from_traceparent(span: &tracing::Span, traceparent: &str) {
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
    set_parent_from(span, &carrier);
}
