#!/bin/sh
# The demo agent: an ordinary script that talks to switchboard through the
# agent socket (`switchboard agent …`).  It reports progress, asks a question
# with choices, changes files in its worktree according to the answer and
# reports done.  switchboard commits what it leaves behind on its branch.
set -eu
sb=${SWITCHBOARD_BIN:-switchboard}
task=${1:-something}

"$sb" agent progress "Reading the task: $task"
sleep 1
"$sb" agent progress "Looking around: $(ls | wc -l) entries in the repository"
sleep 1
if ! answer=$("$sb" agent ask "How should the greeting sound?" \
    --choice Formal --choice Casual); then
	echo "the question was cancelled; stopping" >&2
	exit 3
fi
"$sb" agent progress "Writing greeting.txt in a $answer style"
case $answer in
Formal)	echo "Good day. This change was asked for as: $task" ;;
Casual)	echo "Hey! You asked for: $task" ;;
*)	echo "$answer — for: $task" ;;
esac > greeting.txt
printf '# Task\n\n%s\n' "$task" > TASK.md
sleep 1
"$sb" agent done "Wrote greeting.txt ($answer) and TASK.md."
