#!/bin/sh
# Works for two seconds, prints some output, then dies with status 7.
echo "compiling the thing"
sleep 2
echo "error: the thing is broken at line 42" >&2
exit 7
