#!/bin/sh
# The agent of tests/e2e/test_k8s.py, run by the fake cluster's kubelet:
# says where it runs, checks that its token is a file and not in its
# environment, works in its working directory; "slow" tasks wait first.
echo "pod $HOSTNAME says hi"
[ -n "$SWITCHBOARD_AGENT_TOKEN" ] && echo "LEAK: token in the environment"
[ -s "$SWITCHBOARD_AGENT_TOKEN_FILE" ] && echo "token file present"
case "$1" in
*tick*)
	i=0
	while [ $i -lt 40 ]; do echo "tick $i"; sleep 0.1; i=$((i + 1)); done
	;;
*restart*)
	echo "before the restart"
	sleep 4
	echo "after the restart"
	;;
*fail*)
	echo "giving up" >&2
	exit 3
	;;
*slow*)
	echo "waiting"
	trap 'echo "got SIGTERM"; exit 143' TERM
	i=0
	while [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
	;;
esac
echo "$1" > pod.txt
echo "pod finished"
