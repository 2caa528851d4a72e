#!/bin/sh
# ensure-postgres.sh makes sure the PostgreSQL server binaries (initdb,
# postgres) that the test harness (storage/pgtest) and the managed database
# of `parley serve` (storage/pgcluster) run are installed.
#
# - Binaries on PATH or under /usr/lib/postgresql/*/bin: do nothing.
# - Otherwise install Debian's `postgresql` package, non-interactively, and
#   do not leave the default cluster the package creates running: Parley
#   starts its own clusters. A cluster that was already running is left alone.
# - Exit non-zero with a clear message when installing is impossible.
#
# ENSURE_POSTGRES_LIBDIR overrides /usr/lib/postgresql (for tests);
# ENSURE_POSTGRES_DRY_RUN=1 prints the install commands instead of running them.
set -eu

libdir=${ENSURE_POSTGRES_LIBDIR:-/usr/lib/postgresql}
dry_run=${ENSURE_POSTGRES_DRY_RUN:-}

say() { echo "ensure-postgres: $*"; }
fail() { echo "ensure-postgres: $*" >&2; exit 1; }

# find_server prints the postgres binary found, the same search as
# pgcluster.FindBinaries: PATH first, then the highest Debian version.
find_server() {
	if command -v initdb >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1; then
		command -v postgres
		return 0
	fi
	for dir in $(ls -d "$libdir"/*/bin 2>/dev/null | sort -V -r); do
		if [ -x "$dir/initdb" ] && [ -x "$dir/postgres" ]; then
			echo "$dir/postgres"
			return 0
		fi
	done
	return 1
}

if found=$(find_server); then
	say "found $found"
	exit 0
fi

command -v apt-get >/dev/null 2>&1 ||
	fail "no PostgreSQL server binaries (initdb, postgres) and no apt-get to install them: install PostgreSQL 15 or later yourself"

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo="sudo -n"
	else
		fail "no PostgreSQL server binaries; installing them needs root: run 'apt-get install postgresql' as root (or this script with sudo)"
	fi
fi

run() {
	if [ -n "$dry_run" ]; then
		say "would run: $*"
	else
		$sudo "$@"
	fi
}

# online_clusters lists "version/name" of running Debian clusters.
online_clusters() {
	if command -v pg_lsclusters >/dev/null 2>&1; then
		pg_lsclusters -h 2>/dev/null | awk '$4 == "online" { print $1 "/" $2 }'
	fi
}

before=$(online_clusters)

# policy-rc.d answering 101 forbids maintainer scripts to start services
# (invoke-rc.d, deb-systemd-invoke honour it). Only when none exists, and
# removed afterwards; an existing one (as in Docker images) is kept.
policy=/usr/sbin/policy-rc.d
added_policy=""
if [ ! -e "$policy" ] && [ -z "$dry_run" ]; then
	printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
	$sudo chmod 755 "$policy"
	added_policy=1
fi
cleanup() {
	if [ -n "$added_policy" ]; then
		$sudo rm -f "$policy"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "installing Debian's postgresql package"
export DEBIAN_FRONTEND=noninteractive
run apt-get update </dev/null ||
	fail "apt-get update failed"
run apt-get install -y --no-install-recommends postgresql </dev/null ||
	fail "apt-get install postgresql failed; install PostgreSQL 15 or later (initdb, postgres) yourself"

# Whatever the package started despite the policy: stop it, unless it was
# running before we came.
for cluster in $(online_clusters); do
	case " $(echo $before) " in
	*" $cluster "*) continue ;;
	esac
	say "stopping the default cluster $cluster the package started"
	run pg_ctlcluster "${cluster%/*}" "${cluster#*/}" stop || fail "could not stop cluster $cluster"
done

[ -n "$dry_run" ] && exit 0
found=$(find_server) || fail "postgresql was installed but initdb/postgres are still not found under $libdir"
say "installed $found"
