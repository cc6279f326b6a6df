#!/bin/sh
# Prints some output, then dies with status 7.
echo "compiling the thing"
echo "error: the thing is broken at line 42" >&2
exit 7
