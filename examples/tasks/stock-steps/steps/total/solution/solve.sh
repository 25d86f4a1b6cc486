#!/bin/bash
set -e
cd /app
awk -F, 'NR == FNR { if (FNR > 1) price[$1] = $2; next }
         FNR > 1 { total += $2 * price[$1] }
         END { print total }' prices.csv data/stock.csv > total.txt
