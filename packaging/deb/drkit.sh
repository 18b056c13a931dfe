#!/bin/sh
# drkit's command line (Debian package drkit): the program lives in /usr/lib/drkit.
exec /usr/bin/node /usr/lib/drkit/dist/src/cli.js "$@"
