#!/bin/sh
# One session of a line protocol: every line read gets `OK <the line>` back, until EOF.
# For socat (EXEC:, fork) and tcpserver, which run it once per connection with the
# connection as its standard input and output.
while IFS= read -r line; do
    printf 'OK %s\n' "$line"
done
