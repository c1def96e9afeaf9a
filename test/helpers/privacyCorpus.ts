/**
 * A labelled corpus of secrets, personal data and their look-alikes, generated deterministically from a
 * seed. The kinds follow the public rule families of gitleaks (provider formats, generic assignments,
 * private keys), Presidio's recognizers (cards, IBANs, national ids, phones, emails) and TruffleHog's
 * detector families; every value and sentence is generated here, none is copied from another project.
 *
 * A positive carries one planted `secret`: it counts as found only when no 8-character fragment of it
 * survives redaction (the whole value when it is shorter). A negative must come out unchanged.
 */
import { parsePhoneNumberFromString, type CountryCode } from "libphonenumber-js/max"
import { rng } from "../../src/Domain/Random.js"

export interface Sample {
  readonly kind: string
  readonly text: string
  /** The planted value; absent for a negative. */
  readonly secret?: string
}

const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
const LOWER = "abcdefghijklmnopqrstuvwxyz"
const DIGITS = "0123456789"
const B62 = UPPER + LOWER + DIGITS
const B64URL = B62 + "-_"
const B64 = B62 + "+/"
const HEX = "0123456789abcdef"

class Gen {
  constructor(readonly r: () => number) {}
  int = (lo: number, hi: number) => lo + Math.floor(this.r() * (hi - lo + 1))
  pick = <A>(xs: ReadonlyArray<A>): A => xs[Math.floor(this.r() * xs.length)]!
  chars = (alphabet: string, n: number) =>
    Array.from({ length: n }, () => alphabet[Math.floor(this.r() * alphabet.length)]).join("")
  b62 = (n: number) => this.chars(B62, n)
  b64url = (n: number) => this.chars(B64URL, n)
  hex = (n: number) => this.chars(HEX, n)
  digits = (n: number) => this.chars(DIGITS, n)
  /** A password a person might choose: words, digits and a symbol. */
  password = () =>
    this.pick([
      () =>
        `${this.pick(["Sunset", "Porto", "Maple", "Falcon", "Orbit", "Tango", "Lisbon", "Harbor"])}${this.digits(this.int(2, 4))}${this.pick(["!", "#", "$", "%", "&", "?"])}`,
      () =>
        `${this.pick(["blue", "river", "coffee", "winter", "panda"])}-${this.pick(["horse", "stone", "lamp", "cloud"])}-${this.digits(2)}`,
      () => this.chars(B62 + "!@#%^*", this.int(10, 16)),
      () => `${this.pick(["hunter", "dragon", "qwerty", "letmein"])}${this.digits(this.int(2, 4))}`
    ])()
  user = () => this.pick(["ana", "joao", "admin", "deploy", "app_user", "svc-backup", "marta.s"])
  host = () =>
    this.pick(["db.internal", "10.0.3.12", "pg.home.lan", "prod-db-1.example.net", "cluster0.x7kq2.mongodb.net"])
  uuid = () =>
    `${this.hex(8)}-${this.hex(4)}-4${this.hex(3)}-${this.pick(["8", "9", "a", "b"])}${this.hex(3)}-${this.hex(12)}`
  base64 = (bytes: number) => Buffer.from(Array.from({ length: bytes }, () => this.int(0, 255))).toString("base64")
  pem = (label: string, bodyLines: number) => {
    const body = Array.from({ length: bodyLines }, () => this.chars(B64, 64)).join("\n")
    return `-----BEGIN ${label}-----\n${body}\n${this.chars(B64, 24)}==\n-----END ${label}-----`
  }
}

/** A sentence around a value, in the places a personal assistant sees one: chat, env, YAML, JSON, shell. */
const frame = (g: Gen, value: string, envName: string): string =>
  g.pick([
    `here is the key you asked for: ${value} - keep it safe`,
    `export ${envName}=${value}`,
    `${envName.toLowerCase()}: ${value}`,
    `{"tool":"write_file","args":{"path":".env","content":"${envName}=${value}\\n"}}`,
    `can you add ${value} to the deploy settings?`,
    `I rotated it, the new one is ${value}`,
    `config set ${envName} "${value}"`,
    `Remember this for later: ${value}`,
    `docker run -e ${envName}=${value} myapp:latest`,
    `${value}`
  ])

type Make = (g: Gen) => { text: string; secret: string }
const prefixed =
  (envName: string, value: (g: Gen) => string): Make =>
  (g) => {
    const v = value(g)
    return { text: frame(g, v, envName), secret: v }
  }

const luhnComplete = (partial: string): string => {
  for (let d = 0; d <= 9; d++) {
    const digits = partial + d
    let sum = 0
    let double = false
    for (let i = digits.length - 1; i >= 0; i--) {
      let x = digits.charCodeAt(i) - 48
      if (double) {
        x *= 2
        if (x > 9) x -= 9
      }
      sum += x
      double = !double
    }
    if (sum % 10 === 0) return digits
  }
  return partial + "0"
}

const ibanCheck = (country: string, bban: string): string => {
  const rearranged = bban + country + "00"
  let rem = 0
  for (const ch of rearranged) {
    const code = ch.charCodeAt(0)
    const v = code >= 65 ? String(code - 55) : ch
    for (const d of v) rem = (rem * 10 + Number(d)) % 97
  }
  return String(98 - rem).padStart(2, "0")
}

const group4 = (s: string) => s.replace(/(.{4})/g, "$1 ").trim()

/** A phone number libphonenumber says is valid for the region, drawn from the region's usual shapes. */
const phoneFor = (g: Gen, region: CountryCode): { national: string; international: string } => {
  const shapes: Partial<Record<CountryCode, () => string>> = {
    GB: () =>
      g.pick([
        `020 7${g.digits(3)} ${g.digits(4)}`,
        `07${g.pick(["7", "8", "9"])}${g.digits(2)} ${g.digits(6)}`,
        `0161 ${g.digits(3)} ${g.digits(4)}`
      ]),
    DE: () => g.pick([`030 ${g.digits(8)}`, `0151 ${g.digits(8)}`, `089 ${g.digits(7)}`]),
    FR: () => `0${g.pick(["1", "6", "7"])} ${g.digits(2)} ${g.digits(2)} ${g.digits(2)} ${g.digits(2)}`,
    US: () => `(${g.pick(["212", "415", "312", "617", "206", "305"])}) ${g.int(2, 9)}${g.digits(2)}-${g.digits(4)}`,
    ES: () => `6${g.digits(2)} ${g.digits(3)} ${g.digits(3)}`,
    IT: () => `3${g.int(2, 9)}${g.digits(1)} ${g.digits(3)} ${g.digits(4)}`,
    PT: () => `9${g.pick(["1", "2", "3", "6"])}${g.digits(1)} ${g.digits(3)} ${g.digits(3)}`,
    NL: () => `06 ${g.digits(8)}`
  }
  for (;;) {
    const national = shapes[region]!()
    const parsed = parsePhoneNumberFromString(national, region)
    if (parsed?.isValid() === true) return { national, international: parsed.formatInternational() }
  }
}

const POSITIVES: Record<string, Make> = {
  anthropic_key: prefixed("ANTHROPIC_API_KEY", (g) => `sk-ant-api03-${g.b64url(93)}AA`),
  openai_project_key: prefixed("OPENAI_API_KEY", (g) => `sk-proj-${g.b64url(74)}T3BlbkFJ${g.b64url(74)}`),
  openai_legacy_key: prefixed("OPENAI_API_KEY", (g) => `sk-${g.b62(20)}T3BlbkFJ${g.b62(20)}`),
  openrouter_key: prefixed("OPENROUTER_API_KEY", (g) => `sk-or-v1-${g.hex(64)}`),
  groq_key: prefixed("GROQ_API_KEY", (g) => `gsk_${g.b62(52)}`),
  google_api_key: prefixed("GOOGLE_API_KEY", (g) => `AIza${g.b64url(35)}`),
  huggingface_token: prefixed("HF_TOKEN", (g) => `hf_${g.b62(34)}`),
  replicate_token: prefixed("REPLICATE_API_TOKEN", (g) => `r8_${g.b62(37)}`),
  aws_access_key_id: prefixed("AWS_ACCESS_KEY_ID", (g) => `AKIA${g.chars(UPPER + "234567", 16)}`),
  aws_secret_access_key: (g) => {
    const v = g.chars(B64, 40)
    return {
      text: g.pick([`aws_secret_access_key = ${v}`, `AWS_SECRET_ACCESS_KEY=${v}`, `"SecretAccessKey": "${v}"`]),
      secret: v
    }
  },
  gcp_service_account: (g) => {
    const body = g.chars(B64, 64)
    const pem = `-----BEGIN PRIVATE KEY-----\\n${body}\\n${g.chars(B64, 64)}\\n-----END PRIVATE KEY-----\\n`
    return {
      text: `{"type": "service_account", "project_id": "home-${g.digits(4)}", "private_key_id": "${g.hex(40)}", "private_key": "${pem}", "client_email": "bot@home.iam.gserviceaccount.com"}`,
      secret: body
    }
  },
  azure_storage_connection: (g) => {
    const v = `${g.chars(B64, 86)}==`
    return {
      text: `DefaultEndpointsProtocol=https;AccountName=homebackup${g.digits(2)};AccountKey=${v};EndpointSuffix=core.windows.net`,
      secret: v
    }
  },
  azure_ad_client_secret: prefixed(
    "AZURE_CLIENT_SECRET",
    (g) => `${g.b62(3)}${g.int(0, 9)}Q~${g.chars(B62 + "_~.-", 34)}`
  ),
  digitalocean_token: prefixed("DIGITALOCEAN_TOKEN", (g) => `dop_v1_${g.hex(64)}`),
  github_classic_token: prefixed("GITHUB_TOKEN", (g) => `ghp_${g.b62(36)}`),
  github_fine_grained_token: prefixed("GITHUB_TOKEN", (g) => `github_pat_${g.b62(22)}_${g.b62(59)}`),
  gitlab_token: prefixed("GITLAB_TOKEN", (g) => `glpat-${g.b64url(20)}`),
  bitbucket_app_password: prefixed("BITBUCKET_APP_PASSWORD", (g) => `ATBB${g.b62(32)}`),
  slack_bot_token: prefixed("SLACK_BOT_TOKEN", (g) => `xoxb-${g.digits(12)}-${g.digits(13)}-${g.b62(24)}`),
  // For a URL whose path is the credential, the planted value is the path: the scheme and host are public.
  slack_webhook: (g) => {
    const v = `T${g.chars(UPPER + DIGITS, 8)}/B${g.chars(UPPER + DIGITS, 8)}/${g.b62(24)}`
    return { text: frame(g, `https://hooks.slack.com/services/${v}`, "SLACK_WEBHOOK_URL"), secret: v }
  },
  discord_bot_token: prefixed(
    "DISCORD_TOKEN",
    (g) => `${g.pick(["M", "N", "O"])}${g.b62(25)}.${g.b64url(6)}.${g.b64url(38)}`
  ),
  discord_webhook: (g) => {
    const v = `${g.digits(18)}/${g.b64url(68)}`
    return { text: frame(g, `https://discord.com/api/webhooks/${v}`, "DISCORD_WEBHOOK"), secret: v }
  },
  telegram_bot_token: prefixed("TELEGRAM_BOT_TOKEN", (g) => `${g.int(1, 9)}${g.digits(9)}:AA${g.b64url(33)}`),
  stripe_secret_key: prefixed("STRIPE_SECRET_KEY", (g) => `sk_live_${g.b62(g.pick([24, 99]))}`),
  stripe_webhook_secret: prefixed("STRIPE_WEBHOOK_SECRET", (g) => `whsec_${g.b62(32)}`),
  square_access_token: prefixed("SQUARE_ACCESS_TOKEN", (g) => `EAAA${g.b64url(60)}`),
  shopify_token: prefixed("SHOPIFY_ACCESS_TOKEN", (g) => `shpat_${g.hex(32)}`),
  sendgrid_key: prefixed("SENDGRID_API_KEY", (g) => `SG.${g.b64url(22)}.${g.b64url(43)}`),
  mailgun_key: prefixed("MAILGUN_API_KEY", (g) => `key-${g.hex(32)}`),
  mailchimp_key: prefixed("MAILCHIMP_API_KEY", (g) => `${g.hex(32)}-us${g.int(1, 21)}`),
  twilio_api_key: prefixed("TWILIO_API_KEY", (g) => `SK${g.hex(32)}`),
  npm_token: prefixed("NPM_TOKEN", (g) => `npm_${g.b62(36)}`),
  pypi_token: prefixed("PYPI_TOKEN", (g) => `pypi-AgEIcHlwaS5vcmc${g.b64url(70)}`),
  docker_hub_token: prefixed("DOCKER_TOKEN", (g) => `dckr_pat_${g.b64url(27)}`),
  postgres_url_password: (g) => {
    const pw = g.password()
    return { text: `DATABASE_URL=postgres://${g.user()}:${pw}@${g.host()}:5432/app`, secret: pw }
  },
  mongodb_url_password: (g) => {
    const pw = g.password()
    return {
      text: `connect with mongodb+srv://${g.user()}:${pw}@cluster0.x7kq2.mongodb.net/notes?retryWrites=true`,
      secret: pw
    }
  },
  redis_url_password: (g) => {
    const pw = g.password()
    return {
      text: g.pick([
        `REDIS_URL=redis://:${pw}@cache.local:6379/0`,
        `use rediss://default:${pw}@redis-1234.cloud.example.com:6380`
      ]),
      secret: pw
    }
  },
  amqp_url_password: (g) => {
    const pw = g.password()
    return { text: `broker: amqp://${g.user()}:${pw}@rabbit.home.lan:5672/vhost`, secret: pw }
  },
  rsa_private_key: (g) => {
    const pem = g.pem("RSA PRIVATE KEY", 4)
    return { text: `save this as id_rsa:\n${pem}`, secret: pem.split("\n")[2]! }
  },
  openssh_private_key: (g) => {
    const pem = g
      .pem("OPENSSH PRIVATE KEY", 3)
      .replace(/\n[^\n]+/, `\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ${g.chars(B64, 22)}`)
    return {
      text: `{"tool":"write_file","args":{"path":"~/.ssh/id_ed25519","content":${JSON.stringify(pem)}}}`,
      secret: pem.split("\n")[2]!
    }
  },
  pgp_private_key: (g) => {
    const body = `lQOYBF${g.chars(B64, 58)}\n${g.chars(B64, 64)}`
    return {
      text: `-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n${body}\n=${g.chars(B64, 4)}\n-----END PGP PRIVATE KEY BLOCK-----`,
      secret: body.split("\n")[1]!
    }
  },
  ec_private_key: (g) => {
    const pem = g.pem("EC PRIVATE KEY", 2)
    return { text: `the cert key is\n${pem}\nthanks`, secret: pem.split("\n")[1]! }
  },
  jwt: prefixed("SESSION_JWT", (g) => {
    const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url")
    return `${enc({ alg: "HS256", typ: "JWT" })}.${enc({ sub: g.digits(8), name: "Ana", iat: 1795467310 })}.${g.b64url(43)}`
  }),
  basic_auth_url: (g) => {
    const pw = g.password()
    return {
      text: g.pick([
        `git clone https://${g.user()}:${pw}@git.home.lan/ana/notes.git`,
        `curl -u ${g.user()}:${pw} https://nas.local/api`,
        `wget --password=${pw} ftp://files.home.lan/backup.tar`
      ]),
      secret: pw
    }
  },
  basic_auth_header: (g) => {
    const v = Buffer.from(`${g.user()}:${g.password()}`).toString("base64")
    return { text: `curl -H "Authorization: Basic ${v}" https://nas.local/api/status`, secret: v }
  },
  bearer_header: (g) => {
    const v = g.b64url(g.int(32, 48))
    return { text: g.pick([`Authorization: Bearer ${v}`, `{"headers": {"Authorization": "Bearer ${v}"}}`]), secret: v }
  },
  env_secret_assignment: (g) => {
    const v = g.pick([g.b62(32), g.hex(40), g.password()])
    return {
      text: `${g.pick(["APP_SECRET", "JWT_SECRET", "DB_PASSWORD", "SESSION_SECRET", "WEBHOOK_SECRET", "CLOUDFLARE_API_TOKEN", "DATADOG_API_KEY"])}=${v}`,
      secret: v
    }
  },
  yaml_secret: (g) => {
    const v = g.pick([g.b62(28), g.password()])
    return {
      text: `smtp:\n  host: mail.example.org\n  ${g.pick(["password", "client_secret", "api_key", "auth_token"])}: ${v}\n  port: 587`,
      secret: v
    }
  },
  json_secret: (g) => {
    const v = g.pick([g.b62(24), g.password(), g.hex(32)])
    const name = g.pick(["password", "apiKey", "secret", "token", "accessToken"])
    return {
      text: g.pick([
        `{"service":"router","${name}":"${v}","retries":3}`,
        `<config><${name}>${v}</${name}></config>`,
        `${name} := "${v}"`,
        `'${name}' => '${v}',`,
        `[auth]\n${name} = "${v}"`
      ]),
      secret: v
    }
  },
  prose_password: (g) => {
    const v = g.password()
    return {
      text: g.pick([
        `my password is ${v}`,
        `The password for the bank app is ${v}, please remember it`,
        `I changed my email password to "${v}" yesterday`,
        `new password: ${v}`,
        `her netflix password is ${v}.`,
        `password for the NAS: '${v}'`,
        `Passwort ist ${v}`
      ]),
      secret: v
    }
  },
  pw_shorthand: (g) => {
    const v = g.password()
    return { text: g.pick([`user ana pw: ${v}`, `login admin / pw=${v}`, `PW: ${v}`, `pwd: ${v} (router)`]), secret: v }
  },
  wifi_or_door_code: (g) => {
    const v = g.pick([g.password(), g.digits(g.int(4, 8)), `${g.digits(4)}-${g.digits(4)}`])
    return {
      text: g.pick([
        `the wifi code is ${v}`,
        `Wi-Fi password: ${v}`,
        `the door code is ${v} if I'm not home`,
        `alarm code = ${v}`,
        `my PIN is ${v}`
      ]),
      secret: v
    }
  },
  unlabelled_hex_token: (g) => {
    const v = g.hex(g.pick([32, 40, 64]))
    return {
      text: g.pick([
        `here's the access code for the API: ${v}`,
        `paste ${v} into the app to sign in`,
        `use this to log in: ${v}`,
        `my license: ${v}`,
        `the new auth value is ${v}`
      ]),
      secret: v
    }
  },
  email: (g) => {
    const v = `${g.pick(["ana.silva", "j.oliveira", "marta+trips", "dev.ops", "r.costa84"])}@${g.pick(["gmail.com", "example.co.uk", "proton.me", "family-mail.pt", "work.example.org"])}`
    return {
      text: g.pick([`write to ${v} please`, `{"to":"${v}","subject":"Trip"}`, `my email is ${v}.`, `cc: <${v}>`]),
      secret: v
    }
  },
  phone_international: (g) => {
    const { international } = phoneFor(g, g.pick(["GB", "DE", "FR", "US", "ES", "IT", "PT", "NL"] as const))
    return {
      text: g.pick([
        `call me at ${international} tomorrow`,
        `{"phone":"${international}"}`,
        `reach Marta on ${international}`,
        `${international}`
      ]),
      secret: international
    }
  },
  phone_national: (g) => {
    const { national } = phoneFor(g, g.pick(["GB", "DE", "FR", "US", "ES", "IT", "PT", "NL"] as const))
    return {
      text: g.pick([
        `my number is ${national}`,
        `call the plumber on ${national}`,
        `mobile: ${national}`,
        `text me at ${national} when you land`
      ]),
      secret: national
    }
  },
  credit_card: (g) => {
    const partial = g.pick([`4${g.digits(14)}`, `5${g.int(1, 5)}${g.digits(13)}`, `2221${g.digits(11)}`])
    const full = luhnComplete(partial)
    const amex = luhnComplete(`3${g.pick(["4", "7"])}${g.digits(12)}`)
    const v = g.pick([
      group4(full),
      full,
      full.replace(/(.{4})(?!$)/g, "$1-"),
      `${amex.slice(0, 4)} ${amex.slice(4, 10)} ${amex.slice(10)}`
    ])
    return { text: g.pick([`my card is ${v} exp 09/29`, `{"card_number":"${v}"}`, `pay with ${v}`]), secret: v }
  },
  iban: (g) => {
    const country = g.pick(["DE", "GB", "FR", "ES", "NL", "PT"] as const)
    const bban = {
      DE: () => g.digits(18),
      GB: () => `${g.chars(UPPER, 4)}${g.digits(14)}`,
      FR: () => g.digits(23),
      ES: () => g.digits(20),
      NL: () => `${g.chars(UPPER, 4)}${g.digits(10)}`,
      PT: () => g.digits(21)
    }[country]()
    const compact = `${country}${ibanCheck(country, bban)}${bban}`
    const v = g.pick([compact, group4(compact)])
    return { text: g.pick([`send it to ${v}`, `IBAN: ${v}`, `{"iban":"${v}"}`]), secret: v }
  },
  us_ssn: (g) => {
    let area = g.int(1, 899)
    if (area === 666) area = 667
    const v = `${String(area).padStart(3, "0")}-${String(g.int(1, 99)).padStart(2, "0")}-${String(g.int(1, 9999)).padStart(4, "0")}`
    return {
      text: g.pick([`SSN ${v}`, `my social security number is ${v}`, `{"ssn":"${v}"}`, `for the form: ${v}`]),
      secret: v
    }
  },
  uk_nino: (g) => {
    const first = g.pick([..."ABCEGHJKLMNOPRSTWXYZ"])
    const second = g.pick([..."ABCEGHJKLMNPRSTWXYZ"])
    const prefix = ["BG", "GB", "NK", "KN", "TN", "NT", "ZZ"].includes(first + second) ? "AB" : first + second
    const v = g.pick([
      `${prefix}${g.digits(6)}${g.pick(["A", "B", "C", "D"])}`,
      `${prefix} ${g.digits(2)} ${g.digits(2)} ${g.digits(2)} ${g.pick(["A", "B", "C", "D"])}`
    ])
    return { text: g.pick([`NI number ${v}`, `my national insurance is ${v}`, `{"nino":"${v}"}`]), secret: v }
  },
  es_dni: (g) => {
    const n = g.int(10_000_000, 99_999_999)
    const v = `${n}${"TRWAGMYFPDXBNJZSQVHLCKE"[n % 23]}`
    return { text: g.pick([`DNI ${v}`, `mi DNI es ${v}`, `{"dni":"${v}"}`]), secret: v }
  }
}

type MakeNegative = (g: Gen) => string
const NEGATIVES: Record<string, MakeNegative> = {
  git_ssh_remote: (g) =>
    `git remote add origin git@${g.pick(["github.com", "gitlab.com", "bitbucket.org"])}:${g.pick(["ana", "dotsetlabs", "home-infra"])}/${g.pick(["notes", "dotclaw", "dotfiles"])}.git`,
  env_placeholder: (g) =>
    g.pick([
      `OPENAI_API_KEY=\${OPENAI_API_KEY}`,
      `api_key: "\${API_KEY}"`,
      `password: \${DB_PASSWORD:-}`,
      `"token": "{{ secrets.GITHUB_TOKEN }}"`
    ]),
  angle_placeholder: (g) =>
    g.pick([
      `api_key: <your-key>`,
      `Authorization: Bearer <token>`,
      `export ANTHROPIC_API_KEY=<paste-your-key-here>`,
      `password=<password>`
    ]),
  masked_key: (g) =>
    g.pick([
      `the key sk-...XXXX is revoked`,
      `sk-ant-...${g.hex(4)} expired`,
      `key ending in ...${g.hex(4)}`,
      `token: ****${g.digits(4)}`
    ]),
  env_reference: (g) =>
    g.pick([
      `token = process.env.TOKEN`,
      `password = os.environ["DB_PASSWORD"]`,
      `const key = getenv("API_KEY")`,
      `secret: env("APP_SECRET")`
    ]),
  code_identifier: (g) =>
    g.pick([
      `call getApiKey() before fetchToken()`,
      `const apiKeyHeaderName = "x-api-key"`,
      `ACCESS_TOKEN_TTL_SECONDS=3600`,
      `if (!session.refreshToken) return`,
      `the function validatePasswordStrength is slow`
    ]),
  git_sha: (g) => `fixed in commit ${g.hex(40)} on main`,
  short_sha: (g) => `see ${g.hex(7)} and ${g.hex(7)}`,
  sha256_checksum: (g) =>
    g.pick([`sha256 ${g.hex(64)}  dotclaw.tar.gz`, `checksum: ${g.hex(64)}`, `the file hash is ${g.hex(64)}`]),
  docker_digest: (g) => `pull nginx@sha256:${g.hex(64)}`,
  uuid: (g) => g.pick([`request ${g.uuid()} failed`, `{"id":"${g.uuid()}"}`, `session id ${g.uuid()}`]),
  dotclaw_trace_id: (g) => `see trace trace-${g.uuid()} for the details`,
  version: (g) =>
    g.pick([
      `upgraded to v${g.int(1, 9)}.${g.int(0, 30)}.${g.int(0, 99)}`,
      `node ${g.int(18, 24)}.${g.int(0, 20)}.${g.int(0, 9)} and npm 11.${g.int(0, 9)}.${g.int(0, 9)}`,
      `@effect/platform@0.${g.int(50, 99)}.${g.int(0, 9)}`
    ]),
  iso_timestamp: (g) =>
    `at 2026-${String(g.int(1, 12)).padStart(2, "0")}-${String(g.int(10, 28))}T${String(g.int(10, 23))}:${String(g.int(10, 59))}:${String(g.int(10, 59))}.${g.digits(3)}Z exactly`,
  dates: (g) =>
    g.pick([
      `on ${g.int(10, 28)}.${String(g.int(1, 12)).padStart(2, "0")}.2026`,
      `due 11/${g.int(10, 28)}/2026`,
      `from 2026-11-${g.int(10, 28)} to 2026-12-${g.int(10, 28)}`
    ]),
  time_and_duration: (g) =>
    g.pick([
      `meet at ${g.int(10, 23)}:${g.int(10, 59)} tomorrow`,
      `took ${g.int(100, 99999)} ms`,
      `1h ${g.int(10, 59)}m ${g.int(10, 59)}s`
    ]),
  price: (g) =>
    g.pick([
      `it costs $${g.int(1, 9)},${g.digits(3)}.${g.digits(2)}`,
      `€${g.int(10, 999)}.${g.digits(2)} per month`,
      `£${g.int(1, 99)} each`
    ]),
  ordinary_number: (g) =>
    g.pick([
      `I walked ${g.int(1000, 30000)} steps`,
      `population ${g.int(1, 9)},${g.digits(3)},${g.digits(3)}`,
      `the year ${g.int(1900, 2030)}`,
      `${g.int(1000000, 99999999)} bytes free`
    ]),
  order_number: (g) =>
    g.pick([
      `order #${g.digits(8)} shipped`,
      `order ${g.digits(14)} shipped`,
      `invoice INV-2026-${g.digits(5)}`,
      `ticket ${g.digits(7)}`
    ]),
  ip_address: (g) =>
    g.pick([
      `server 192.168.${g.int(0, 255)}.${g.int(1, 254)} is down`,
      `ssh 10.0.${g.int(0, 9)}.${g.int(1, 254)}:22`,
      `dns ${g.int(1, 9)}.${g.int(1, 9)}.${g.int(1, 9)}.${g.int(1, 9)}`
    ]),
  url_without_credentials: (g) =>
    g.pick([
      `see https://example.com/docs/setup?page=${g.int(1, 9)}#install`,
      `postgres://localhost:5432/app`,
      `https://github.com/dotsetlabs/dotclaw/issues/${g.int(1, 999)}`,
      `redis://cache.local:6379/0`
    ]),
  password_in_prose: (g) =>
    g.pick([
      `I forgot my password again, how do I reset it?`,
      `my password is too short apparently`,
      `the password is wrong`,
      `the wifi password is on the router`,
      `what is a good password manager?`,
      `the door code is changing next week`,
      `my PIN is somewhere in my notes`,
      `the password is: see the vault`,
      `Her password was reset by IT`
    ]),
  token_in_prose: (g) =>
    g.pick([
      `the token expired yesterday`,
      `how many tokens does it use?`,
      `max_tokens: ${g.int(256, 8192)}`,
      `the key: press ctrl-c twice`,
      `token_count: ${g.int(1, 9999)}`
    ]),
  file_path: (g) =>
    g.pick([
      `/home/ana/projects/app/src/index.ts`,
      `C:\\Users\\ana\\Documents\\report-${g.int(1, 99)}.docx`,
      `~/.config/dotclaw/traces/trace-2026-11-${g.int(10, 28)}.jsonl`
    ]),
  hex_colour: (g) => `use #${g.hex(6)} for the header and #${g.hex(3)} for text`,
  package_spec_and_mentions: (g) =>
    g.pick([
      `npm i left-pad@1.${g.int(0, 9)}.0`,
      `ping @devops and @ana_silva`,
      `pip install requests==2.${g.int(20, 32)}.0`
    ]),
  invalid_card: (g) => {
    const full = luhnComplete(`4${g.digits(14)}`)
    const bad = full.slice(0, 15) + String((Number(full[15]) + 1) % 10)
    return `reference ${group4(bad)}`
  },
  invalid_iban: (g) => {
    const bban = g.digits(18)
    const check = ibanCheck("DE", bban)
    const wrong = String((Number(check) + 1) % 97).padStart(2, "0")
    return `code DE${wrong === check ? "00" : wrong}${bban}`
  },
  invalid_ssn: (g) =>
    g.pick([
      `000-${g.digits(2)}-${g.digits(4)}`,
      `666-${g.int(10, 99)}-${g.int(1000, 9999)}`,
      `9${g.digits(2)}-${g.int(10, 99)}-${g.int(1000, 9999)}`
    ]),
  isbn: (g) => `ISBN 978-${g.int(0, 9)}-${g.digits(2)}-${g.digits(6)}-${g.int(0, 9)}`,
  tool_config: (g) =>
    `{"model":"claude-haiku-4-5","max_tokens":${g.int(256, 4096)},"temperature":0.${g.int(0, 9)},"key":"response-quality"}`,
  k8s_secret_ref: (g) =>
    `env:\n  - name: DB_PASSWORD\n    valueFrom:\n      secretKeyRef: {name: db-secret-${g.int(1, 9)}, key: password}`,
  coordinates: (g) => `we are at 38.${g.digits(4)}, -9.${g.digits(4)}`,
  hash_beside_secret_words: (g) =>
    g.pick([
      `commit ${g.hex(40)} fixes the token refresh`,
      `the key rotation job logged digest ${g.hex(64)}`,
      `password hashing: bcrypt cost ${g.int(10, 14)}`,
      `etag ${g.hex(32)} for the login page`
    ]),
  data_uri_and_doc_links: (g) =>
    g.pick([
      `data:image/png;base64,iVBORw0KGgo${g.b62(60)}`,
      `https://docs.google.com/document/d/${g.b64url(44)}/edit`,
      `https://youtu.be/${g.b64url(11)}?t=${g.int(1, 999)}`
    ]),
  phone_like_numbers: (g) =>
    g.pick([
      `call 911 if it gets worse`,
      `room 101, ext. ${g.digits(4)}`,
      `between ${g.int(1990, 2010)} and ${g.int(2011, 2026)}`,
      `scores 12 14 16 18 20 22`,
      `${g.int(1, 9)}.${g.digits(3)}.${g.digits(3)} views`
    ]),
  short_ids: (g) =>
    g.pick([
      `video dQw4w9WgXcQ`,
      `tracking 1Z${g.chars(UPPER + DIGITS, 16)}`,
      `room ${g.chars(UPPER, 3)}-${g.digits(3)}`,
      `flight TP${g.digits(4)}`
    ])
}

/** Hand-written look-alikes of one kind: each must come out unchanged. */
export const keep = (kind: string, texts: ReadonlyArray<string>): Array<Sample> => texts.map((text) => ({ kind, text }))
/** Hand-written texts of one kind, each with the value planted in it. */
export const find = (kind: string, pairs: ReadonlyArray<readonly [string, string]>): Array<Sample> =>
  pairs.map(([text, secret]) => ({ kind, text, secret }))

/** The whole corpus: `perKind` samples of every positive and negative kind, the same for a given seed. */
export const privacyCorpus = (perKind = 10, seed = 20261124): ReadonlyArray<Sample> => {
  const g = new Gen(rng(seed))
  const out: Array<Sample> = []
  for (const [kind, make] of Object.entries(POSITIVES)) for (let i = 0; i < perKind; i++) out.push({ kind, ...make(g) })
  for (const [kind, make] of Object.entries(NEGATIVES))
    for (let i = 0; i < perKind; i++) out.push({ kind, text: make(g) })
  return out
}

export const POSITIVE_KINDS = Object.keys(POSITIVES)
export const NEGATIVE_KINDS = Object.keys(NEGATIVES)

/** Whether a planted value survived: any 8-character fragment of it (the whole value when shorter). */
export const leaked = (output: string, secret: string): boolean => {
  if (secret.length <= 8) return output.includes(secret)
  for (let i = 0; i + 8 <= secret.length; i++) if (output.includes(secret.slice(i, i + 8))) return true
  return false
}

export interface KindScore {
  readonly kind: string
  readonly positive: boolean
  readonly n: number
  /** For a positive kind, the share found; for a negative kind, the share left unchanged. */
  readonly rate: number
  readonly misses: ReadonlyArray<string>
}

/** Strict recall and false-positive rate of `redact` over the corpus, overall and per kind. */
export const scoreCorpus = (samples: ReadonlyArray<Sample>, redact: (text: string) => string) => {
  const byKind = new Map<string, { positive: boolean; n: number; ok: number; misses: Array<string> }>()
  for (const s of samples) {
    const out = redact(s.text)
    const ok = s.secret !== undefined ? !leaked(out, s.secret) : out === s.text
    const k = byKind.get(s.kind) ?? { positive: s.secret !== undefined, n: 0, ok: 0, misses: [] }
    k.n++
    if (ok) k.ok++
    else k.misses.push(`${s.text.slice(0, 160)}  =>  ${out.slice(0, 160)}`)
    byKind.set(s.kind, k)
  }
  const kinds: Array<KindScore> = [...byKind].map(([kind, k]) => ({
    kind,
    positive: k.positive,
    n: k.n,
    rate: k.ok / k.n,
    misses: k.misses
  }))
  const sum = (positive: boolean, f: (k: KindScore) => number) =>
    kinds.filter((k) => k.positive === positive).reduce((a, k) => a + f(k), 0)
  const recall = sum(true, (k) => k.rate * k.n) / sum(true, (k) => k.n)
  const falsePositiveRate = 1 - sum(false, (k) => k.rate * k.n) / sum(false, (k) => k.n)
  return { recall, falsePositiveRate, kinds }
}
