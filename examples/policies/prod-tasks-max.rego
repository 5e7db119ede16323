# Production connectors run at most 4 tasks: production capacity is shared by every connector of
# the department, and tasks beyond the topic's partitions only sit idle.
#
# A connector is a production one when validate puts it in the prod environment (a prod-*.json
# file of the per-environment layout) or when its name has a "prod" segment, as the naming
# convention <department>-<source>-<type>-<env>-<suffix> gives it.
package connect.prod_tasks_max

max_prod_tasks := 4

is_prod if input.environment == "prod"

is_prod if regex.match(`(^|-)prod(-|$)`, input.connector.name)

deny contains {
	"msg": sprintf(
		"production connector %s asks for %d tasks; production connectors run at most %d",
		[input.connector.name, input.connector.tasks_max, max_prod_tasks],
	),
	"key": "tasks.max",
	"hint": sprintf("set tasks.max to %d or less", [max_prod_tasks]),
} if {
	is_prod
	input.connector.tasks_max > max_prod_tasks
}
