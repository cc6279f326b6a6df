#!/bin/sh
# For the web chat tests: a step, a step that is HTML, a question with
# choices, then steps at a steady pace (a page reloads among them), a change
# on the branch and a summary that is HTML too.
set -eu
sb=$SWITCHBOARD_BIN
"$sb" agent progress "step one: $1"
"$sb" agent progress '<img src=x onerror=alert(1)>'
a=$("$sb" agent ask "Which style for $1?" --choice Formal --choice Casual)
for i in 1 2 3 4 5 6 7 8; do
	"$sb" agent progress "after $a $i"
	sleep 0.3
done
printf 'style: %s\n' "$a" > style.txt
echo "wrote style.txt ($a)"
"$sb" agent done "chose $a <script>alert(2)</script>"
