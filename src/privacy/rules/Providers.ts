/**
 * Provider and developer tokens with a recognisable prefix or shape (gitleaks' provider rules), and how they are
 * cut into gated groups.
 */
import { always, anyOf, has, mark, type Rule, type RuleGroup } from "./Hints.js"

export interface ProviderRule extends Rule {
  /** The literal prefixes that announce the format; empty for a shape without one. */
  readonly needles: ReadonlyArray<string>
}

/** A provider token: a fixed prefix makes it certain, so it goes whole. */
export const token = (name: string, needles: Array<string>, pattern: RegExp, marker = "token"): ProviderRule => ({
  name,
  needles,
  hint: has(...needles),
  pattern,
  replace: () => mark(marker)
})

/** A format with no distinctive prefix (Discord, Twilio, Mailchimp, Airtable): its own test, never gated. */
export const shaped = (
  name: string,
  hint: (t: string) => boolean,
  pattern: RegExp,
  marker = "token"
): ProviderRule => ({
  name,
  needles: [],
  hint,
  pattern,
  replace: () => mark(marker)
})

// Provider and developer tokens with a recognisable prefix or shape (gitleaks' provider rules).
export const PROVIDER_FORMATS: ReadonlyArray<ProviderRule> = [
  token("anthropic_key", ["sk-ant-"], /\bsk-ant-[A-Za-z0-9_-]{16,}/g, "api_key"),
  token("openrouter_key", ["sk-or-"], /\bsk-or-[A-Za-z0-9_-]{16,}/g, "api_key"),
  token("openai_key", ["sk-", "rk-"], /\b(?:sk|rk)-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{16,}/g, "api_key"),
  token("groq_key", ["gsk_"], /\bgsk_[A-Za-z0-9]{40,}/g, "api_key"),
  token("replicate_token", ["r8_"], /\br8_[A-Za-z0-9]{30,}/g, "api_key"),
  token("perplexity_key", ["pplx-"], /\bpplx-[A-Za-z0-9]{40,}/g, "api_key"),
  token("xai_key", ["xai-"], /\bxai-[A-Za-z0-9]{60,}/g, "api_key"),
  token("huggingface_token", ["hf_", "api_org_"], /\b(?:hf_[A-Za-z0-9]{30,}|api_org_[A-Za-z0-9]{30,})\b/g),
  token("google_key", ["AIza"], /\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])/g, "api_key"),
  token("google_oauth", ["GOCSPX-", "ya29."], /\b(?:GOCSPX-[A-Za-z0-9_-]{28}|ya29\.[0-9A-Za-z_-]{20,})/g),
  token(
    "aws_access_key",
    ["AKIA", "ASIA", "AIDA", "AROA", "AGPA", "ANPA", "ANVA", "AIPA", "ABIA", "ACCA"],
    /\b(?:AKIA|ASIA|AIDA|AROA|AGPA|ANPA|ANVA|AIPA|ABIA|ACCA)[A-Z2-7]{16}\b/g,
    "aws_key"
  ),
  token(
    "azure_ad_secret",
    ["Q~"],
    /(?<![A-Za-z0-9_~.-])[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])/g,
    "secret"
  ),
  token("digitalocean_token", ["dop_v1_", "doo_v1_", "dor_v1_"], /\bdo[por]_v1_[a-f0-9]{64}\b/g),
  token(
    "github_token",
    ["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
    /\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})/g
  ),
  token(
    "gitlab_token",
    ["glpat-", "glptt-", "gldt-", "glrt-", "glsoat-", "glcbt-", "glft-", "GR1348941"],
    /\b(?:(?:glpat|glptt|gldt|glrt|glsoat|glcbt|glft)-[A-Za-z0-9_-]{20,}|GR1348941[A-Za-z0-9_-]{20,})/g
  ),
  token("bitbucket_token", ["ATBB", "ATATT"], /\b(?:ATBB[A-Za-z0-9]{32}|ATATT[A-Za-z0-9_=-]{60,})/g),
  token("slack_token", ["xox", "xapp-"], /\b(?:xox[abposre]-[A-Za-z0-9-]{10,}|xapp-\d-[A-Za-z0-9-]{20,})/g),
  shaped(
    "discord_token",
    has("."),
    /\b(?<![A-Za-z0-9_-])[MNO][A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,40}\b/g
  ),
  // Also inside API URL paths, where "bot" runs into the id (https://api.telegram.org/bot<id>:<secret>/…).
  token("telegram_token", [":AA"], /(?<!\d)\d{8,10}:AA[A-Za-z0-9_-]{30,36}(?![A-Za-z0-9_-])/g),
  token(
    "stripe_key",
    ["_live_", "_test_", "whsec_"],
    /\b(?:(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}|whsec_[A-Za-z0-9]{20,})/g,
    "api_key"
  ),
  token("square_token", ["sq0", "EAAA"], /\b(?:sq0(?:atp|csp|idp)-[0-9A-Za-z_-]{22,43}|EAAA[A-Za-z0-9_+=-]{56,})/g),
  token("braintree_token", ["access_token$"], /access_token\$(?:production|sandbox)\$[0-9a-z]{16}\$[0-9a-f]{32}/g),
  token("shopify_token", ["shpat_", "shpca_", "shppa_", "shpss_"], /\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b/g),
  token("sendgrid_key", ["SG."], /\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}/g, "api_key"),
  token("mailgun_key", ["key-"], /\bkey-[0-9a-f]{32}\b/g, "api_key"),
  shaped("mailchimp_key", has("-us"), /\b[0-9a-f]{32}-us\d{1,2}\b/g, "api_key"),
  shaped("twilio_key", has("SK", "AC"), /\b(?:SK|AC)[0-9a-f]{32}\b/g),
  token("npm_token", ["npm_"], /\bnpm_[A-Za-z0-9]{36}\b/g),
  token("pypi_token", ["pypi-"], /\bpypi-[A-Za-z0-9_-]{40,}/g),
  token("docker_token", ["dckr_pat_", "dckr_oat_"], /\bdckr_(?:pat|oat)_[A-Za-z0-9_-]{20,}/g),
  token("rubygems_token", ["rubygems_"], /\brubygems_[a-f0-9]{48}\b/g),
  token("nuget_key", ["oy2"], /\boy2[a-z0-9]{43}\b/g, "api_key"),
  token("linear_key", ["lin_api_"], /\blin_api_[A-Za-z0-9]{40}\b/g, "api_key"),
  token("notion_token", ["secret_", "ntn_"], /\b(?:secret_[A-Za-z0-9]{43}|ntn_[A-Za-z0-9]{40,})\b/g),
  shaped("airtable_token", has("pat"), /\bpat[A-Za-z0-9]{14}\.[a-f0-9]{64}\b/g),
  token("dropbox_token", ["sl."], /\bsl\.[A-Za-z0-9_-]{100,}/g),
  token("age_key", ["AGE-SECRET-KEY-"], /\bAGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}\b/g, "private_key"),
  token("sentry_token", ["sntrys_", "sntryu_"], /\b(?:sntrys_[A-Za-z0-9+/=_-]{40,}|sntryu_[a-f0-9]{64})/g),
  token("grafana_token", ["glsa_", "glc_"], /\b(?:glsa_[A-Za-z0-9]{32}_[a-fA-F0-9]{8}|glc_[A-Za-z0-9+/]{32,}={0,2})/g),
  token("vault_token", ["hvs.", "hvb."], /\bhv[sb]\.[A-Za-z0-9_-]{24,}/g),
  token("doppler_token", ["dp.pt.", "dp.st.", "dp.ct."], /\bdp\.(?:pt|st|ct|sa|scim|audit)\.[A-Za-z0-9]{40,}/g),
  token("pulumi_token", ["pul-"], /\bpul-[a-f0-9]{40}\b/g),
  token("postman_key", ["PMAK-"], /\bPMAK-[a-f0-9]{24}-[a-f0-9]{34}\b/g, "api_key"),
  token("databricks_token", ["dapi"], /\bdapi[a-f0-9]{32}(?:-\d)?\b/g),
  token("tailscale_key", ["tskey-"], /\btskey-(?:api|auth|client|webhook)-[A-Za-z0-9]+-[A-Za-z0-9]+/g, "api_key"),
  token("supabase_token", ["sbp_"], /\bsbp_[a-f0-9]{40}\b/g),
  token("planetscale_token", ["pscale_"], /\bpscale_(?:tkn|pw|oauth)_[A-Za-z0-9_.-]{32,}/g),
  token("newrelic_key", ["NRAK-", "NRII-"], /\bNR(?:AK|II)-[A-Z0-9]{27}\b/g, "api_key"),
  token("mapbox_token", ["sk.eyJ", "pk.eyJ"], /\b[sp]k\.eyJ[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{16,}/g),
  token("heroku_key", ["HRKU-"], /\bHRKU-[A-Za-z0-9_-]{40,}/g, "api_key"),
  token("flyio_token", ["fo1_", "fm1r_", "fm2_"], /\b(?:fo1_[A-Za-z0-9_-]{40,}|fm[12][ar]?_[A-Za-z0-9+/=_-]{60,})/g)
]

/**
 * The provider formats in their order, cut into runs: the formats with a fixed prefix share one gate (any
 * prefix of any of them); a shape without a prefix is its own group. The gate's answer is kept for the same
 * string, since each run asks about the same text.
 */
export const providerGroups = (formats: ReadonlyArray<ProviderRule>): Array<RuleGroup> => {
  const anyPrefix = anyOf(formats.flatMap((r) => r.needles))
  let gatedText: string | undefined
  let gateOpen = false
  const gate = (text: string) => {
    if (text !== gatedText) {
      gatedText = text
      gateOpen = anyPrefix(text)
    }
    return gateOpen
  }
  const groups: Array<RuleGroup> = []
  for (const rule of formats) {
    const last = groups[groups.length - 1]
    if (rule.needles.length === 0) groups.push({ gate: always, rules: [rule] })
    else if (last !== undefined && last.gate === gate) (last.rules as Array<Rule>).push(rule)
    else groups.push({ gate, rules: [rule] })
  }
  return groups
}
