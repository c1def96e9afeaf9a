/**
 * `autotune accept-store`: start afresh with the store configured now (store/Identity.ts).
 */
import { Command } from "@effect/cli"
import { Clock, Effect } from "effect"
import { loadSettings, storeLocation } from "../config/Config.js"
import { printJson, printLine, shown, usd } from "./Output.js"
import { currentStoreId, forgetStore, rememberedSpend } from "../store/Identity.js"
import { common, configInput, withApp } from "./Common.js"

/**
 * After a store was removed or replaced on purpose: the store configured now becomes autotune's store (a new, empty
 * one when there is none; store/Identity.ts). Its traces are read again from DotClaw's files by the next cycle; the
 * last 24 hours' spend stays counted from the home's record.
 */
export const acceptStoreCommand = Command.make("accept-store", common, (opts) =>
  Effect.gen(function* () {
    const { config } = yield* loadSettings(configInput(opts))
    const before = yield* forgetStore(config.home)
    const id = yield* withApp(opts, currentStoreId)
    const result = {
      store: storeLocation(config),
      storeId: id,
      previous: before?.location === undefined ? null : { store: before.location, storeId: before.storeId ?? null },
      spent24hUsd: rememberedSpend(config.home, yield* Clock.currentTimeMillis)
    }
    if (opts.json) return yield* printJson(result)
    yield* printLine(
      `autotune's store is now ${shown(result.store)} (store ${id})${result.previous === null ? "" : `; was ${shown(result.previous.store)} (store ${result.previous.storeId})`}`
    )
    yield* printLine(
      `the next cycle reads DotClaw's traces into it; the last 24 hours' spend (${usd(result.spent24hUsd, 2)}) still counts against the daily budget`
    )
  })
).pipe(
  Command.withDescription(
    "Make the store configured now autotune's store, after the one it had was removed or replaced on purpose"
  )
)
