//! Connect's plugins as the managed API names them, and which plugin a name designates.

use crate::connect::PluginInfo;

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
    let simple = class_name.rsplit('.').next().unwrap_or(class_name);
    simple == name || simple.strip_suffix("Connector") == Some(name)
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
}
