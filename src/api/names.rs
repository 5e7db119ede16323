//! Refuses, before any handler runs, a request whose connector or plugin name cannot be one
//! path segment on the way to Connect (`.`, `..`, `/`, `\`, `%`, `;`, control characters,
//! invalid UTF-8): 400 in the route's error shape, saying what is wrong with the name. Without
//! it such names reached the worker re-segmented (`DELETE .../connectors/..` as `DELETE /`) or
//! came back as Jetty's HTML error page.
//!
//! Runs after authentication (an unauthenticated caller still gets 401) and owns nothing else.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, shape_for_path};
use crate::translate::{decode_path_segment, unaddressable};

/// Path parameters that carry a name sent on to Connect, and what the name is.
pub const NAME_PARAMS: &[(&str, &str)] = &[
    ("{connector_name}", "connector name"),
    ("{name}", "connector name"),
    ("{plugin_name}", "plugin name"),
    ("{plugin}", "plugin name"),
];

/// The problem with the names in `path` (matched by route template `route`), if any.
pub fn problem(route: &str, path: &str) -> Option<String> {
    let route_segments: Vec<&str> = route.split('/').collect();
    let path_segments: Vec<&str> = path.split('/').collect();
    if route_segments.len() != path_segments.len() {
        return None;
    }
    for (r, p) in route_segments.iter().zip(path_segments) {
        let Some((_, what)) = NAME_PARAMS.iter().find(|(param, _)| param == r) else {
            continue;
        };
        let problem = match decode_path_segment(p) {
            Some(name) => unaddressable(&name, what),
            None => Some(format!(
                "{what} \"{}\" cannot be decoded (an invalid %-escape, or bytes that are not \
                 UTF-8); Kafka Connect cannot hold such a name: use letters, digits, '-', '_' \
                 and '.'",
                p.escape_debug()
            )),
        };
        if problem.is_some() {
            return problem;
        }
    }
    None
}

/// The layer: 400 for a name Connect cannot hold, else the route.
pub async fn refuse_unaddressable(request: Request, next: Next) -> Response {
    let refusal = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|route| problem(route.as_str(), request.uri().path()));
    match refusal {
        Some(problem) => ApiError::bad_request(&[problem])
            .shaped(shape_for_path(request.uri().path()))
            .into_response(),
        None => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_paths_are_checked_where_routes_carry_them() {
        let managed = "/connect/v1/environments/{environment_id}/clusters/{kafka_cluster_id}/connectors/{connector_name}";
        let ok = "/connect/v1/environments/e/clusters/c/connectors/dept1-a";
        assert_eq!(problem(managed, ok), None);
        for bad in ["..", ".", "x%03y", "a%2Fb", "a%5Cb", "a%25b", "x%00", "%FF"] {
            let path = format!("/connect/v1/environments/e/clusters/c/connectors/{bad}");
            assert!(problem(managed, &path).is_some(), "{bad}");
        }
        assert!(
            problem(
                "/connector-plugins/{plugin}/config/validate",
                "/connector-plugins/x%0Ay/config/validate"
            )
            .unwrap()
            .starts_with("plugin name \"x\\ny\"")
        );
        // Other parameters are not names sent to Connect.
        assert_eq!(problem("/v1/pools/{pool}", "/v1/pools/.."), None);
    }
}
