#!/bin/sh
# Creates the demo's git repository under demo-state/ (once).  The daemon
# itself never runs git; this setup script may, like any user would.
set -eu
cd "$(dirname "$0")/.."
repo=demo-state/repo
[ -d "$repo/.git" ] && exit 0
mkdir -p "$repo"
git -C "$repo" init -q -b main
printf '# Demo project\n\nA tiny repository for the switchboard demo.\n' > "$repo/README.md"
printf 'int main(void) { return 0; }\n' > "$repo/main.c"
git -C "$repo" add README.md main.c
git -C "$repo" -c user.name=demo -c user.email=demo@localhost commit -q -m "Initial demo project"
echo "demo repository created in $repo"
