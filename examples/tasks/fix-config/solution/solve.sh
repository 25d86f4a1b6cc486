#!/bin/bash
cd /app
sed -i 's/^port = 80$/port = 8080/' service.ini
sed -i 's/^port = 8080$/port = 8080\nworkers = 4/' service.ini
cat service.ini
