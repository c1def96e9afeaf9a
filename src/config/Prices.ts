/** Model prices: pure data and parsing, shared by the configuration (validation) and the runner (cost). */

/**
 * USD per million tokens, input and output, from Anthropic's published price list. Keys are bare model ids
 * (provider prefix and date suffix dropped). AUTOTUNE_PRICES or `llm.prices` in the file add or override.
 */
export const DEFAULT_PRICES: Readonly<Record<string, readonly [number, number]>> = {
  "claude-haiku-4-5": [1, 5],
  "claude-sonnet-5-5": [2, 10],
  "claude-sonnet-5": [2, 10],
  "claude-sonnet-4-6": [3, 15],
  "claude-sonnet-4-5": [3, 15],
  "claude-sonnet-4": [3, 15],
  "claude-opus-5-5": [4, 20],
  "claude-opus-4-5": [5, 25],
  "claude-opus-4-1": [15, 75],
  "claude-3-5-haiku": [0.8, 4]
}

export const bareModel = (model: string) => model.slice(model.lastIndexOf("/") + 1).replace(/-\d{8}$/, "")

export type PriceTable = Record<string, readonly [number, number]>

/** What `tokensIn` and `tokensOut` of `model` cost in US dollars, or null when the table has no price for it. */
export const costAt = (prices: PriceTable, model: string, tokensIn: number, tokensOut: number): number | null => {
  const price = prices[bareModel(model)]
  return price === undefined ? null : (tokensIn * price[0] + tokensOut * price[1]) / 1e6
}

/**
 * Price overrides merged over the defaults: `model=in:out,model2=in:out` (the 1.1 form), or JSON as
 * `{"model": [in, out]}` / `{"model": {"input": in, "output": out}}`. Config validation has checked the shape.
 */
export const parsePrices = (value: string | Readonly<Record<string, unknown>>): PriceTable => {
  const prices: PriceTable = { ...DEFAULT_PRICES }
  for (const [model, price] of Object.entries(priceEntries(value))) prices[bareModel(model)] = price
  return prices
}

/** The entries of a price setting, or a description of what is wrong with it. */
export const priceEntries = (value: string | Readonly<Record<string, unknown>>): PriceTable => {
  const text = typeof value === "string" ? value.trim() : undefined
  if (text !== undefined && !text.startsWith("{")) {
    const out: PriceTable = {}
    for (const entry of text
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "")) {
      const match = /^([^=]+)=([\d.]+):([\d.]+)$/.exec(entry)
      if (match === null) throw new Error(`entry ${JSON.stringify(entry)} is not model=inUsdPerMTok:outUsdPerMTok`)
      out[match[1]!.trim()] = [Number(match[2]), Number(match[3])]
    }
    return out
  }
  const json = text !== undefined ? (JSON.parse(text) as unknown) : value
  if (json === null || typeof json !== "object" || Array.isArray(json))
    throw new Error("must be a JSON object of model -> price")
  const out: PriceTable = {}
  for (const [model, price] of Object.entries(json)) {
    const pair = Array.isArray(price)
      ? price
      : price !== null && typeof price === "object"
        ? [(price as Record<string, unknown>)["input"], (price as Record<string, unknown>)["output"]]
        : []
    if (pair.length !== 2 || !pair.every((n) => typeof n === "number" && Number.isFinite(n) && n >= 0)) {
      throw new Error(`price of ${model} must be [inUsdPerMTok, outUsdPerMTok] or {"input": …, "output": …}`)
    }
    out[model] = [pair[0] as number, pair[1] as number]
  }
  return out
}
