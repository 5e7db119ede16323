# JDBC source connectors only run on the "heavy" pool: their bulk queries and large batches would
# starve the other connectors of a shared worker's memory.
package connect.jdbc_heavy_pool

required_pool := "heavy"

is_jdbc if contains(lower(input.connector.class), "jdbc")

deny contains {
	"msg": sprintf(
		"JDBC source %s must run on pool %s, not %s",
		[input.connector.name, required_pool, input.connector.pool],
	),
	"key": "supervisor.pool",
	"hint": sprintf("set supervisor.pool to %s", [required_pool]),
} if {
	input.connector.type == "source"
	is_jdbc
	input.connector.pool != required_pool
}
