#!/bin/bash
set -e
cd /app
tail -n +2 data/stock.csv | cut -d, -f1 | sort > names.txt
