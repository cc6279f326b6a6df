#!/bin/sh
# Dispatcher for tests that need several kinds of agent in one thread: the
# task "ROLE ARG..." runs ROLE.sh ARG... from this directory.
set -- $1
role=$1
shift
exec "$(dirname "$0")/$role.sh" "$@"
