/**
 * HELD OUT, third set (issue 25 item 5): new forms of the same families, written 2026-12-06 (session 12) without
 * reading the redaction rules, and committed on its own before any rule is changed. The second set's misses were
 * tuned against in rule set 4, so only this one stood for unseen text then. Spent: measured once (0.913 / 0.042),
 * then tuned on in rule set 5. test/privacy.test.ts keeps it as a regression test.
 */
import { find, keep, type Sample } from "./privacyCorpus.js"

export const HELD_OUT_3: ReadonlyArray<Sample> = [
  // Not secrets.
  ...keep("ssh_public_key", [
    "Add this to the deploy keys: ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBKq3Lr8Tn1Wd6Yv0Pc4Xs7Hb2Mf5Ja9Ge3Ru1Oz8Ni4Kl6Ty0Vs2Bd5Hq8Mw3Ep7Ax1Zc9Fj4Ug6Ik2 deploy@ci",
    "ssh-keygen printed: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP4x7Rq2Wm9Tz1Ls5Vb8Nc3Hd6Jf0Gk4Ya7Ue2Io5Ep1 rui@laptop",
    "The server's host key fingerprint is SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8"
  ]),
  ...keep("package_integrity", [
    '"integrity": "sha512-v2kDEe57lecTulaDIuNTPy3Ry4gLGJ6Z1O3vE1krgXZNrsQ+LFTGHVxVjcXPs17LhbZVGedAJv8XZ1tvj5FvSg=="',
    "pip hash: --hash=sha256:2cf9e13b4d06bb5c85d1a1f1ad92cc7b8a3a53ca71a2e7ac8d0c92d6af3a5b19",
    "go.sum: golang.org/x/text v0.14.0 h1:ScX5w1eTa3QqT8oi6+ziP7dTV1S2+ALU0bI+0zXKWiQ="
  ]),
  ...keep("bearer_in_prose", [
    "The docs say to send a Bearer header, but mine returns 401 anyway.",
    "Bearer vs Basic auth — which one should the webhook use?",
    "Switched the client to Bearer auth yesterday; tokens rotate hourly."
  ]),
  ...keep("password_as_identifier", [
    "if (!passwordMatches(input, user.passwordHash)) return res.status(401)",
    "PASSWORD_MIN_LENGTH = 12",
    "rename the column password to password_digest in the migration"
  ]),
  ...keep("password_file_reference", [
    "--password-file=/etc/restic/repo.pass",
    'mysql_root_password_file: "{{ vault_dir }}/mysql-root"',
    "read the password from ~/.pgpass instead of the command line"
  ]),
  ...keep("placeholder_url_credentials", [
    "Format: amqp://<user>:<password>@<host>:5672/",
    "e.g. redis://:yourpassword@localhost:6379/0",
    "mongodb+srv://username:password@cluster0.example.mongodb.net/test"
  ]),
  ...keep("ssh_remote_in_command", [
    "rsync -avz ./site/ deploy@203.0.113.20:/var/www/site/",
    "scp backup.tar.gz root@nas.lan:/mnt/backups/",
    "git clone ssh://git@bitbucket.org/acme/infra.git"
  ]),
  ...keep("ui_password_path", [
    "Chrome: ⋮ → Passwords and autofill → Google Password Manager",
    "Go to Account > Security > Change password and follow the steps.",
    "iOS: Settings › Passwords › Password Options"
  ]),
  // Secrets.
  ...find("cli_password_flag", [
    ['psql "host=db user=app password=Marble6650 dbname=app"', "Marble6650"],
    ["mongo --username root --password Falcon2291 admin", "Falcon2291"],
    ["sshpass -p 'Lagoon4173' ssh pi@raspberrypi.local", "Lagoon4173"],
    ["openssl pkcs12 -export -in cert.pem -inkey key.pem -out cert.p12 -passout pass:Harbor8802", "Harbor8802"]
  ]),
  ...find("env_password_before_command", [
    ["MYSQL_PWD=Tundra5519 mysql -u root -e 'show databases'", "Tundra5519"],
    ["export REDIS_PASSWORD=Orchid3347 && redis-cli -a $REDIS_PASSWORD ping", "Orchid3347"],
    ["DB_PASS='Sable9084' npm run migrate", "Sable9084"]
  ]),
  ...find("json_short_password_key", [
    ['{"login": "admin", "pw": "Canyon1276"}', "Canyon1276"],
    ['{"rootPass": "Ivory5530", "port": 22}', "Ivory5530"],
    ['{"smtp": {"host": "mail.example.com", "passwd": "Comet7741"}}', "Comet7741"]
  ]),
  ...find("password_in_prose_other_verbs", [
    ["for the record, the wifi password became Lantern6293 last week", "Lantern6293"],
    ["I set the admin password as Mosaic4418 so we don't forget", "Mosaic4418"],
    ["the alarm code and password: Prairie2085", "Prairie2085"],
    ["use Walnut3362 as the password when it asks", "Walnut3362"]
  ]),
  ...find("bot_token_in_url", [
    [
      "POST https://api.telegram.org/bot5823341190:AAF3kLm9Qw2Er7Ty1Ui6Op0As5Df4Gh8Jk3Z/sendMessage",
      "5823341190:AAF3kLm9Qw2Er7Ty1Ui6Op0As5Df4Gh8Jk3Z"
    ],
    [
      "the webhook URL https://discord.com/api/webhooks/1187264590012345678/Xq9Lm3Vb7Nc2Wd5Rf8Tg1Yh4Uj6Ik0Ol-Zp3Ax7Sc2Dv5Fb8Gn1Hm4",
      "Xq9Lm3Vb7Nc2Wd5Rf8Tg1Yh4Uj6Ik0Ol-Zp3Ax7Sc2Dv5Fb8Gn1Hm4"
    ]
  ]),
  ...find("provider_token_positional", [
    [
      'client = OpenAI("sk-proj-Ab3Cd5Ef7Gh9Ij1Kl3Mn5Op7Qr9St1Uv3Wx5Yz7Ab9Cd1Ef3Gh5")',
      "sk-proj-Ab3Cd5Ef7Gh9Ij1Kl3Mn5Op7Qr9St1Uv3Wx5Yz7Ab9Cd1Ef3Gh5"
    ],
    [
      'gh auth login --with-token <<< "github_pat_11ABCDEFG0Qw8Er7Ty6Ui5_Op4As3Df2Gh1Jk0Lz9Xc8Vb7Nm6Qw5Er4Ty3Ui2Op1As0Df9Gh8Jk7Lz6Xc5Vb4"',
      "github_pat_11ABCDEFG0Qw8Er7Ty6Ui5_Op4As3Df2Gh1Jk0Lz9Xc8Vb7Nm6Qw5Er4Ty3Ui2Op1As0Df9Gh8Jk7Lz6Xc5Vb4"
    ],
    [
      "Slack(token='xoxb-2048163097-4096327518-Qw8Er7Ty6Ui5Op4As3Df2Gh1')",
      "xoxb-2048163097-4096327518-Qw8Er7Ty6Ui5Op4As3Df2Gh1"
    ]
  ]),
  ...find("phone_in_contact_list", [
    ["plumber - Joaquim 912 345 678", "912 345 678"],
    ["Emergency contacts:\nmum 07700 900461\ndad 07700 900982", "07700 900461"],
    ["vet (Dr. Haas): +49 151 23456789", "+49 151 23456789"],
    ["school office 01632 960 555", "01632 960 555"]
  ])
]
