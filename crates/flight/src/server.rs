//! Starting and stopping the server: bind, TLS, catalog refresh, audit flush on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use arrow_flight::flight_service_server::FlightServiceServer;
use cdphub_lake::{Lake, Project};
use tokio_rustls::TlsAcceptor;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::audit::{AuditLog, AuditWriter};
use crate::auth::verify_password;
use crate::engine::{CatalogHandle, Engine};
use crate::error::{Result, ServeError};
use crate::service::Authenticated;

/// The demo users' passwords, as documented in the README. A server reachable from other
/// machines refuses to start while any user still has one of them.
pub const DEMO_PASSWORDS: &[&str] = &["cdphub-admin-demo", "cdphub-analyst-demo"];

/// Largest message a client may send (bulk ingest batches, bound parameters).
const MAX_INCOMING_MESSAGE: usize = 256 << 20;

/// A server bound to its address, ready to run.
pub struct FlightServer {
    engine: Arc<Engine>,
    audit: AuditWriter,
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    tls: Option<TlsAcceptor>,
}

impl FlightServer {
    /// Opens the catalog and binds `host:port` (port 0: any free port).
    pub async fn bind(project: Project, lake: Lake) -> Result<Self> {
        let server = project.config.server.clone();
        let catalogs = Arc::new(CatalogHandle::open(project, lake.clone()).await?);
        let addr: SocketAddr = tokio::net::lookup_host((server.host.as_str(), server.port))
            .await
            .map_err(|e| {
                ServeError::InvalidArgument(format!(
                    "cannot resolve server.host `{}`: {e}",
                    server.host
                ))
            })?
            .next()
            .ok_or_else(|| {
                ServeError::InvalidArgument(format!("server.host `{}` has no address", server.host))
            })?;
        let tls = match (&server.tls_cert, &server.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key)?),
            _ => None,
        };
        if !addr.ip().is_loopback() {
            for (name, user) in &catalogs.project().config.users {
                if DEMO_PASSWORDS
                    .iter()
                    .any(|demo| verify_password(demo, &user.password_hash))
                {
                    return Err(ServeError::InvalidArgument(format!(
                        "user `{name}` still has the documented demo password, and {addr} is reachable from other machines; set a real one first: cdphub user add {name} --role {} --password-stdin --replace",
                        user.role
                    )));
                }
            }
            if tls.is_none() {
                tracing::warn!(
                    "serving on {addr} without TLS: passwords and data cross the network in clear; set server.tls-cert and server.tls-key"
                );
            }
        }
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            ServeError::InvalidArgument(format!(
                "cannot listen on {addr}: {e}; pick another port with --port or server.port"
            ))
        })?;
        let addr = listener
            .local_addr()
            .map_err(|e| ServeError::Internal(format!("local address: {e}")))?;
        let audit = AuditLog::start(catalogs.lake().clone(), catalogs.clone());
        let engine = Arc::new(Engine::new(catalogs, audit.log())?);
        Ok(Self {
            engine,
            audit,
            listener,
            addr,
            tls,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The URL clients connect to.
    pub fn url(&self) -> String {
        let scheme = if self.tls() { "grpc+tls" } else { "grpc" };
        format!("{scheme}://{}", self.addr)
    }

    pub fn engine(&self) -> Arc<Engine> {
        self.engine.clone()
    }

    /// Serves until `shutdown` resolves, then finishes in-flight calls and flushes the audit log.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let Self {
            engine,
            audit,
            listener,
            addr,
            tls,
        } = self;
        let refresh = engine.config.catalog_refresh;
        let catalogs = engine.catalogs.clone();
        let refresher = tokio::spawn(async move {
            let mut tick = tokio::time::interval(refresh);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = catalogs.reload().await {
                    tracing::warn!("catalog refresh failed (serving the previous one): {e}");
                }
            }
        });
        let service = FlightServiceServer::new(Authenticated::new(engine.clone()))
            .max_decoding_message_size(MAX_INCOMING_MESSAGE)
            .max_encoding_message_size(usize::MAX);
        let mut builder = Server::builder()
            .tcp_nodelay(true)
            .initial_stream_window_size(Some(8 << 20))
            .initial_connection_window_size(Some(32 << 20))
            .max_frame_size(Some((1 << 20) - 1));
        tracing::info!("Flight SQL server listening on {addr}");
        let router = builder.add_service(service);
        let result = match tls {
            Some(acceptor) => {
                router
                    .serve_with_incoming_shutdown(
                        crate::tls::incoming(listener, acceptor),
                        shutdown,
                    )
                    .await
            }
            None => {
                router
                    .serve_with_incoming_shutdown(
                        TcpIncoming::from(listener).with_nodelay(Some(true)),
                        shutdown,
                    )
                    .await
            }
        };
        refresher.abort();
        audit.shutdown().await;
        result.map_err(|e| ServeError::Internal(format!("server error: {e}")))
    }
}
