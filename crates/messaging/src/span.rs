//! The span of one AMQP operation, with the attributes OpenTelemetry's messaging conventions
//! give every such span, so the publisher's PRODUCER span and the consumer's CONSUMER span name
//! and describe themselves alike.

/// A span of `$operation` (`publish`, `process`) on `$destination` (the exchange or the queue):
/// named `<operation> <destination>` as the conventions ask, of OpenTelemetry kind `$kind`, with
/// the operation's own attributes `$($field)*` after the common ones and `otel.status_code` and
/// `error.type` left to record. A macro because a span's fields are fixed where it is declared.
macro_rules! amqp_span {
    ($name:literal, kind: $kind:literal, $operation:literal, $destination:expr, $($field:tt)*) => {
        tracing::info_span!(
            $name,
            otel.name = %format!("{} {}", $operation, $destination),
            otel.kind = $kind,
            messaging.system = "rabbitmq",
            messaging.operation.type = $operation,
            messaging.operation.name = $operation,
            messaging.destination.name = %$destination,
            $($field)*
            otel.status_code = tracing::field::Empty,
            error.type = tracing::field::Empty,
        )
    };
}
pub(crate) use amqp_span;
