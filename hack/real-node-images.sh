#!/usr/bin/env bash
# The images the real node runs, built without a Docker engine and pushed to
# the local registry (hack/real-node-up.sh starts it):
#
#   crm-local/pause             the pod sandbox: build/pause/linux/pause.c of
#                               the k8s.io/kubernetes module, gcc -static
#   crm-local/postgres          stand-ins for the official postgres and mariadb
#   crm-local/mariadb           images: Debian trixie's PostgreSQL 17 and MariaDB
#                               11.8, the majors the operator deploys by default
#                               (mmdebstrap from deb.debian.org) under the official
#                               images' interface (hack/images/*: variables,
#                               PGDATA, data paths, uid 999, healthcheck.sh)
#   crm-local/crm-standin       a stand-in CRM application (hack/images/crm-standin)
#                               on Debian with bash and both database clients
#   crm-local/odoo              a stand-in for the official odoo image on top of
#                               crm-standin: its /entrypoint.sh interface and an
#                               odoo command whose `-i base` creates the tables
#                               the operator's anonymization and erasure rules
#                               name (hack/images/odoo); also tagged 18.0, the
#                               version the chart's override appends
#   crm-local/espocrm,          stand-ins for the other products' official
#   crm-local/suitecrm,         images, written from their contracts
#   crm-local/twenty            (hack/images/<product>), tagged with the default
#                               version and the next one; SuiteCRM's as published
#                               (/opt/bitnami not group-writable) and, as
#                               crm-local/suitecrm-groupwritable, with the
#                               documented chmod g+rwX /opt/bitnami
#   crm-local/redis             Debian bookworm's Redis for Twenty
#   crm-local/mailpit           the mail catcher: mailpit built from the Go
#                               module proxy (hack/build-tools.sh mailpit)
#   crm-local/crm-operator      the operator: manager, crm-agent and portal, static,
#                               on a base of /etc/passwd, CA certificates, /tmp
#
# Each is tagged with a key of what it is built from (its build function's
# text and its files) and skipped when the registry has it, so a machine
# builds each once (the registry's data is in the tools cache). Prints the references as NAME=REFERENCE lines into
# $LOCAL_DIR/real-node/images.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
REGISTRY=${REGISTRY:-127.0.0.1:5001}
out=${LOCAL_DIR:-$root/bin/local}/real-node
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
: >"$out/images.new"
crane() { "$root/bin/crane" --insecure "$@"; }
log() { printf '[images %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
key() { cat "$@" | sha256sum | cut -c1-12; }

# image NAME TAG BUILD: pushes $REGISTRY/crm-local/NAME:TAG-KEY with BUILD
# (a function given the reference) unless it is there, then tags it TAG.
image() {
	local name=$1 tag=$2 build=$3 ref
	ref=$REGISTRY/crm-local/$name:$tag
	if crane digest "$ref" >/dev/null 2>&1; then
		log "$name: in the registry ($ref)"
	else
		local start=$SECONDS
		"$build" "$ref"
		log "$name: built and pushed in $((SECONDS - start))s ($ref)"
	fi
	echo "$name=$ref" >>"$out/images.new"
}

# rootfs_image REF TARBALL [crane mutate flags]: an image of one layer.
rootfs_image() {
	local ref=$1 tarball=$2
	shift 2
	crane append --oci-empty-base -f "$tarball" -t "$REGISTRY/crm-local/scratch:build" >/dev/null 2>&1
	crane mutate "$REGISTRY/crm-local/scratch:build" --set-platform linux/amd64 "$@" -t "$ref" >/dev/null 2>&1
}

# debian_rootfs OUT PACKAGES HOOK...: minbase of $SUITE with PACKAGES, no
# docs, man pages or locales, the apt lists removed. bookworm (the default)
# comes from the machine's apt sources; another suite from deb.debian.org,
# with its security updates.
debian_rootfs() {
	local tarball=$1 packages=$2 suite=${SUITE:-bookworm}
	shift 2
	local sources=()
	[ "$suite" = bookworm ] || sources=("deb http://deb.debian.org/debian $suite main" "deb http://deb.debian.org/debian-security $suite-security main")
	local hooks=()
	for h in "$@"; do hooks+=(--customize-hook="$h"); done
	mmdebstrap --quiet --variant=minbase --include="$packages" \
		--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
		--dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
		"${hooks[@]}" \
		--customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
		"$suite" "$tarball" "${sources[@]}"
}

pause_src=$(cd "$root/hack/tools/k8s" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c
build_pause() {
	mkdir -p "$work/pause"
	gcc -Os -Wall -Werror -static -DVERSION=v3.10.2-crm-local -o "$work/pause/pause" "$pause_src"
	tar -C "$work/pause" -cf "$work/pause.tar" pause
	rootfs_image "$1" "$work/pause.tar" --entrypoint /pause --user 65535:65535
}
image pause "3.10.2-$(key "$pause_src")" build_pause

# The official images' users are system accounts with uid/gid 999 (their
# Dockerfiles' groupadd/useradd -r); Debian's packages pick other ids, moved
# to 999 with the files they own.
uid999() { # ACCOUNT: a customize hook
	echo 'chroot "$1" sh -c '"'"'u=$(id -u '"$1"'); g=$(id -g '"$1"'); usermod -u 999 '"$1"' && groupmod -g 999 '"$1"' &&
		find / -xdev -uid $u -exec chown -h 999 {} + && find / -xdev -gid $g -exec chgrp -h 999 {} +'"'"
}
build_postgres() {
	# zstd: only for make test-real's baseline (pg_dump | zstd on the pod).
	SUITE=trixie debian_rootfs "$work/postgres.tar" postgresql-17,postgresql-client-17,zstd "$(uid999 postgres)" \
		'cp '"$root"'/hack/images/postgres/docker-entrypoint.sh "$1"/usr/local/bin/' \
		'chroot "$1" sh -c "install -d -o postgres -g postgres -m 3777 /var/run/postgresql /var/lib/postgresql/data"' \
		"sed -ri \"s!^#?(listen_addresses)\\s*=\\s*\\S+.*!\\1 = '*'!\" \"\$1\"/usr/share/postgresql/17/postgresql.conf.sample"
	rootfs_image "$1" "$work/postgres.tar" --entrypoint docker-entrypoint.sh --cmd postgres \
		--env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/postgresql/17/bin \
		--env PGDATA=/var/lib/postgresql/data --env LANG=C.UTF-8 --env PG_MAJOR=17 \
		--label org.opencontainers.image.description="crm-local stand-in for the official postgres image (Debian trixie's PostgreSQL 17)"
}
build_mariadb() {
	SUITE=trixie debian_rootfs "$work/mariadb.tar" mariadb-server,mariadb-client,zstd "$(uid999 mysql)" \
		'cp '"$root"'/hack/images/mariadb/docker-entrypoint.sh '"$root"'/hack/images/mariadb/healthcheck.sh "$1"/usr/local/bin/' \
		'printf "[mariadb]\nhost-cache-size=0\nskip-name-resolve\nbind-address=0.0.0.0\n" >"$1"/etc/mysql/mariadb.conf.d/99-crm-local.cnf' \
		'chroot "$1" sh -c "install -d -o mysql -g mysql -m 1777 /run/mysqld && install -d -o mysql -g mysql /var/lib/mysql"'
	rootfs_image "$1" "$work/mariadb.tar" --entrypoint docker-entrypoint.sh --cmd mariadbd --env LANG=C.UTF-8 \
		--label org.opencontainers.image.description="crm-local stand-in for the official mariadb image (Debian trixie's MariaDB 11.8)"
}
image postgres "17-$(key <(declare -f build_postgres debian_rootfs uid999 rootfs_image) "$root/hack/images/postgres/docker-entrypoint.sh")" build_postgres
image mariadb "11.8-$(key <(declare -f build_mariadb debian_rootfs uid999 rootfs_image) "$root/hack/images/mariadb/docker-entrypoint.sh" "$root/hack/images/mariadb/healthcheck.sh")" build_mariadb

# Static Go binaries on a base of their own: /etc/passwd and /etc/group with
# nonroot (65532, as distroless), the machine's CA certificates, /tmp.
base_layer() { # DIR
	mkdir -p "$1/etc/ssl/certs" "$1/tmp"
	chmod 1777 "$1/tmp"
	printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$1/etc/passwd"
	printf 'root:x:0:\nnonroot:x:65532:\n' >"$1/etc/group"
	cp /etc/ssl/certs/ca-certificates.crt "$1/etc/ssl/certs/"
}
go_static() { # OUT PACKAGE
	(cd "$root" && CGO_ENABLED=0 GOFLAGS=${GOFLAGS:--buildvcs=false} go build -trimpath -ldflags "-s -w" -o "$1" "$2")
}
build_go_image() { # REF NAME: the binaries were built into $work/NAME
	base_layer "$work/$2"
	tar -C "$work/$2" --owner=0 --group=0 -cf "$work/$2.tar" .
	rootfs_image "$1" "$work/$2.tar" --entrypoint "/$2" --user 65532:65532
}

mkdir -p "$work/crm-operator" "$work/crm-standin"
go_static "$work/crm-operator/crm-operator" ./cmd/manager
go_static "$work/crm-operator/crm-agent" ./cmd/crm-agent
go_static "$work/crm-operator/portal" ./cmd/portal
mv "$work/crm-operator/crm-operator" "$work/crm-operator/manager"
build_operator() {
	build_go_image "$1" crm-operator
	crane mutate "$1" --entrypoint /manager -t "$1" >/dev/null 2>&1
}
image crm-operator "dev-$(key "$work/crm-operator/manager" "$work/crm-operator/crm-agent" "$work/crm-operator/portal")" build_operator
go_static "$work/crm-standin/crm-standin" ./hack/images/crm-standin
build_standin() {
	debian_rootfs "$work/crm-standin.tar" postgresql-client-15,mariadb-client,ca-certificates \
		'cp '"$work"'/crm-standin/crm-standin "$1"/usr/local/bin/'
	rootfs_image "$1" "$work/crm-standin.tar" --entrypoint /usr/local/bin/crm-standin --user 1000:1000 --env LANG=C.UTF-8
}
standin_tag="dev-$(key <(declare -f build_standin debian_rootfs rootfs_image) "$work/crm-standin/crm-standin")"
image crm-standin "$standin_tag" build_standin
build_odoo() {
	mkdir -p "$work/odoo/usr/local/bin"
	cp "$root/hack/images/odoo/entrypoint.sh" "$work/odoo/entrypoint.sh"
	cp "$root/hack/images/odoo/odoo" "$work/odoo/usr/local/bin/odoo"
	tar -C "$work/odoo" --owner=0 --group=0 -cf "$work/odoo.tar" .
	crane append -b "$REGISTRY/crm-local/crm-standin:$standin_tag" -f "$work/odoo.tar" -t "$REGISTRY/crm-local/scratch:build" >/dev/null 2>&1
	# The official image's user odoo is 100:101, its configuration $ODOO_RC.
	crane mutate "$REGISTRY/crm-local/scratch:build" --entrypoint /entrypoint.sh --cmd odoo --user 100:101 \
		--env ODOO_RC=/etc/odoo/odoo.conf --env ODOO_VERSION=18.0 \
		--label org.opencontainers.image.description="crm-local stand-in for the official odoo image (not Odoo: hack/images/odoo)" -t "$1" >/dev/null 2>&1
}
odoo_tag="18.0-$(key <(declare -f build_odoo) "$work/crm-standin/crm-standin" "$root/hack/images/odoo/entrypoint.sh" "$root/hack/images/odoo/odoo")"
image odoo "$odoo_tag" build_odoo
crane tag "$REGISTRY/crm-local/odoo:$odoo_tag" 18.0 >/dev/null 2>&1
crane tag "$REGISTRY/crm-local/odoo:$odoo_tag" 18.0.1 >/dev/null 2>&1 # a promotion's next build of the series
# The CRM products' stand-ins (hack/images/<product>): each on crm-standin's
# Debian (bash, both database clients), with the official image's paths,
# entrypoint, command and user, tagged with the versions the tests run: the
# default and the one a promotion upgrades to (the stand-in reports its
# version from <PRODUCT>_STANDIN_VERSION).
overlay() { # NAME: $work/NAME as a layer on crm-standin, owners as set in it
	tar -C "$work/$1" --numeric-owner -cf "$work/$1.tar" .
	crane append -b "$REGISTRY/crm-local/crm-standin:$standin_tag" -f "$work/$1.tar" -t "$REGISTRY/crm-local/scratch:$1" >/dev/null 2>&1
}
product_images() { # NAME VERSION... : the overlay tagged per version by the given mutation
	local name=$1 mutate=$2
	shift 2
	local key
	key="$(key "$work/crm-standin/crm-standin" <(declare -f overlay "$mutate" "prepare_$name") $(find "$root/hack/images/$name" -type f | sort))"
	for v in "$@"; do
		local ref=$REGISTRY/crm-local/$name:$v-$key
		if crane digest "$ref" >/dev/null 2>&1; then
			log "$name $v: in the registry ($ref)"
		else
			[ -f "$work/$name.tar" ] || "prepare_$name"
			"$mutate" "$v" "$ref"
			log "$name $v: built and pushed ($ref)"
		fi
		crane tag "$ref" "$v" >/dev/null 2>&1
	done
	echo "$name=$REGISTRY/crm-local/$name:$1-$key" >>"$out/images.new"
}
prepare_espocrm() {
	local d=$work/espocrm src=$root/hack/images/espocrm
	install -d "$d/usr/local/bin" "$d/var/www/html/bin"
	install -m 755 "$src/docker-entrypoint.sh" "$src/apache2-foreground" "$src/apache2ctl" "$src/docker-daemon.sh" "$d/usr/local/bin/"
	cp "$d/usr/local/bin/docker-daemon.sh" "$d/usr/local/bin/docker-websocket.sh"
	install -m 755 "$src/command" "$d/var/www/html/bin/command"
	# The image's layout: everything root's, data, custom and client/custom www-data's.
	install -d -o 33 -g 33 -m 755 "$d/var/www/html/data" "$d/var/www/html/custom" "$d/var/www/html/client/custom"
	overlay espocrm
}
mutate_espocrm() { # VERSION REF
	crane mutate "$REGISTRY/crm-local/scratch:espocrm" --entrypoint docker-entrypoint.sh --cmd apache2-foreground --workdir /var/www/html \
		--user 0 --env ESPOCRM_STANDIN_VERSION="$1" \
		--label org.opencontainers.image.description="crm-local stand-in for espocrm/espocrm $1 (not EspoCRM: hack/images/espocrm)" -t "$2" >/dev/null 2>&1
}
prepare_suitecrm() {
	local d=$work/suitecrm src=$root/hack/images/suitecrm
	# As published: /opt/bitnami root's 755 (bitnami/containers@310e487
	# bitnami/suitecrm/8/debian-12/Dockerfile has no chmod g+rwX of it).
	install -d -m 755 "$d/opt/bitnami"
	install -d "$d/opt/bitnami/scripts/suitecrm" "$d/usr/local/bin"
	install -m 755 "$src/entrypoint.sh" "$src/run.sh" "$d/opt/bitnami/scripts/suitecrm/"
	install -m 644 "$src/suitecrm-env.sh" "$src/libpersistence.sh" "$d/opt/bitnami/scripts/"
	install -m 755 "$src/php" "$d/usr/local/bin/php"
	# postunpack.sh: the application and its volume daemon:root, 775/664.
	install -d -o 1 -g 0 -m 775 "$d/opt/bitnami/suitecrm/public/legacy" "$d/bitnami/suitecrm"
	chown 1:0 "$d/opt/bitnami/suitecrm" "$d/opt/bitnami/suitecrm/public" && chmod 775 "$d/opt/bitnami/suitecrm" "$d/opt/bitnami/suitecrm/public"
	printf '<?php\n' | install -o 1 -g 0 -m 664 /dev/stdin "$d/opt/bitnami/suitecrm/public/legacy/cron.php"
	printf '<?php\n' | install -o 1 -g 0 -m 664 /dev/stdin "$d/opt/bitnami/suitecrm/public/legacy/index.php"
	overlay suitecrm
}
mutate_suitecrm() {
	crane mutate "$REGISTRY/crm-local/scratch:suitecrm" --entrypoint /opt/bitnami/scripts/suitecrm/entrypoint.sh --cmd /opt/bitnami/scripts/suitecrm/run.sh \
		--user 0 --env SUITECRM_STANDIN_VERSION="$1" \
		--label org.opencontainers.image.description="crm-local stand-in for bitnamilegacy/suitecrm $1 as published, /opt/bitnami root's 755 (not SuiteCRM: hack/images/suitecrm)" -t "$2" >/dev/null 2>&1
}
prepare_twenty() {
	local d=$work/twenty src=$root/hack/images/twenty
	install -d "$d/app/packages/twenty-server" "$d/usr/local/bin"
	install -m 755 "$src/entrypoint.sh" "$d/app/entrypoint.sh"
	install -m 755 "$src/node" "$src/yarn" "$d/usr/local/bin/"
	overlay twenty
}
mutate_twenty() {
	crane mutate "$REGISTRY/crm-local/scratch:twenty" --entrypoint /app/entrypoint.sh --cmd node,dist/src/main --workdir /app/packages/twenty-server \
		--user 1000 --env TWENTY_STANDIN_VERSION="$1" \
		--label org.opencontainers.image.description="crm-local stand-in for twentycrm/twenty $1 (not Twenty: hack/images/twenty)" -t "$2" >/dev/null 2>&1
}
product_images espocrm mutate_espocrm 10.0.3 10.0.4
product_images suitecrm mutate_suitecrm 8.9.0 8.9.1
product_images twenty mutate_twenty v1.8.0 v1.9.0
# The workaround docs/products.md gives for the published SuiteCRM image as
# a non-root pod: a build FROM it with RUN chmod g+rwX /opt/bitnami, here one
# layer holding that directory's new mode.
suitecrm_groupwritable() { # VERSION...
	local base key v ref
	base=$(sed -n 's/^suitecrm=//p' "$out/images.new")
	key=${base##*:"$1"-}
	mkdir -p "$work/groupwritable/opt/bitnami"
	chmod 755 "$work/groupwritable/opt" && chmod 775 "$work/groupwritable/opt/bitnami"
	tar --numeric-owner --owner=0 --group=0 --no-recursion -C "$work/groupwritable" -cf "$work/groupwritable.tar" opt opt/bitnami
	for v in "$@"; do
		ref=$REGISTRY/crm-local/suitecrm-groupwritable:$v-$key
		if crane digest "$ref" >/dev/null 2>&1; then
			log "suitecrm-groupwritable $v: in the registry ($ref)"
		else
			crane append -b "$REGISTRY/crm-local/suitecrm:$v-$key" -f "$work/groupwritable.tar" -t "$ref" >/dev/null 2>&1
			log "suitecrm-groupwritable $v: built and pushed ($ref)"
		fi
		crane tag "$ref" "$v" >/dev/null 2>&1
	done
	echo "suitecrm-groupwritable=$REGISTRY/crm-local/suitecrm-groupwritable:$1-$key" >>"$out/images.new"
}
suitecrm_groupwritable 8.9.0 8.9.1
build_redis() {
	debian_rootfs "$work/redis.tar" redis-server
	rootfs_image "$1" "$work/redis.tar" --cmd redis-server --user 999:999 \
		--label org.opencontainers.image.description="crm-local stand-in for the official redis image (Debian bookworm's Redis 7.0)"
}
image redis "7.4-$(key <(declare -f build_redis debian_rootfs rootfs_image))" build_redis
crane tag "$(sed -n 's/^redis=//p' "$out/images.new")" 7.4 >/dev/null 2>&1
mkdir -p "$work/mailpit"
cp "$root/bin/mailpit" "$work/mailpit/mailpit"
build_mailpit() { build_go_image "$1" mailpit; }
image mailpit "$(basename "$(dirname "$(readlink -f "$root/bin/mailpit")")")-$(key "$work/mailpit/mailpit")" build_mailpit
mv "$out/images.new" "$out/images"
