//! Connect's plugins as the managed API names them, and which plugin a name designates.
//!
//! The managed service lists plugins by a short name (`PostgresSource`, `S3_SINK`), not by Java
//! class, and the Confluent CLI prints that name. Connect's own short name for a class is its
//! pruned alias (`FileStreamSource` for `...FileStreamSourceConnector`), which Connect accepts
//! in `connector.class` and in validate paths wherever the class name is accepted, so the
//! managed list shows aliases and everything that takes a plugin keeps taking both.

use serde::Serialize;

use crate::connect::PluginInfo;

/// One entry of the managed plugin list (`connect.v1.ConnectorPlugin`): `class` holds the
/// plugin's short name, as the managed service lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManagedPlugin {
    /// The plugin's name (Connect's alias; the full class when the alias is ambiguous).
    #[serde(rename = "class")]
    pub name: String,
    /// `source` or `sink`.
    #[serde(rename = "type")]
    pub plugin_type: String,
    /// The plugin's version, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// The simple name of a class (after its last `.`).
fn simple_name(class_name: &str) -> &str {
    class_name.rsplit('.').next().unwrap_or(class_name)
}

/// Connect's pruned alias of a class: its simple name without the `Connector` suffix.
fn pruned_name(class_name: &str) -> &str {
    let simple = simple_name(class_name);
    simple.strip_suffix("Connector").unwrap_or(simple)
}

/// The source and sink plugins of Connect's list (`plugins`) as the managed API lists them, by
/// their pruned alias (`FileStreamSource`). A short name counts only when it designates exactly
/// one listed plugin (Connect's own rule, so the name is one Connect resolves): else the simple
/// name when that is unique, else the full class.
pub fn managed_plugins(plugins: &[PluginInfo]) -> Vec<ManagedPlugin> {
    let unique = |name: &str| {
        plugins
            .iter()
            .filter(|p| plugin_matches(&p.class_name, name))
            .count()
            == 1
    };
    plugins
        .iter()
        .filter(|p| matches!(p.plugin_type.as_str(), "source" | "sink"))
        .map(|p| {
            let class = p.class_name.as_str();
            let name = [pruned_name(class), simple_name(class)]
                .into_iter()
                .find(|n| unique(n))
                .unwrap_or(class);
            ManagedPlugin {
                name: name.to_string(),
                plugin_type: p.plugin_type.clone(),
                version: p.version.clone(),
            }
        })
        .collect()
}

/// `sink` or `source` for a connector: Connect's own answer when it knows, else the type of its
/// class in the plugin list (matching the full class name or either of Connect's aliases), else
/// `unknown` (what Confluent Cloud itself sends in that case).
pub fn connector_type(
    reported: Option<&str>,
    class: Option<&str>,
    plugins: &[PluginInfo],
) -> String {
    if let Some(t @ ("sink" | "source")) = reported {
        return t.to_string();
    }
    if let Some(class) = class
        && let Some(p) = plugins
            .iter()
            .find(|p| plugin_matches(&p.class_name, class))
    {
        return p.plugin_type.clone();
    }
    "unknown".to_string()
}

/// Whether `name` designates the plugin `class_name`: the full name, the simple name, or the
/// simple name without its `Connector` suffix (Connect's two aliases).
pub fn plugin_matches(class_name: &str, name: &str) -> bool {
    if class_name == name {
        return true;
    }
    simple_name(class_name) == name || pruned_name(class_name) == name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_connect_or_the_plugin_list() {
        let plugins = vec![PluginInfo {
            class_name: "org.apache.kafka.connect.file.FileStreamSourceConnector".into(),
            plugin_type: "source".into(),
            version: None,
        }];
        assert_eq!(connector_type(Some("sink"), None, &plugins), "sink");
        for alias in [
            "FileStreamSource",
            "FileStreamSourceConnector",
            "org.apache.kafka.connect.file.FileStreamSourceConnector",
        ] {
            assert_eq!(
                connector_type(Some("unknown"), Some(alias), &plugins),
                "source"
            );
        }
        assert_eq!(connector_type(None, Some("Nope"), &plugins), "unknown");
    }

    fn plugin(class: &str, plugin_type: &str) -> PluginInfo {
        PluginInfo {
            class_name: class.into(),
            plugin_type: plugin_type.into(),
            version: Some("4.3.1".into()),
        }
    }

    #[test]
    fn managed_plugin_lists_show_names_that_creates_accept() {
        let plugins = vec![
            plugin(
                "org.apache.kafka.connect.file.FileStreamSourceConnector",
                "source",
            ),
            plugin(
                "org.apache.kafka.connect.file.FileStreamSinkConnector",
                "sink",
            ),
            plugin("a.JdbcSinkConnector", "sink"),
            plugin("b.JdbcSink", "sink"),
            plugin("a.Twin", "source"),
            plugin("b.Twin", "source"),
            plugin(
                "org.apache.kafka.connect.converters.ByteArrayConverter",
                "converter",
            ),
        ];
        let listed = managed_plugins(&plugins);
        let names: Vec<&str> = listed.iter().map(|p| p.name.as_str()).collect();
        // `JdbcSink` is the alias of two classes: each keeps its simple name; `Twin` is the
        // simple name of two: each keeps its class. Converters are not connector plugins.
        assert_eq!(
            names,
            [
                "FileStreamSource",
                "FileStreamSink",
                "JdbcSinkConnector",
                "b.JdbcSink",
                "a.Twin",
                "b.Twin"
            ]
        );
        for (entry, p) in listed.iter().zip(&plugins) {
            assert!(plugin_matches(&p.class_name, &entry.name), "{entry:?}");
            assert_eq!(entry.plugin_type, p.plugin_type);
        }
        assert_eq!(
            serde_json::to_value(&listed[0]).unwrap(),
            serde_json::json!({"class": "FileStreamSource", "type": "source", "version": "4.3.1"})
        );
    }
}
