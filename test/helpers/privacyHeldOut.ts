/**
 * HELD OUT: never tuned on. Examples of the families the rules got wrong on text written outside this project
 * (issue 25: things that are not secrets, and secrets the rules missed), written here by hand in forms the
 * tuning part (privacyFamilies.ts) does not use. Committed on its own before any rule was changed for these
 * families; the rules were measured on it (0.971 / 0.025) and not adjusted to it until rule set 5, which spent it
 * (its misses were tuned on). test/privacy.test.ts keeps it as a regression test.
 */
import { find, keep, type Sample } from "./privacyCorpus.js"

export const HELD_OUT: ReadonlyArray<Sample> = [
  // Not secrets.
  ...keep("ssh_public_key", [
    "authorized_keys now has: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq7cWk2nX0pVb4Ld8sRt1mYe9ZuQj3HfKo6aTw5vBxN marta@thinkpad",
    "paste this public key into the server form -> ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBFq8Tz3kLw9R2mXc7YpVdH0sNe4uJi6oAb1gKrW5fQyZ deploy",
    "my key fingerprint and key: ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7xK2pLm9Qw4Rt8Zy1VbNc3Hs6Jd0Ge5Fa2Tu7Io4Pk9Lx1Mn8Bv3Cq6Wz0Ey5Rr2Td7Ug4Ih1Js8Ko5Lp2Mq9Na6Ob3Pc0Qd7Re4Sf1Tg8Uh5Vi2Wj9Xk6Yl3Zm0An7Bo4Cp1Dq8Er5Fs2Gt9Hu6Iv3Jw0Kx7Ly4Mz1Na8Ob5Pc2Qd9Re6Sf3Tg0Uh7Vi4Wj1Xk8Yl5Zm2An9Bo6Cp3Dq0Er7Fs4Gt1Hu8Iv5Jw2Kx9Ly6Mz3Na0Ob7Pc4Qd1Re8Sf5Tg2Uh9Vi6Wj3Xk0Yl7Zm4An1Bo8Cp5Dq2Er9Fs6Gt3Hu0Iv7Jw4Kx1Ly8Mz5 ana@raspberrypi",
    "GitHub says the public key (ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHd2Kp9mQx4Lr7Vt1Nb6Zc3Ys8Fw0Ge5Ja2Ho9Ik4Tu1 joao) is already in use",
    "known_hosts line: github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
  ]),
  ...keep("package_integrity", [
    'lockfile entry: "resolved": "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz", "integrity": "sha512-XI5MPzVNApjAyhQzphX8BkmKsKUxD4LdyK24iZeQ9IGYWbeO8nRb8h7anDoK8/Ij+aZGcR1TeTi/6CqwjRqsBw9Q=="',
    '<script src="/vendor/chart.min.js" integrity="sha384-Kt3Vx8Nq0Lm2Rb7Yp4Ws1Zc6Hd9Fj5Ge3Ua0Io8Tr2Ek7Qy4Xw1Pn6Mb9Vc5Lz0A" crossorigin="anonymous"></script>',
    "pip wants hashes: requests==2.32.3 --hash=sha256:70761cfe03c773ceb22aa2f671b4757976145175cdfca038c02654d061d6dcc6",
    "yarn.lock: integrity sha1-Ol4qKg6aQwPp2pRzX3rQk7s6xYk=",
    "checksum from the release page (SHA-256): e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
  ]),
  ...keep("bearer_in_prose", [
    "Does this endpoint take a Bearer token or an API key in the query string?",
    "Their docs say: authenticate with Bearer authentication using the token from step two.",
    "I keep getting 401; maybe the Bearer prefix is missing from my Authorization header",
    "Bearer tokens expire after an hour, so the script refreshes them",
    "the header should read Authorization: Bearer followed by the token, nothing else"
  ]),
  ...keep("password_as_identifier", [
    "in Django you call user.set_password(raw_password) and then user.save()",
    "why does `if (form.password !== form.confirmPassword)` never fire?",
    "interface LoginForm { email: string; password: string; remember: boolean }",
    "the column password_hash is varchar(60) and password_reset_at is nullable",
    "def login(username, password):\n    user = db.find(username)\n    return verify(password, user.password_hash)"
  ]),
  ...keep("password_file_reference", [
    "docker-compose: POSTGRES_PASSWORD_FILE: /run/secrets/postgres_password",
    "in configuration.yaml I have password: !secret mqtt_password",
    "the restic repo uses --password-file ~/.config/restic/pass",
    'rclone config has "pass_file": "/etc/rclone/pass.txt"',
    "spring.datasource.password=${DB_PASSWORD}"
  ]),
  ...keep("placeholder_url_credentials", [
    "the README shows DATABASE_URL=postgresql://username:password@localhost:5432/mydb",
    "connect with mongodb+srv://<username>:<password>@cluster0.mongodb.net/test",
    "RabbitMQ's default is amqp://guest:guest@localhost:5672/",
    "format: redis://:your_password@host:6379/0",
    "example: https://USER:TOKEN@git.example.com/team/repo.git"
  ]),
  ...keep("ssh_remote_in_command", [
    "run `ssh pi@raspberrypi.local` and then `sudo reboot`",
    "rsync -avz ./site/ deploy@web1.example.org:/var/www/site/",
    "git push git@codeberg.org:marta/notes.git main fails with permission denied",
    "try: scp backup.tar.gz admin@nas.home.arpa:/volume1/backups",
    "sftp -P 2222 uploader@files.example.net"
  ]),
  ...keep("ui_password_path", [
    "On the iPhone: Settings > Passwords > Wi-Fi, then tap the network",
    "Chrome: ⋮ → Settings → Autofill → Password Manager",
    "go to Account › Security › Password and sign out everywhere",
    "In the router admin, Wireless → Security → WPA Password: leave it as it is",
    "System Settings / Users & Groups / Change Password…"
  ]),
  // Secrets.
  ...find("cli_password_flag", [
    ["mysqldump -u backup -pQz7!mLp2w shop > shop.sql", "Qz7!mLp2w"],
    ["psql 'host=db user=app' --password=Vt9kR2mXq4", "Vt9kR2mXq4"],
    ["redis-cli -h 10.0.0.5 -a Hy6tR4eWq2 INFO", "Hy6tR4eWq2"],
    ["echo done | sshpass -p 'River-Lamp-73' ssh ana@host", "River-Lamp-73"],
    ["docker login registry.example.com -u ci --password Pk3mZq9Lw7", "Pk3mZq9Lw7"]
  ]),
  ...find("env_password_before_command", [
    ["PGPASSWORD=Mn4bV7cX2z pg_dump -h db app > app.sql", "Mn4bV7cX2z"],
    ["MYSQL_PWD='Tango4471?' mysql -u root -e 'show databases'", "Tango4471?"],
    ["ADMIN_PASS=Lq8wE3rT6y node scripts/seed.js", "Lq8wE3rT6y"],
    ["env SMTP_PASSWORD=Zx5cV8bN1m ./send-report.sh", "Zx5cV8bN1m"],
    ["RESTIC_PASSWORD=harbor-cloud-19 restic backup ~/docs", "harbor-cloud-19"]
  ]),
  ...find("json_short_password_key", [
    ['{"host": "mqtt.local", "user": "sensor", "pwd": "Gx7mQ2pL9"}', "Gx7mQ2pL9"],
    ['{"ssid": "Casa", "wifiPass": "panda-stone-42"}', "panda-stone-42"],
    ['{"adminPassword":"Rk4!vT8nQ"}', "Rk4!vT8nQ"],
    ['{"db": {"pw": "Wq3eR5tY7u"}}', "Wq3eR5tY7u"],
    ["{'userPwd': 'Lisbon2291#'}", "Lisbon2291#"]
  ]),
  ...find("password_in_prose_other_verbs", [
    ["fyi the router password's Maple8812! now", "Maple8812!"],
    ["I changed my password to Falcon3390$ yesterday", "Falcon3390$"],
    ["you can log in with Orbit5521# as the password", "Orbit5521#"],
    ["mein Passwort lautet Sonne4711!", "Sonne4711!"],
    ["the password we agreed on was Tango9034%", "Tango9034%"]
  ]),
  ...find("bot_token_in_url", [
    [
      "curl https://api.telegram.org/bot6123457890:AAF3kLm9QwErTy7uIoPzXcVbNm2AsDfGhJk/getUpdates",
      "6123457890:AAF3kLm9QwErTy7uIoPzXcVbNm2AsDfGhJk"
    ],
    [
      "webhook set to https://api.telegram.org/bot7012345678:AAHq8Wv2Ez5Rt1Yu3Io6Pa9Sd4Fg7Hj0Kl1/setWebhook?url=x",
      "7012345678:AAHq8Wv2Ez5Rt1Yu3Io6Pa9Sd4Fg7Hj0Kl1"
    ],
    [
      "fetch(`https://api.telegram.org/file/bot5987654321:AAE1zX2cV3bN4mQ5wE6rT7yU8iO9pA0sD1f/photos/file_3.jpg`)",
      "5987654321:AAE1zX2cV3bN4mQ5wE6rT7yU8iO9pA0sD1f"
    ],
    [
      "GET /bot6543210987:AAG5hJ6kL7zX8cV9bN0mQ1wE2rT3yU4iO5p/sendMessage?chat_id=42 HTTP/1.1",
      "6543210987:AAG5hJ6kL7zX8cV9bN0mQ1wE2rT3yU4iO5p"
    ],
    [
      "https://api.telegram.org/bot1234509876:AAC9oI8uY7tR6eW5qA4sD3fG2hJ1kL0zX9c/getMe returned ok",
      "1234509876:AAC9oI8uY7tR6eW5qA4sD3fG2hJ1kL0zX9c"
    ]
  ]),
  ...find("provider_token_positional", [
    [
      'client = Groq("gsk_Wq8eR2tY6uI0oP4aS7dF1gH5jK9lZ3xC2vB6nM0qW4eR8tY2u")',
      "gsk_Wq8eR2tY6uI0oP4aS7dF1gH5jK9lZ3xC2vB6nM0qW4eR8tY2u"
    ],
    [
      'const octokit = new Octokit({ auth: "ghp_9ZyXwVuTsRqPoNmLkJiHgFeDcBa876543210" })',
      "ghp_9ZyXwVuTsRqPoNmLkJiHgFeDcBa876543210"
    ],
    [
      'bot.run("MTE5ODc2NTQzMjEwOTg3NjU0.GhT2kL.p9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0LzXcVbNmQ")',
      "MTE5ODc2NTQzMjEwOTg3NjU0.GhT2kL.p9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0LzXcVbNmQ"
    ],
    [
      'sg = SendGridAPIClient("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")',
      "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"
    ],
    [
      "Twilio::REST::Client.new('AC4f8e2d1c0b9a87654321fedcba098765', '9a8b7c6d5e4f30211203f4e5d6c7b8a9')",
      "9a8b7c6d5e4f30211203f4e5d6c7b8a9"
    ]
  ]),
  ...find("phone_in_contact_list", [
    ["Contacts:\n- Inês 912 734 508\n- Rui 936 220 417", "912 734 508"],
    ["emergency list — neighbour Carmen: 654 321 987", "654 321 987"],
    ["Oma Hildegard  0171 2345678", "0171 2345678"],
    ["dentist (Dr. Moreau) 06 12 34 56 78", "06 12 34 56 78"],
    ["babysitter Jess 07700 900461", "07700 900461"]
  ])
]
