//! A server of one HTTP listener (order-gateway, payment-service, email-service's admin server):
//! the app supplies its name, configuration and routes; [`HttpServer`] binds the listener, gives
//! the routes a registry with the HTTP metrics in it, finishes them with [`router`](crate::router)
//! and serves them until the stop.

use std::future::Future;
use std::marker::PhantomData;
use std::net::SocketAddr;

use axum::Router;
use prometheus::Registry;

use crate::{ConfigError, Env, Listen, Listener, Service, Stop};

/// The typed configuration of a server of one HTTP listener, validated before anything binds
/// or connects.
pub trait HttpConfig: Sized + Send {
    /// Reads the configuration from `env`.
    fn from_env(env: &Env) -> Result<Self, ConfigError>;

    /// Where the listener binds, and the limits on its peers.
    fn listen(&self) -> Listen;
}

/// What a server of one HTTP listener supplies; [`HttpServer`] makes it a [`Service`].
pub trait HttpApp: Send + 'static {
    /// The name in error lines and the default `service.name`.
    const NAME: &'static str;

    /// The configuration the routes are built from.
    type Config: HttpConfig;

    /// Builds the routes, probes included, once the listener is bound: the app registers its
    /// metrics in `registry` (which `/metrics` serves) and spawns its background work on `stop`,
    /// so it is joined at the end.
    fn routes(
        config: Self::Config,
        registry: &Registry,
        stop: &Stop,
    ) -> impl Future<Output = anyhow::Result<Router>> + Send;
}

/// A bound, ready-to-run [`HttpApp`].
pub struct HttpServer<A> {
    listener: Listener,
    router: Router,
    app: PhantomData<fn() -> A>,
}

impl<A: HttpApp> Service for HttpServer<A> {
    const NAME: &'static str = A::NAME;
    type Config = A::Config;

    fn config(env: &Env) -> Result<A::Config, ConfigError> {
        A::Config::from_env(env)
    }

    /// Binds the listener first, so a port clash stops the server before any connection is
    /// made, then builds the app's routes.
    async fn build(config: A::Config, stop: &Stop) -> anyhow::Result<Self> {
        let listener = config.listen().bind(stop).await?;
        let registry = telemetry::metrics::registry();
        let http = telemetry::http::HttpMetrics::new(&registry);
        let routes = A::routes(config, &registry, stop).await?;
        Ok(Self {
            listener,
            router: crate::router(routes, http),
            app: PhantomData,
        })
    }

    /// Serves until the stop, then lets in-flight requests finish.
    async fn run(self) -> anyhow::Result<()> {
        self.listener.serve(self.router).await;
        Ok(())
    }
}

impl<A> HttpServer<A> {
    /// Returns the bound address (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }
}
