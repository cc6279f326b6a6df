#!/bin/sh
# Writes ~64 MB of output quickly, then fails.
yes "flooding output line with some text to make it longer" | head -c 67108864
echo "LAST LINE OF THE FLOOD"
exit 1
