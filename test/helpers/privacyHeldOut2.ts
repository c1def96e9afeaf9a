/**
 * HELD OUT, second set (issue 25 item 5): forms of the fourteen families the rules got wrong on text written
 * elsewhere, written 2026-12-06 and committed before any rule was changed for them, never tuned on. The first
 * held-out set (privacyHeldOut.ts) had been measured, and what it missed was named in a test comment, so it can
 * no longer stand for unseen text; this one did until rule set 4 was tuned on its misses (measured first: 0.870 /
 * 0.059). test/privacy.test.ts keeps it as a regression test.
 */
import { find, keep, type Sample } from "./privacyCorpus.js"

export const HELD_OUT_2: ReadonlyArray<Sample> = [
  // Not secrets.
  ...keep("ssh_public_key", [
    "authorized_keys line: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq8Wm3Rz6Tb1Xc4Vn7Lp0Ks9Jd2Fg5Ah8Ys1Qe4Ot7 ci-runner",
    "GitHub shows the key as ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAACAQCx7Lm1Qp4Rt8Zw2Vb5Nc9Hs3Jd6Gf0Ae4Tu7Io1Pk8Lx5Mn2Bv9Cq6Wz3Ey0Rr4Td7Ug1Ih8Js5Ko2Lp9Mq6Na3Ob0Pc7Qd4Re1Sf8Tg5Uh2Vi9Wj6Xk3Yl0Zm7An4Bo1Cp8Dq5Er2Fs9Gt6Hu3Iv0Jw7Kx4Ly1Mz8 pedro@work"
  ]),
  ...keep("package_integrity", [
    'resolved "https://registry.yarnpkg.com/lodash/-/lodash-4.17.21.tgz#679591c564c3bffaae8454cf0b3df370c3d6911c"',
    '<script src="app.js" integrity="sha384-oqVuAfXRKap7fdgcCY5uykM6+R9GqQ8K/uxy9rx7HNQlGYl1kPzQho1wx4JwY8wC" crossorigin></script>'
  ]),
  ...keep("bearer_in_prose", [
    "Our gateway only supports Bearer tokens, not API keys in the query string.",
    "Does the Bearer scheme need a capital B?"
  ]),
  ...keep("password_as_identifier", [
    "def reset(user, new_password): user.set_password(new_password)",
    'let password = prompt("Password?")',
    "password_hash = hashlib.sha256(password.encode()).hexdigest()"
  ]),
  ...keep("password_file_reference", [
    "POSTGRES_PASSWORD_FILE: /run/secrets/postgres-pass",
    'smtp_password_path = "/etc/mail/pass.txt"'
  ]),
  ...keep("placeholder_url_credentials", [
    "DATABASE_URL=postgresql://USER:PASSWORD@HOST:5432/DB",
    "ftp://anonymous:anonymous@ftp.example.org/pub/"
  ]),
  ...keep("ssh_remote_in_command", [
    "ssh -J bastion.example.com admin@10.0.3.7",
    "git remote add origin git@gitlab.com:team/app.git"
  ]),
  ...keep("ui_password_path", [
    "Tap Settings → Passwords → Security Recommendations.",
    "In the router UI: Wireless > Security > WPA Password, then Save."
  ]),
  // Secrets.
  ...find("cli_password_flag", [
    ["mysqldump -uadmin -pGr33nTea77 --all-databases > dump.sql", "Gr33nTea77"],
    ["curl -u ana:Violet2048 https://nas.local/api", "Violet2048"],
    ["htpasswd -b .htpasswd admin Cobalt7716", "Cobalt7716"],
    ["docker login -u bot -p Quartz5582 registry.example.com", "Quartz5582"]
  ]),
  ...find("env_password_before_command", [
    ["SMTP_PASSWORD=Ember4471 python send.py", "Ember4471"],
    ["env ADMIN_PASS=Willow3390 ./setup.sh", "Willow3390"],
    ['PGPASSWORD="Nova8824" pg_dump app > app.sql', "Nova8824"]
  ]),
  ...find("json_short_password_key", [
    ['{"user": "ana", "pwd": "Saffron6634"}', "Saffron6634"],
    ['{"adminPassword": "Glacier9912"}', "Glacier9912"],
    ["{ 'wifi_pass': 'Meadow2257' }", "Meadow2257"]
  ]),
  ...find("password_in_prose_other_verbs", [
    ["the new password will be Cedar8841!", "Cedar8841!"],
    ["I changed the router password to Pebble3306", "Pebble3306"],
    ["password for the NAS: Thistle5521", "Thistle5521"],
    ["remember the password, it's Juniper7718", "Juniper7718"]
  ]),
  ...find("bot_token_in_url", [
    [
      "curl https://api.telegram.org/bot6120034455:AAHx9Wq8Er7Ty6Ui5Op4As3Df2Gh1Jk0Lz9X/getMe",
      "6120034455:AAHx9Wq8Er7Ty6Ui5Op4As3Df2Gh1Jk0Lz9X"
    ],
    [
      "webhook set to https://api.telegram.org/bot7001122334:AAGr5Tz4Ux3Vw2Yx1Za0Bc9De8Fg7Hi6Jk5L/setWebhook?url=https://x.example",
      "7001122334:AAGr5Tz4Ux3Vw2Yx1Za0Bc9De8Fg7Hi6Jk5L"
    ]
  ]),
  ...find("provider_token_positional", [
    [
      'anthropic.Anthropic("sk-ant-api03-Qw1Er2Ty3Ui4Op5As6Df7Gh8Jk9Lz0Xc1Vb2Nm3Qw4Er5Ty6Ui7Op8As9Df0Gh1Jk2Lz3Xc4Vb5Nm6Qw7Er8Ty9-AbCdEf")',
      "sk-ant-api03-Qw1Er2Ty3Ui4Op5As6Df7Gh8Jk9Lz0Xc1Vb2Nm3Qw4Er5Ty6Ui7Op8As9Df0Gh1Jk2Lz3Xc4Vb5Nm6Qw7Er8Ty9-AbCdEf"
    ],
    ['new Octokit({ auth: "ghp_Zx9Cv8Bn7Mq6We5Rt4Yu3Io2Pa1Sd0Fg9Hj8K" })', "ghp_Zx9Cv8Bn7Mq6We5Rt4Yu3Io2Pa1Sd0Fg9Hj8K"],
    [
      "stripe.api_key = 'sk_live_51Hx9Wq8Er7Ty6Ui5Op4As3Df2Gh1Jk0Lz9Xc8Vb7Nm6Qw5'",
      "sk_live_51Hx9Wq8Er7Ty6Ui5Op4As3Df2Gh1Jk0Lz9Xc8Vb7Nm6Qw5"
    ]
  ]),
  ...find("phone_in_contact_list", [
    ["Dentist – 020 7946 0321", "020 7946 0321"],
    ["* Tomás 634 221 908\n* Inês 915 773 002", "634 221 908"],
    ["Hausarzt: 030 12345678", "030 12345678"],
    ["landlord (Mr. Rossi) 347 555 0192", "347 555 0192"]
  ])
]
