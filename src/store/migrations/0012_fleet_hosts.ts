/**
 * Which installation uses each host id in a store several hosts share: two machines that both default to the
 * same hostname (two "raspberrypi"s) would otherwise overwrite each other's file positions. A SQLite store
 * belongs to one machine, so it has no such table.
 */
import { type Migration, NONE, statements } from "./Migration.js"

export const { sqlite, pg }: Migration = {
  sqlite: NONE,
  pg: statements(
    `CREATE TABLE fleet_hosts (host_id TEXT PRIMARY KEY, install_id TEXT NOT NULL, first_seen BIGINT NOT NULL, last_seen BIGINT NOT NULL)`
  )
}
