//! The route table of the connector API: every route of the managed API (under both prefixes),
//! of Connect's own API, a connector's log, the worker admin API and the dashboard's actions,
//! each with the least
//! role it needs and the change it makes. The routers are built from this table, the access layer
//! reads a request's role from it and the audit layer its action, both by the route axum
//! matched ([`MatchedPath`]): a route is matched once, by axum, and described once, here.
//!
//! Paths outside the table (health, metrics, the CLI's control plane, reads of the admin API,
//! unknown paths) get their role from [`crate::auth::required_access`]'s rules by prefix and
//! method; the dashboard's pages decide for themselves ([`crate::api::ui`]).
//!
//! One action vocabulary: a connector change is a [`ConnectorChange`], whose code both the
//! events and the audit trail carry; a worker admin change is an [`AdminAction`].

use std::sync::LazyLock;

use axum::Router;
use axum::extract::MatchedPath;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter, on};

use super::AppState;
use crate::auth::{Access, AuthSettings, Role};
use crate::observe::ConnectorChange;

/// The least role a route of the table needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Any authenticated caller.
    Viewer,
    /// An operator or admin.
    Operator,
    /// An admin.
    Admin,
    /// A connector delete: an operator, or an admin when the department says
    /// `delete_requires_admin`.
    Delete,
}

impl Need {
    /// The role this need is under the department's settings.
    pub fn role(self, settings: &AuthSettings) -> Role {
        match self {
            Self::Viewer => Role::Viewer,
            Self::Operator => Role::Operator,
            Self::Admin => Role::Admin,
            Self::Delete if settings.delete_requires_admin => Role::Admin,
            Self::Delete => Role::Operator,
        }
    }
}

/// A worker admin change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAction {
    /// A pool scaled.
    PoolScaled,
    /// A pool's rolling restart.
    PoolRestarted,
    /// A worker restarted.
    WorkerRestarted,
    /// A held worker cleared.
    WorkerCleared,
}

impl AdminAction {
    /// The audit code.
    pub fn code(self) -> &'static str {
        match self {
            Self::PoolScaled => "pool_scaled",
            Self::PoolRestarted => "pool_restarted",
            Self::WorkerRestarted => "worker_restarted",
            Self::WorkerCleared => "worker_cleared",
        }
    }
}

/// What a change route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A change to a connector.
    Connector(ConnectorChange),
    /// A create or an update of a connector, as the handler reports (PUT config).
    CreateOrUpdate,
    /// A worker admin change.
    Admin(AdminAction),
}

impl Action {
    /// The connector change, once the handler said whether it `created` the connector.
    pub fn change(self, created: bool) -> Option<ConnectorChange> {
        match self {
            Self::Connector(c) => Some(c),
            Self::CreateOrUpdate if created => Some(ConnectorChange::Created),
            Self::CreateOrUpdate => Some(ConnectorChange::Updated),
            Self::Admin(_) => None,
        }
    }

    /// The audit code (the event code for connector changes).
    pub fn code(self, created: bool) -> &'static str {
        match (self, self.change(created)) {
            (Self::Admin(a), _) => a.code(),
            (_, Some(c)) => c.code(),
            (_, None) => unreachable!("only admin actions have no connector change"),
        }
    }
}

/// What a change handler did, attached to its response for the audit layer: the connector (a
/// create's comes from its body) and whether a PUT config created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    /// The connector changed.
    pub connector: String,
    /// Whether the connector was created (rather than updated).
    pub created: bool,
}

impl Done {
    /// A change of `connector`; `created` when it did not exist before.
    pub fn new(connector: &str, created: bool) -> Self {
        Self {
            connector: connector.to_string(),
            created,
        }
    }
}

/// One route: method, path template as axum matches it, role, change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The method.
    pub method: Method,
    /// The path template (`/connectors/{name}/pause`).
    pub path: String,
    /// The least role.
    pub need: Need,
    /// The change it makes, if any.
    pub action: Option<Action>,
}

/// A route and its handler, as the API's modules declare them.
pub struct Entry {
    route: Route,
    handler: MethodRouter<AppState>,
}

/// An entry of the table: `handler` serves `method` on `path`.
pub fn entry<H, T>(
    method: Method,
    path: impl Into<String>,
    need: Need,
    action: Option<Action>,
    handler: H,
) -> Entry
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).expect("a method the table uses");
    Entry {
        route: Route {
            method,
            path: path.into(),
            need,
            action,
        },
        handler: on(filter, handler),
    }
}

/// Every entry, from the modules that serve them.
fn entries() -> Vec<Entry> {
    let mut all = super::managed::routes();
    all.extend(super::apache::routes());
    all.extend(super::observe::connector_routes());
    all.extend(super::admin::routes());
    all.extend(crate::api::ui::action_routes());
    all
}

static TABLE: LazyLock<Vec<Route>> =
    LazyLock::new(|| entries().into_iter().map(|e| e.route).collect());

/// The table (without its handlers).
pub fn table() -> &'static [Route] {
    &TABLE
}

/// The router of every route of the table.
pub fn router() -> Router<AppState> {
    entries()
        .into_iter()
        .fold(Router::new(), |r, e| r.route(&e.route.path, e.handler))
}

/// The route of the table axum matched for a request (`template` from [`MatchedPath`]).
/// (The dashboard's routes are in the table for their actions; their access is the dashboard's
/// own, which agrees with the table.)
pub fn find(method: &Method, template: &str) -> Option<&'static Route> {
    table()
        .iter()
        .find(|r| r.method == method && r.path == template)
}

/// The route of a request, from the template axum matched.
pub fn of_request(method: &Method, matched: Option<&MatchedPath>) -> Option<&'static Route> {
    matched.and_then(|m| find(method, m.as_str()))
}

/// The access a request needs: the table's role for its route, else the rules by prefix and
/// method for everything outside the table.
pub fn access(
    method: &Method,
    matched: Option<&MatchedPath>,
    path: &str,
    settings: &AuthSettings,
) -> Access {
    match of_request(method, matched) {
        Some(route) => Access::Role(route.need.role(settings)),
        None => crate::auth::required_access(method.as_str(), path, settings),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::managed::{API_PREFIX, PREFIX};

    fn settings() -> AuthSettings {
        AuthSettings::default()
    }

    fn need(method: Method, template: &str) -> Option<Role> {
        find(&method, template).map(|r| r.need.role(&settings()))
    }

    #[test]
    fn connector_routes_need_the_documented_roles() {
        let p = PREFIX;
        for prefix in [p.to_string(), format!("{API_PREFIX}{p}")] {
            let cases = [
                (Method::GET, "/connectors", Role::Viewer),
                (Method::POST, "/connectors", Role::Operator),
                (
                    Method::PUT,
                    "/connectors/{connector_name}/config",
                    Role::Operator,
                ),
                (
                    Method::PUT,
                    "/connectors/{connector_name}/pause",
                    Role::Operator,
                ),
                (
                    Method::POST,
                    "/connectors/{connector_name}/offsets/request",
                    Role::Operator,
                ),
                (
                    Method::DELETE,
                    "/connectors/{connector_name}",
                    Role::Operator,
                ),
                (
                    Method::GET,
                    "/connectors/{connector_name}/status",
                    Role::Viewer,
                ),
                // A connector's log is the operators' view (viewers see status only).
                (
                    Method::GET,
                    "/connectors/{connector_name}/logs",
                    Role::Operator,
                ),
                // A validation is a dry run: a viewer (or a CI pipeline) may do it.
                (
                    Method::PUT,
                    "/connector-plugins/{plugin_name}/config/validate",
                    Role::Viewer,
                ),
            ];
            for (method, path, role) in cases {
                let template = format!("{prefix}{path}");
                assert_eq!(
                    need(method.clone(), &template),
                    Some(role),
                    "{method} {template}"
                );
            }
        }
        for (method, path, role) in [
            (
                Method::PUT,
                "/connector-plugins/{plugin}/config/validate",
                Role::Viewer,
            ),
            (Method::POST, "/connectors", Role::Operator),
            (Method::DELETE, "/connectors/{name}", Role::Operator),
            (Method::DELETE, "/connectors/{name}/offsets", Role::Operator),
            (Method::PATCH, "/connectors/{name}/config", Role::Operator),
            (Method::GET, "/connectors/{name}/status", Role::Viewer),
            (Method::POST, "/v1/pools/{pool}/scale", Role::Admin),
            (Method::POST, "/v1/workers/{id}/restart", Role::Admin),
        ] {
            assert_eq!(need(method.clone(), path), Some(role), "{method} {path}");
        }
    }

    #[test]
    fn deletes_can_be_admin_only_but_offsets_resets_stay_operator() {
        let strict = AuthSettings {
            delete_requires_admin: true,
            ..settings()
        };
        let role = |method: Method, path: &str| find(&method, path).unwrap().need.role(&strict);
        assert_eq!(role(Method::DELETE, "/connectors/{name}"), Role::Admin);
        assert_eq!(
            role(
                Method::DELETE,
                &format!("{PREFIX}/connectors/{{connector_name}}")
            ),
            Role::Admin
        );
        assert_eq!(
            role(Method::DELETE, "/connectors/{name}/offsets"),
            Role::Operator
        );
    }

    #[test]
    fn every_change_route_has_its_action_and_reads_have_none() {
        use ConnectorChange as C;
        let m = PREFIX;
        let cases = [
            (
                Method::POST,
                format!("{m}/connectors"),
                Some("connector_created"),
            ),
            (
                Method::POST,
                format!("/api{m}/connectors"),
                Some("connector_created"),
            ),
            (
                Method::POST,
                "/connectors".into(),
                Some("connector_created"),
            ),
            (
                Method::DELETE,
                format!("{m}/connectors/{{connector_name}}"),
                Some("connector_deleted"),
            ),
            (
                Method::PATCH,
                "/connectors/{name}/config".into(),
                Some("connector_updated"),
            ),
            (
                Method::PUT,
                format!("{m}/connectors/{{connector_name}}/pause"),
                Some("connector_paused"),
            ),
            (
                Method::PUT,
                "/connectors/{name}/stop".into(),
                Some("connector_stopped"),
            ),
            (
                Method::POST,
                "/connectors/{name}/tasks/{task}/restart".into(),
                Some("connector_restarted"),
            ),
            (
                Method::POST,
                format!("{m}/connectors/{{connector_name}}/offsets/request"),
                Some("offsets_requested"),
            ),
            (
                Method::DELETE,
                "/connectors/{name}/offsets".into(),
                Some("offsets_requested"),
            ),
            (
                Method::PUT,
                "/connectors/{name}/topics/reset".into(),
                Some("connector_topics_reset"),
            ),
            (
                Method::POST,
                "/v1/pools/{pool}/scale".into(),
                Some("pool_scaled"),
            ),
            (
                Method::POST,
                "/v1/workers/{id}/clear".into(),
                Some("worker_cleared"),
            ),
            // The dashboard's actions, audited like the API calls they stand for.
            (
                Method::POST,
                "/ui/connectors/{name}/restart".into(),
                Some("connector_restarted"),
            ),
            (
                Method::POST,
                "/ui/connectors/{name}/restart-failed".into(),
                Some("connector_restarted"),
            ),
            (
                Method::POST,
                "/ui/connectors/{name}/pause".into(),
                Some("connector_paused"),
            ),
            (
                Method::POST,
                "/ui/connectors/{name}/resume".into(),
                Some("connector_resumed"),
            ),
            (
                Method::POST,
                "/ui/pools/{pool}/restart".into(),
                Some("pool_restarted"),
            ),
            (
                Method::POST,
                "/ui/workers/{id}/clear".into(),
                Some("worker_cleared"),
            ),
            (Method::GET, "/ui/connectors/{name}/restart".into(), None),
            (Method::GET, format!("{m}/connectors"), None),
            (
                Method::PUT,
                format!("{m}/connector-plugins/{{plugin_name}}/config/validate"),
                None,
            ),
        ];
        for (method, template, expected) in cases {
            let route = find(&method, &template).unwrap_or_else(|| panic!("{method} {template}"));
            assert_eq!(
                route.action.map(|a| a.code(true)),
                expected,
                "{method} {template}"
            );
        }
        assert_eq!(find(&Method::POST, "/ui/login"), None, "not a change");
        let put = find(&Method::PUT, "/connectors/{name}/config").unwrap();
        assert_eq!(put.action, Some(Action::CreateOrUpdate));
        assert_eq!(put.action.unwrap().code(false), "connector_updated");
        assert_eq!(put.action.unwrap().change(true), Some(C::Created));
    }

    #[test]
    fn the_dashboards_roles_agree_with_the_table() {
        for r in table().iter().filter(|r| r.path.starts_with("/ui/")) {
            let concrete = r
                .path
                .replace("{name}", "dept1-x")
                .replace("{pool}", "shared")
                .replace("{id}", "shared-0");
            assert_eq!(
                crate::api::ui::required_role(&r.method, &concrete),
                Some(r.need.role(&settings())),
                "{} {}",
                r.method,
                r.path
            );
        }
    }

    #[test]
    fn the_table_has_each_route_once() {
        let mut seen = std::collections::BTreeSet::new();
        for r in table() {
            assert!(
                seen.insert((r.method.to_string(), r.path.clone())),
                "{} {} twice",
                r.method,
                r.path
            );
        }
        assert!(table().len() > 40, "{}", table().len());
    }
}
