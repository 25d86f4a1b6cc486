#!/bin/bash
set -e
cd /app
: > counts.txt
while read -r line; do
  echo "$line" | wc -w >> counts.txt
done < data/poem.txt
cat counts.txt
