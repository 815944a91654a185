#!/bin/sh
# The postgres image's start-up contract on Debian's PostgreSQL: as root, own the data directory and
# drop to the postgres user; on an empty data directory, initdb with POSTGRES_USER/POSTGRES_PASSWORD,
# password (scram) logins from any host, and POSTGRES_DB created; then run the server.
set -eu
if [ "${1:-}" != postgres ]; then
	exec "$@"
fi
if [ "$(id -u)" = 0 ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	chown -R postgres:postgres "$PGDATA" /var/run/postgresql
	chmod 700 "$PGDATA"
	exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
	: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
	user=${POSTGRES_USER:-postgres}
	database=${POSTGRES_DB:-$user}
	password_file=$(mktemp)
	printf '%s' "$POSTGRES_PASSWORD" >"$password_file"
	initdb --username="$user" --pwfile="$password_file" --auth-local=trust --auth-host=scram-sha-256 \
		--encoding=UTF8 --locale=C.UTF-8 -D "$PGDATA" >/dev/null
	rm -f "$password_file"
	echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
	echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
	if [ "$database" != postgres ]; then
		echo "CREATE DATABASE \"$database\" OWNER \"$user\"" | postgres --single -D "$PGDATA" postgres >/dev/null
	fi
	echo "PostgreSQL initialised in $PGDATA"
fi
exec "$@"
