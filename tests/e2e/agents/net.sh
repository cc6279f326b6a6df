#!/bin/sh
# Tries a TCP connection to 127.0.0.1:$1; net.txt says OK or FAIL.
if /usr/bin/python3 -c 'import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3).close()' "$1" 2>/dev/null
then echo OK > net.txt; else echo FAIL > net.txt; fi
"$SWITCHBOARD_BIN" agent done "tried the network"
