#!/usr/bin/env bash
# Installs autotune's hourly systemd user timer: writes a config when there is none (autotune init --yes),
# an env file with mode 0600 for the keys, and the units; enables the timer. Safe to run again.
# Usage: systemd/install.sh [--daemon]    (--daemon: the long-running service instead of the timer)
set -euo pipefail

mode=timer
[ "${1:-}" = "--daemon" ] && mode=daemon

here="$(cd "$(dirname "$0")" && pwd)"
# autotune's home as autotune itself finds it: AUTOTUNE_HOME; an existing 1.1 setup; else a current DotClaw's
# home (DOTCLAW_HOME or ~/.dotclaw); else the 1.1 layout.
legacy="$HOME/.config/dotclaw"
dotclaw="${DOTCLAW_HOME:-$HOME/.dotclaw}"
if [ -n "${AUTOTUNE_HOME:-}" ]; then
  home_dir="$AUTOTUNE_HOME"
elif [ -f "$legacy/autotune.json" ] || [ -f "$legacy/autotune.db" ]; then
  home_dir="$legacy"
elif [ -n "${DOTCLAW_HOME:-}" ] || [ -d "$dotclaw" ]; then
  home_dir="$dotclaw"
else
  home_dir="$legacy"
fi
config="${AUTOTUNE_CONFIG_PATH:-$home_dir/autotune.json}"
env_file="$HOME/.config/dotclaw/autotune.env"
unit_dir="${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user"

if ! command -v autotune >/dev/null 2>&1; then
  echo "install.sh: the autotune command is not on PATH; install it first: npm install -g @dotsetlabs/autotune" >&2
  exit 1
fi

if [ -f "$config" ]; then
  echo "config: $config exists; left as it is"
else
  autotune init --yes --config "$config"
fi

mkdir -p "$(dirname "$env_file")"
if [ -f "$env_file" ]; then
  echo "env file: $env_file exists; left as it is"
else
  umask 077
  {
    echo "# autotune environment for systemd (mode 0600). Set one key; see README for every variable."
    echo "AUTOTUNE_CONFIG_PATH=$config"
    [ -n "${ANTHROPIC_API_KEY:-}" ] && echo "ANTHROPIC_API_KEY=$ANTHROPIC_API_KEY" || echo "#ANTHROPIC_API_KEY="
    [ -n "${OPENROUTER_API_KEY:-}" ] && echo "OPENROUTER_API_KEY=$OPENROUTER_API_KEY" || echo "#OPENROUTER_API_KEY="
  } > "$env_file"
  chmod 600 "$env_file"
  echo "env file: wrote $env_file (mode 0600)"
fi

if ! command -v systemctl >/dev/null 2>&1 || ! systemctl --user show-environment >/dev/null 2>&1; then
  echo "install.sh: systemd (user instance) is not available here; run 'autotune daemon' under your own supervisor, or 'autotune once' from cron" >&2
  exit 2
fi

mkdir -p "$unit_dir"
install -m 0644 "$here/autotune.service" "$here/autotune.timer" "$here/autotune-daemon.service" "$unit_dir/"
systemctl --user daemon-reload
if [ "$mode" = "daemon" ]; then
  systemctl --user disable --now autotune.timer >/dev/null 2>&1 || true
  systemctl --user enable --now autotune-daemon.service
  echo "enabled: autotune-daemon.service (logs: journalctl --user -u autotune-daemon)"
else
  systemctl --user disable --now autotune-daemon.service >/dev/null 2>&1 || true
  systemctl --user enable --now autotune.timer
  echo "enabled: autotune.timer, hourly (logs: journalctl --user -u autotune)"
fi
echo "to keep it running after you log out: loginctl enable-linger $USER"
