#!/bin/bash
set -e
cd /app
cat "$LOG_DIR"/*.log | grep ' ERROR ' | sed 's/^.* ERROR //' | sort | uniq -c \
  | sed 's/^ *//' | sort -k1,1nr -k2 > errors.txt
cat errors.txt
