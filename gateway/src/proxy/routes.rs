//! Routing table: path prefix → module → upstream (API.md, "Proxied tax modules").
//!
//! Contract: a prefix matches whole segments only (`/tax/vat` matches `/tax/vat` and
//! `/tax/vat/…`, never `/tax/vatx`); the longest matching prefix wins; every routed
//! module exists in the catalog (checked at start-up).

use crate::config::Route;
use crate::policy::Catalog;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Routes {
    /// Longest prefix first.
    routes: Vec<Arc<Route>>,
}

impl Routes {
    pub fn new(routes: &[Route], catalog: &Catalog) -> Result<Routes, String> {
        for r in routes {
            if !catalog.contains(&r.module) {
                return Err(format!(
                    "route {}: module `{}` is not in the module catalog",
                    r.prefix, r.module
                ));
            }
        }
        let mut routes: Vec<Arc<Route>> = routes.iter().cloned().map(Arc::new).collect();
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        Ok(Routes { routes })
    }

    pub fn find(&self, path: &str) -> Option<&Arc<Route>> {
        self.routes.iter().find(|r| {
            path.strip_prefix(r.prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    }

    /// The prefix a module is reachable under, for the menu.
    pub fn path_of(&self, module: &str) -> Option<String> {
        self.routes
            .iter()
            .filter(|r| r.module == module)
            .min_by_key(|r| r.prefix.len())
            .map(|r| r.prefix.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes() -> Routes {
        let r = |p: &str, m: &str| {
            Arc::new(Route {
                prefix: p.into(),
                module: m.into(),
                upstream: crate::config::Upstream::parse("127.0.0.1:1").unwrap(),
            })
        };
        let mut routes = vec![r("/tax", "wybs"), r("/tax/vat", "wybs.sfsb.zzs")];
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        Routes { routes }
    }

    #[test]
    fn longest_whole_segment_prefix_wins() {
        let r = routes();
        assert_eq!(r.find("/tax/vat/x").unwrap().module, "wybs.sfsb.zzs");
        assert_eq!(r.find("/tax/vat").unwrap().module, "wybs.sfsb.zzs");
        assert_eq!(r.find("/tax/vatx").unwrap().module, "wybs");
        assert!(r.find("/taxes").is_none());
        assert_eq!(r.path_of("wybs.sfsb.zzs").as_deref(), Some("/tax/vat"));
    }
}
