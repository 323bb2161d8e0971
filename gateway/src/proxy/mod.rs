//! The pingora side: one `ProxyHttp` implementation that serves the JSON API itself and
//! forwards module requests only after the session and Cedar said yes.
//!
//! Data flow of one request (DESIGN.md): `request_filter` checks the path (S7), then
//! either answers `/api/v1/…` in-process (on the API threads), or routes to a module, resolves the session,
//! checks CSRF on unsafe methods and asks Cedar; 400/401/403/404 are written there as
//! JSON. `upstream_request_filter` strips every client `X-Taxgate-*` header and the
//! session cookie and adds the signed identity (S6).

pub mod api_threads;
pub mod connection;
pub mod forwarded;
pub mod gateway;
pub mod identity;
pub mod listener;
pub mod path;
pub mod redirect;
pub mod respond;
pub mod routes;
pub mod strict;
pub mod tls;
