/**
 * HELD OUT, fourth set (issue 25 item 5): written 2026-12-06 (session 14) without reading the redaction rules, and
 * committed on its own before any rule is changed. The third set's misses are named in docs/privacy.md, so only
 * this one stands for unseen text now. Wider than the families on purpose: the held-back corpus that found
 * them had 54 kinds, so the common secrets and the look-alikes a chat agent's traces are full of are here too.
 * Spent: measured once with rule set 4 (0.800 / 0.054), then its misses were tuned on in rule set 5; the fifth set
 * stands for unseen text now. test/privacy.test.ts keeps it as a regression test.
 */
import { find, keep, type Sample } from "./privacyCorpus.js"

export const HELD_OUT_4: ReadonlyArray<Sample> = [
  // Not secrets: the families.
  ...keep("ssh_public_key", [
    "authorized_keys now has: ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQDk7Pq2Rv9Ws4Lm1Tb6Yc8Nh3Jx5Kd0Ga2Fe7Ui9Oz4Ms1Qp6Lr3Wt8Vb5Cn0 mira@desk",
    "known_hosts line: github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
    "the key's fingerprint: 256 SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s (ED25519)"
  ]),
  ...keep("package_integrity", [
    'lockfile entry — resolved "https://registry.npmjs.org/ms/-/ms-2.1.3.tgz", integrity sha512-6FlzubTLZG3J2a/NVCAleEhjzq5oxgHyaCU9yYXvcLsvoVaHJq/s5xXI6/XXP6tz7R9xAOtHnSO/tXtF3WRTlA==',
    '<script src="/vendor/chart.min.js" integrity="sha384-Y2Vx5mQb8qNp3tR7wK1zL9hD4fE6aU0cJ2sG5vB8nM3xT7kP1rW9yH4dQ6eF0aZ" crossorigin="anonymous"></script>',
    'Cargo.lock: checksum = "4fa78e18c64fce05e902adecd7a5eed15a5e0a3439f7b0e169f0252214865e3"'
  ]),
  ...keep("bearer_in_prose", [
    "Why does the proxy strip the Bearer prefix before forwarding?",
    "Our API takes a Bearer token in the Authorization header; see the auth page for how to get one.",
    "I keep mixing up Bearer and Digest when I read these RFCs."
  ]),
  ...keep("password_as_identifier", [
    "const hashed = await bcrypt.hash(password, 12)",
    "def reset_password(user_id: int, new_password: str) -> None:",
    "ALTER TABLE users ADD COLUMN password_changed_at timestamptz;",
    'password = getpass.getpass("Password: ")'
  ]),
  ...keep("password_file_reference", [
    "POSTGRES_PASSWORD_FILE=/run/secrets/postgres_password",
    "smtp_password: !secret smtp_password",
    "ansible-vault view --vault-password-file ~/.vault_pass group_vars/all.yml"
  ]),
  ...keep("placeholder_url_credentials", [
    "DATABASE_URL=postgresql://USER:PASSWORD@HOST:5432/DBNAME",
    "Connect with mysql://root:<your-password>@127.0.0.1:3306/shop",
    "the docs use amqp://guest:guest@localhost:5672// as the default broker"
  ]),
  ...keep("ssh_remote_in_command", [
    "ssh -p 2222 admin@192.0.2.44 'sudo systemctl restart dotclaw'",
    "git remote add origin git@gitlab.com:mira/dotfiles.git",
    "rsync -e 'ssh -i ~/.ssh/backup' -a /srv/ backup@vault.internal:/srv-copy/"
  ]),
  ...keep("ui_password_path", [
    "Open Settings → Privacy & Security → Passwords and turn off autofill.",
    "In the router UI: Wireless > Security > WPA Pre-Shared Key (change it there)",
    "Firefox: about:preferences#privacy, then Logins and Passwords > Saved Logins"
  ]),
  // Not secrets: what a chat agent's traces are full of.
  ...keep("ids_and_hashes", [
    "trace-3f9c2b71-8d4e-4a6f-b0c2-7e1d5a9f3b24 took 4.2 s",
    "fixed in commit 9b1e4c7a2f3d5e6b8c0a1f2e3d4c5b6a7e8f9a0b, see the PR",
    "image: ghcr.io/dotsetlabs/dotclaw@sha256:4b7c9e2f1a3d5b6c8e0f2a4b6c8d0e2f4a6b8c0d2e4f6a8b0c2d4e6f8a0b2c4d",
    "the request id was req_01HZX4K8P2M7QW3N5R9T6V1Y8B"
  ]),
  ...keep("numbers_in_prose", [
    "Order #40021785 shipped on 2026-11-30, tracking 1Z 999 AA1 01 2345 6784.",
    "ISBN 978-0-262-04630-5, page 212",
    "The meeting moved to 14:30; dial-in code 551 208 for the room, no PIN.",
    "version 3.22.1 fixed it; 3.21.9 still crashes"
  ]),
  ...keep("auth_words_in_prose", [
    "The token expired, so I asked it to log in again.",
    "Can you explain how API keys differ from OAuth tokens?",
    "I forgot my password again, how do I reset it on the Fritzbox?",
    "secret santa this year: budget 25 euros"
  ]),
  // Secrets: the families.
  ...find("cli_password_flag", [
    ["mysqldump -u backup --password='Quartz7731' shop > shop.sql", "Quartz7731"],
    ['pg_dump "postgresql://app@db/app?password=Velvet4482" -Fc > app.dump', "Velvet4482"],
    ["curl -u admin:Cobalt9917 http://192.0.2.10:8080/api/status", "Cobalt9917"],
    ["7z a -pPebble2203 -mhe=on archive.7z docs/", "Pebble2203"],
    ["net use Z: \\\\nas\\share /user:mira Juniper6610", "Juniper6610"]
  ]),
  ...find("env_password_before_command", [
    ["PGPASSWORD=Ember5148 pg_restore -h db -U app app.dump", "Ember5148"],
    ["RESTIC_PASSWORD=Glacier3306 restic -r /mnt/backup snapshots", "Glacier3306"],
    ["env ADMIN_PASS=Thistle8024 ./bootstrap.sh", "Thistle8024"]
  ]),
  ...find("json_short_password_key", [
    ['{"user": "svc-report", "pwd": "Saffron4417"}', "Saffron4417"],
    ['{"mqtt": {"broker": "192.0.2.7", "pass": "Meadow9950"}}', "Meadow9950"],
    ["wifi:\n  ssid: Casa\n  psk: Larkspur2286", "Larkspur2286"],
    ['{"adminPassword":"Cinder7715","region":"eu"}', "Cinder7715"]
  ]),
  ...find("password_in_prose_other_verbs", [
    ["ok the new wifi password will be Bramble5530, tell the kids", "Bramble5530"],
    ["changed the NAS password to Kestrel1187 this morning", "Kestrel1187"],
    ["my bank PIN is 4921 and the online password Orchard7362", "Orchard7362"],
    ["remember: password for the shared calendar = Willow2048", "Willow2048"],
    ["das Passwort für den Router ist jetzt Fichte3391", "Fichte3391"]
  ]),
  ...find("bot_token_in_url", [
    [
      "curl 'https://api.telegram.org/bot7012345678:AAGx8Kp2Lm5Nq9Rs3Tv7Wy1Za4Bc6De0Fg2/getUpdates'",
      "7012345678:AAGx8Kp2Lm5Nq9Rs3Tv7Wy1Za4Bc6De0Fg2"
    ],
    [
      "set the webhook to https://hooks.slack.com/services/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",
      "qW8eR7tY6uI5oP4aS3dF2gH1"
    ],
    [
      "GET https://api.telegram.org/file/bot6123456789:AAEq1Wr2Et3Ry4Tu5Yi6Uo7Ip8Oa9Ps0Df1G/photos/file_3.jpg",
      "6123456789:AAEq1Wr2Et3Ry4Tu5Yi6Uo7Ip8Oa9Ps0Df1G"
    ]
  ]),
  ...find("provider_token_positional", [
    [
      'anthropic.Anthropic("sk-ant-api03-Zx9Cv8Bn7Mq6Wf5Eg4Rh3Tj2Yk1Ul0Io9Pa8Sd7Fg6Hj5Kl4Zx3Cv2Bn1Mq0Wf9Eg8Rh7-Tj6YkAA")',
      "sk-ant-api03-Zx9Cv8Bn7Mq6Wf5Eg4Rh3Tj2Yk1Ul0Io9Pa8Sd7Fg6Hj5Kl4Zx3Cv2Bn1Mq0Wf9Eg8Rh7-Tj6YkAA"
    ],
    [
      "bot.run('MTE4NzI2NDU5MDAxMjM0NTY3OA.GhX2pQ.r7Yt5Uw3Zq9Lk1Mn8Vb4Cx6Jd2Fs0Ha3Ge5Ti7')",
      "MTE4NzI2NDU5MDAxMjM0NTY3OA.GhX2pQ.r7Yt5Uw3Zq9Lk1Mn8Vb4Cx6Jd2Fs0Ha3Ge5Ti7"
    ],
    [
      "stripe.api_key = 'sk_live_51Hx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0Lz9Xc8Vb7Nm6'",
      "sk_live_51Hx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0Lz9Xc8Vb7Nm6"
    ],
    ["new Octokit({ auth: 'ghp_R4t5Y6u7I8o9P0a1S2d3F4g5H6j7K8l9Z0x1' })", "ghp_R4t5Y6u7I8o9P0a1S2d3F4g5H6j7K8l9Z0x1"]
  ]),
  ...find("phone_in_contact_list", [
    ["Neighbours: Ruth (no. 12) 020 7946 0321, Tom 07700 900123", "020 7946 0321"],
    ["dentist 555-0148, call before 5", "555-0148"],
    ["- grandma: (212) 555-0199\n- uncle Ben: (212) 555-0177", "(212) 555-0199"],
    ["Hausarzt Dr. Weber 030 12345678", "030 12345678"]
  ]),
  // Secrets: the common kinds.
  ...find("cloud_keys", [
    ["aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ9Lm3Tp8E", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ9Lm3Tp8E"],
    ["export AWS_ACCESS_KEY_ID=AKIAQ7V3XK2M9PLR4TZ8", "AKIAQ7V3XK2M9PLR4TZ8"],
    [
      'the GCP key json has "private_key_id": "8f2c4e6a1b3d5f7a9c0e2b4d6f8a1c3e5b7d9f0a"',
      "8f2c4e6a1b3d5f7a9c0e2b4d6f8a1c3e5b7d9f0a"
    ]
  ]),
  ...find("connection_strings", [
    ["REDIS_URL=rediss://default:Tm7Qx2Wv9Lp4Rk8Zs3Nc@eu1-sunny-cat.upstash.io:6379", "Tm7Qx2Wv9Lp4Rk8Zs3Nc"],
    ["Server=tcp:shop.database.windows.net,1433;User ID=shopadmin;Password=Aspen#6642;Encrypt=True;", "Aspen#6642"],
    ["mongodb://reporter:Heron3390@10.0.4.12:27017/analytics", "Heron3390"]
  ]),
  ...find("tokens_in_text", [
    [
      "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtaXJhIiwiaWF0IjoxNzY0OTk5OTk5fQ.4pQ9x2Lm7Rt5Wv8Zc1Nb3Kd6Fh0Jg2Sy4Ae7Ui9Oo1",
      "4pQ9x2Lm7Rt5Wv8Zc1Nb3Kd6Fh0Jg2Sy4Ae7Ui9Oo1"
    ],
    [
      "here's my token for the home assistant API: eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJhYmMxMjMifQ.Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0Lz9Xc8Vb7Nm6Qw5",
      "Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0Lz9Xc8Vb7Nm6Qw5"
    ],
    ["X-Api-Key: 3f8a9c2e71d04b5f96a8e2c1d7b3f054", "3f8a9c2e71d04b5f96a8e2c1d7b3f054"]
  ]),
  ...find("personal_data", [
    ["write to me at mira.koenig@posteo.de when it's done", "mira.koenig@posteo.de"],
    ["Überweisung an DE89 3704 0044 0532 0130 00, Betreff Miete", "DE89 3704 0044 0532 0130 00"],
    ["card 4539 1488 0343 6467 exp 04/28", "4539 1488 0343 6467"]
  ])
]
