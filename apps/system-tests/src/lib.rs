//! Whole-system test support for tracehop: [`spawn_stack`] starts order-gateway, payment-service
//! and email-service in the test process on port 0, each in its own `tracing` dispatcher (so each
//! has its own `service.name`, log file and exporters, as separate processes would), against the
//! real RabbitMQ with a unique `AMQP_PREFIX` and exporting to a [`testkit::OtlpReceiver`];
//! [`LogService`] starts log-service the same way.
//!
//! The suites in `tests/` use this in-process stack where the services only need to run, and
//! [`testkit::process::Stack`] (the service binaries as child processes, on a private
//! [`testkit::RabbitNode`]) where a test signals, kills or restarts a service or its broker.
//! Every call into the apps' start-up code is in one module, `spawn`.

mod spawn;
mod stack;

pub use spawn::LogService;
pub use stack::{Stack, StackOptions, spawn_stack};
pub use testkit::http::Response;
