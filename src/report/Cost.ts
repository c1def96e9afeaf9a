/**
 * What autotune cost beside the agent it improves, over the last 24 hours and the last 7 and 30 UTC days, as
 * `status`, the report and /metrics show it (Domain/Cost.ts says what a share is and when there is none).
 * The 24 hours are read from the calls' and the turns' time indexes; the longer windows from whole days, the
 * rollup's for autotune, so a store of millions of calls answers at once.
 */
import type { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { besideAgent, COST_WINDOWS } from "../Domain/Cost.js"
import { spentFromDay, spentSince } from "../store/Spend.js"
import { agentSpendSince } from "../store/Traces.js"

const DAY_MS = 86_400_000

/** The first millisecond of the UTC day `days - 1` days before `now`'s: the start of a window of `days` days. */
export const windowStart = (now: number, days: number) => Math.floor(now / DAY_MS) * DAY_MS - (days - 1) * DAY_MS

/**
 * `retentionDays`: turns older than AUTOTUNE_RETENTION_DAYS are pruned (0: kept), while autotune's own calls are
 * kept, so a window longer than what the store keeps has no agent spend to set beside autotune's.
 */
export const costBeside = (sql: SqlClient.SqlClient, now: number, retentionDays: number) =>
  Effect.forEach(COST_WINDOWS, (days) =>
    Effect.gen(function* () {
      if (retentionDays > 0 && days > retentionDays) {
        const autotune = yield* spentFromDay(sql, new Date(windowStart(now, days)).toISOString().slice(0, 10))
        return besideAgent(days, autotune, { turns: 0, priced: 0, usd: 0 }, retentionDays)
      }
      const since = days === 1 ? now - DAY_MS : windowStart(now, days)
      const autotune =
        days === 1
          ? yield* spentSince(sql, since)
          : yield* spentFromDay(sql, new Date(since).toISOString().slice(0, 10))
      return besideAgent(days, autotune, yield* agentSpendSince(sql, since), retentionDays)
    })
  )
