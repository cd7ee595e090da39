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

/// An app's own typed configuration, validated before anything binds or connects; the
/// listener's part (`BIND_ADDR`, `HTTP_*_TIMEOUT_MS`) is read by [`HttpServer`], not by the app.
pub trait FromEnv: Sized + Send {
    /// The port `BIND_ADDR` defaults to.
    const PORT: u16;

    /// Reads the configuration from `env`.
    fn from_env(env: &Env) -> Result<Self, ConfigError>;
}

/// The whole configuration of a server of one HTTP listener: the listener's and the app's.
#[derive(Debug, Clone)]
pub struct HttpConfig<C> {
    /// `BIND_ADDR` (default port [`FromEnv::PORT`]) and the `HTTP_*_TIMEOUT_MS` limits.
    pub listen: Listen,
    /// What the app reads for itself.
    pub app: C,
}

/// What a server of one HTTP listener supplies; [`HttpServer`] makes it a [`Service`].
pub trait HttpApp: Send + 'static {
    /// The name in error lines and the default `service.name`.
    const NAME: &'static str;

    /// The configuration the routes are built from.
    type Config: FromEnv;

    /// Builds the routes, probes included, once the listener is bound.
    fn routes(
        config: Self::Config,
        context: &HttpContext,
    ) -> impl Future<Output = anyhow::Result<Router>> + Send;
}

/// What [`HttpServer`] gives an app to build its routes with.
pub struct HttpContext {
    /// The listener's configuration, for an app whose clients must agree with its timeouts.
    pub listen: Listen,
    /// Where the app registers its metrics; `/metrics` serves it.
    pub registry: Registry,
    /// The server's stop: the app spawns its background work on it, so it is joined at the end.
    pub stop: Stop,
}

/// A bound, ready-to-run [`HttpApp`].
pub struct HttpServer<A> {
    listener: Listener,
    router: Router,
    app: PhantomData<fn() -> A>,
}

impl<A: HttpApp> Service for HttpServer<A> {
    const NAME: &'static str = A::NAME;
    type Config = HttpConfig<A::Config>;

    fn config(env: &Env) -> Result<HttpConfig<A::Config>, ConfigError> {
        Ok(HttpConfig {
            listen: Listen::from_env(env, A::Config::PORT)?,
            app: A::Config::from_env(env)?,
        })
    }

    /// Binds the listener first, so a port clash stops the server before any connection is
    /// made, then builds the app's routes.
    async fn build(config: HttpConfig<A::Config>, stop: &Stop) -> anyhow::Result<Self> {
        let listener = config.listen.bind(stop).await?;
        let context = HttpContext {
            listen: config.listen,
            registry: telemetry::metrics::registry(),
            stop: stop.clone(),
        };
        let http = telemetry::http::HttpMetrics::new(&context.registry);
        let routes = A::routes(config.app, &context).await?;
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
