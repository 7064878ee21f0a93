#!/usr/bin/env bash
# Writes the training corpus to stdout: the King James Bible (public domain) from
# Debian's bible-kjv package, one verse per line with the book/chapter headings
# and verse numbers removed. Needs `apt-get install bible-kjv` (not part of
# scripts/setup: CI never trains; the trained model is committed).
set -euo pipefail
command -v bible >/dev/null || { echo "corpus.sh: install Debian's bible-kjv package" >&2; exit 1; }
bible -l100000 "Gen1:1-Rev22:21" | awk '/^ +[0-9]+ /{ sub(/^ +[0-9]+ /, ""); print }'
