#!/bin/sh
# The canonical scene's agents: a login task asks which OAuth provider and
# writes its pages; anything else "runs its tests" until $BRAIN_GATE exists.
set -eu
sb=$SWITCHBOARD_BIN
case "$1" in
*login*)
	"$sb" agent progress "scaffolding the login page"
	a=$("$sb" agent ask "GitHub or Google OAuth?" --choice GitHub --choice Google)
	mkdir -p web
	echo "<form>login</form>" > web/login.html
	echo "provider: $a" > web/oauth.conf
	echo "login()" > web/login.js
	echo "test_login()" > web/login_test.js
	"$sb" agent done "login page with $a OAuth"
	;;
*)
	"$sb" agent progress "running its tests"
	while [ ! -e "${BRAIN_GATE:-/nonexistent}" ]; do sleep 0.2; done
	echo "billing" > billing.html
	"$sb" agent done "billing page"
	;;
esac
