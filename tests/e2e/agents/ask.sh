#!/bin/sh
# Reports progress, asks a question with choices, writes the answer to a file.
set -eu
sb=$SWITCHBOARD_BIN
"$sb" agent progress "step one: $1"
sleep 0.6
a=$("$sb" agent ask "Which provider for $1?" --choice GitHub --choice Google)
echo "$a" > answer.txt
"$sb" agent progress "got $a"
"$sb" agent done "chose $a"
